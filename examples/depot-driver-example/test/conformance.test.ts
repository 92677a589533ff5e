import { chmod, mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConformanceHarness, configuredDriver, describeConformance } from 'archive-depot/conformance';
import type { StorageDriver } from 'archive-depot/driver-api';
import { ARCHIVES_DIR, keyFiles, STAGING_DIR } from '../src';

/**
 * depot's conformance suite on this plugin, loaded as depot loads it: through
 * `module:` in a depot config (test/depot.yaml), its settings validated and its
 * secret resolved. Every driver gets a fresh directory.
 */
const CONFIG = path.join(__dirname, 'depot.yaml');

function flatdirHarness(): ConformanceHarness {
  const roots = new Map<StorageDriver, string>();
  const rootOf = (driver: StorageDriver): string => {
    const root = roots.get(driver);
    if (!root) throw new Error('driver was not made by this harness');
    return root;
  };
  const filesIn = async (dir: string) => (await readdir(dir).catch(() => [])).sort();

  return {
    name: 'flatdir',
    async makeDriver() {
      const root = await mkdtemp(path.join(tmpdir(), 'flatdir-'));
      const driver = configuredDriver({ config: CONFIG, driver: 'archive', env: { FLATDIR_ROOT: root, FLATDIR_SEAL_KEY: 'a seal key for the tests' } });
      roots.set(driver, root);
      return driver;
    },
    async tamper(driver, key) {
      const file = keyFiles(rootOf(driver), key).archive;
      await chmod(file, 0o644);
      const handle = await open(file, 'r+');
      try {
        const { bytesRead, buffer } = await handle.read(Buffer.alloc(1), 0, 1, 0);
        await handle.write(Buffer.from([bytesRead === 0 ? 0x2a : buffer[0] ^ 0xff]), 0, 1, 0);
      } finally {
        await handle.close();
      }
    },
    async plant(driver, key, bytes) {
      await mkdir(path.join(rootOf(driver), ARCHIVES_DIR), { recursive: true });
      await writeFile(keyFiles(rootOf(driver), key).archive, bytes);
    },
    visibleEntries: (driver) => filesIn(path.join(rootOf(driver), ARCHIVES_DIR)),
    stagingEntries: (driver) => filesIn(path.join(rootOf(driver), STAGING_DIR)),
    async breakBackend(driver) {
      const root = rootOf(driver);
      await rm(root, { recursive: true, force: true });
      await writeFile(root, 'not a directory any more\n');
    },
    async cleanup() {
      await Promise.all([...roots.values()].map((root) => rm(root, { recursive: true, force: true })));
      roots.clear();
    },
  };
}

describe('flatdir: depot conformance', () => {
  describeConformance(flatdirHarness);
});
