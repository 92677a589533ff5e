import { chown, open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { StorageDriver } from '../../src/storage/driver';
import { FtpDriver } from '../../src/storage/drivers/ftp';
import { silentLogger } from '../../src/support/logging';
import { plantFile, replaceWithFile, stagingFilesIn, visibleFilesBelow } from '../helpers/filesystem-harness';
import { adoptNodeErrorsInBasicFtp, ftpDriverSettings, FtpServer, startFtpServer } from '../helpers/ftp-server';
import { ConformanceHarness, describeConformance } from './suite';

/**
 * The conformance suite against proftpd (Debian's), started by the test on a
 * free loopback port with explicit FTPS required and overwriting off: one
 * fresh directory per driver, its on-disk view read directly.
 */
// Socket errors must look like errors to basic-ftp under jest (see the helper).
adoptNodeErrorsInBasicFtp();
let server: FtpServer;
let count = 0;

beforeAll(async () => {
  server = await startFtpServer({ tls: 'explicit' });
}, 30_000);

afterAll(async () => {
  await server?.destroy();
});

function ftpHarness(): ConformanceHarness {
  const roots = new Map<StorageDriver, string>();
  const rootOf = (driver: StorageDriver): string => {
    const root = roots.get(driver);
    if (!root) throw new Error('driver was not made by this harness');
    return root;
  };

  return {
    name: 'ftp',

    async makeDriver() {
      count += 1;
      const { ftpPath, diskPath } = await server.makeRoot(`conformance-${count}`);
      const settings = ftpDriverSettings(server, ftpPath);
      const driver = new FtpDriver('conformance', settings, silentLogger());
      roots.set(driver, diskPath);
      return driver;
    },

    async tamper(driver, key) {
      // The test runs as root: flip the first byte (or add one) on disk, behind the server's back.
      const file = path.join(rootOf(driver), ...key.split('/'));
      const handle = await open(file, 'r+');
      try {
        const { bytesRead, buffer } = await handle.read(Buffer.alloc(1), 0, 1, 0);
        await handle.write(Buffer.from([bytesRead === 0 ? 0x2a : buffer[0] ^ 0xff]), 0, 1, 0);
      } finally {
        await handle.close();
      }
    },

    async plant(driver, key, bytes) {
      // As the server's user would have written it: the directories made stay writable for the server.
      const root = rootOf(driver);
      await plantFile(root, key, bytes);
      const owner = await stat(root);
      const parts = key.split('/');
      for (let i = 1; i <= parts.length; i++) await chown(path.join(root, ...parts.slice(0, i)), owner.uid, owner.gid);
    },
    visibleEntries: (driver) => visibleFilesBelow(rootOf(driver)),
    stagingEntries: (driver) => stagingFilesIn(rootOf(driver)),
    breakBackend: (driver) => replaceWithFile(rootOf(driver)),

    async cleanup() {
      await Promise.all([...roots.values()].map((root) => rm(root, { recursive: true, force: true })));
      roots.clear();
    },
  };
}

describe('ftp driver (proftpd, explicit FTPS): conformance', () => {
  describeConformance(() => ftpHarness());
});
