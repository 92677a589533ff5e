import { Readable } from 'node:stream';
import { archiveKey, newTaskId } from '../../src/contract';
import { ArchiveStore } from '../../src/storage/archive-store';
import { FtpDriver } from '../../src/storage/drivers/ftp';
import { silentLogger } from '../../src/support/logging';
import { adoptNodeErrorsInBasicFtp, ftpDriverSettings, FtpServer, startFtpServer } from '../helpers/ftp-server';

/**
 * An empty archive whose source ends only after the data connection is up (a
 * slow URL answering with an empty body) is stored at once, not left waiting
 * for the transfer watchdog: the end is passed on when basic-ftp already reads.
 */
adoptNodeErrorsInBasicFtp();
jest.setTimeout(30_000);

let server: FtpServer;
let driver: FtpDriver | undefined;

beforeAll(async () => {
  server = await startFtpServer({ tls: 'explicit' });
});

afterAll(async () => {
  await driver?.close();
  await server?.destroy();
});

test('an empty source that ends late is stored well within the watchdog', async () => {
  const { ftpPath } = await server.makeRoot('late-empty');
  driver = new FtpDriver('ftp', ftpDriverSettings(server, ftpPath, { timeoutMs: 5_000 }), silentLogger());
  const store = new ArchiveStore(driver, silentLogger());
  const late = new Readable({ read() {} });
  setTimeout(() => late.push(null), 1_000);
  const taskId = newTaskId();
  const started = Date.now();
  const stored = await store.store({ key: archiveKey(new Date(), taskId, 'empty.zip'), taskId, name: 'empty.zip', body: late });
  expect(stored).toMatchObject({ created: true, manifest: { size: 0 } });
  expect(Date.now() - started).toBeLessThan(4_000);
});
