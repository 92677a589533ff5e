import { chmod, mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { StorageDriver } from '../../src/storage/driver';
import { FilesystemDriver, filesystemSettingsSchema, FilesystemSettings } from '../../src/storage/drivers/filesystem';
import type { ConformanceHarness } from '../conformance/suite';

/** The filesystem driver's staging directory inside its root (driver-internal, not visible as archives). */
export const STAGING_DIR = '.depot-tmp';

export interface FilesystemHarnessOptions {
  name?: string;
  /** Wraps the real driver, e.g. in a deliberately broken decorator; gets the backend's root. */
  wrap?: (driver: FilesystemDriver, root: string) => StorageDriver;
  settings?: Partial<Omit<FilesystemSettings, 'type' | 'root'>>;
}

/** A conformance harness for the filesystem driver: one fresh mkdtemp root per driver, removed in cleanup. */
export function filesystemHarness(options: FilesystemHarnessOptions = {}): ConformanceHarness {
  const roots = new Map<StorageDriver, string>();
  const rootOf = (driver: StorageDriver): string => {
    const root = roots.get(driver);
    if (!root) throw new Error('driver was not made by this harness');
    return root;
  };

  return {
    name: options.name ?? 'filesystem',

    async makeDriver() {
      const root = await mkdtemp(path.join(tmpdir(), 'depot-conformance-'));
      const settings = filesystemSettingsSchema.parse({ type: 'filesystem', root, ...options.settings });
      const real = new FilesystemDriver('conformance', settings);
      const driver = options.wrap ? options.wrap(real, root) : real;
      roots.set(driver, root);
      return driver;
    },

    async tamper(driver, key) {
      // Archives are read-only (0444): make writable, flip the first byte (or add one), make read-only again.
      const file = path.join(rootOf(driver), ...key.split('/'));
      await chmod(file, 0o644);
      const handle = await open(file, 'r+');
      try {
        const { bytesRead, buffer } = await handle.read(Buffer.alloc(1), 0, 1, 0);
        await handle.write(Buffer.from([bytesRead === 0 ? 0x2a : buffer[0] ^ 0xff]), 0, 1, 0);
      } finally {
        await handle.close();
      }
      await chmod(file, 0o444);
    },

    plant: (driver, key, bytes) => plantFile(rootOf(driver), key, bytes),

    visibleEntries: (driver) => visibleFilesBelow(rootOf(driver)),
    stagingEntries: (driver) => stagingFilesIn(rootOf(driver)),
    breakBackend: (driver) => replaceWithFile(rootOf(driver)),

    async cleanup() {
      await Promise.all([...roots.values()].map((root) => rm(root, { recursive: true, force: true })));
      roots.clear();
    },
  };
}

/** A file at `key` below `root`, written behind the driver's back (no manifest). */
export async function plantFile(root: string, key: string, bytes: Buffer): Promise<void> {
  const file = path.join(root, ...key.split('/'));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
}

/** Files below a driver's root on disk, as keys, outside the staging directory. */
export async function visibleFilesBelow(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => !entry.isDirectory())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .filter((relative) => !relative.startsWith(`${STAGING_DIR}/`))
    .sort();
}

/** The staging files a driver left in its root's staging directory. */
export async function stagingFilesIn(root: string): Promise<string[]> {
  return readdir(path.join(root, STAGING_DIR)).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
}

/** The backend disappears: the root becomes a plain file, so nothing can be written under it. */
export async function replaceWithFile(root: string): Promise<void> {
  await rm(root, { recursive: true, force: true });
  await writeFile(root, 'not a directory any more\n');
}
