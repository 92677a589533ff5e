import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ArchiveStore } from '../../src/storage/archive-store';
import { FtpDriver } from '../../src/storage/drivers/ftp';
import { createLogger } from '../../src/support/logging';
import { adoptNodeErrorsInBasicFtp, ftpDriverSettings, FtpServer, startFtpServer } from '../helpers/ftp-server';

/**
 * A server that replaces files on rename (proftpd with `AllowOverwrite on`, as
 * Debian packages it) weakens write-once to depot's own check before each
 * rename: `depot check` says so in the log, and a conflicting store still never
 * replaces an archive. With overwriting off the check stays quiet.
 */
adoptNodeErrorsInBasicFtp();
jest.setTimeout(30_000);

const servers: FtpServer[] = [];
const drivers: FtpDriver[] = [];

afterAll(async () => {
  await Promise.allSettled(drivers.map((d) => d.close()));
  await Promise.allSettled(servers.map((s) => s.destroy()));
});

async function driverOn(allowOverwrite: boolean): Promise<{ driver: FtpDriver; diskPath: string; logged: () => string }> {
  const server = await startFtpServer({ tls: 'explicit', allowOverwrite });
  servers.push(server);
  const { ftpPath, diskPath } = await server.makeRoot('overwrite');
  const sink = new PassThrough();
  let text = '';
  sink.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const settings = ftpDriverSettings(server, ftpPath);
  const driver = new FtpDriver('box', settings, createLogger({ stream: sink, level: 'warn', format: 'json' }));
  drivers.push(driver);
  return { driver, diskPath, logged: () => text };
}

test('with AllowOverwrite on, check warns, and a conflicting store still leaves the archive as it was', async () => {
  const { driver, diskPath, logged } = await driverOn(true);
  const store = new ArchiveStore(driver, createLogger({ stream: new PassThrough(), level: 'error' }));
  const result = await store.check();
  // CONTRACT §11: write-once rests on depot's own checks there, and the check result says so.
  expect(result).toMatchObject({ ok: true, writeOnce: 'best_effort' });
  expect(logged()).toContain('replaces existing files on rename');

  const key = '2026/11/27/01a2b3c4-0000-7000-8000-000000000001/exam.zip';
  const taskId = '01a2b3c4-0000-7000-8000-000000000001';
  const first = await store.store({ key, taskId, name: 'exam.zip', body: Readable.from([Buffer.from('the first bytes')]) });
  expect(first.created).toBe(true);
  await expect(store.store({ key, taskId, name: 'exam.zip', body: Readable.from([Buffer.from('other bytes')]) })).rejects.toMatchObject({ code: 'conflict' });
  expect(await readFile(path.join(diskPath, ...key.split('/')), 'utf8')).toBe('the first bytes');
});

test('with AllowOverwrite off, check is quiet and reports the server enforcing write-once', async () => {
  const { driver, logged } = await driverOn(false);
  const store = new ArchiveStore(driver, createLogger({ stream: new PassThrough(), level: 'error' }));
  expect(await store.check()).toMatchObject({ ok: true, writeOnce: 'enforced' });
  expect(logged()).not.toContain('replaces existing files');
});
