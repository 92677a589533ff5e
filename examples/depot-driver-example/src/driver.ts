import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, lstat, mkdir, open, readdir, readFile, statfs, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ArchiveBody,
  ArchiveKey,
  DepotError,
  DriverCapabilities,
  foreignObject,
  Manifest,
  manifestDifference,
  ProbeReport,
  probeName,
  PublishOutcome,
  runProbe,
  Space,
  StorageDriver,
} from 'archive-depot/driver-api';
import { ARCHIVES_DIR, KeyFiles, keyFiles, STAGING_DIR } from './layout';
import { sealManifest, unsealManifest } from './seal';
import type { FlatdirSettings } from './settings';

/**
 * Archives as flat files in one directory (see layout.ts). Bytes and manifest
 * are written to staging files first; publishing links them into place with
 * link(2), which fails with EEXIST instead of replacing a name: write-once is
 * the kernel's conditional operation, not a look before writing.
 */
export class FlatdirDriver implements StorageDriver {
  readonly type = 'flatdir';
  readonly capabilities: DriverCapabilities = { retention: false, space: true, list: true };
  private readonly root: string;
  private ready?: Promise<void>;

  constructor(
    readonly name: string,
    private readonly settings: FlatdirSettings,
  ) {
    this.root = settings.root;
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      for (const dir of [ARCHIVES_DIR, STAGING_DIR]) await mkdir(path.join(this.root, dir), { recursive: true, mode: 0o700 });
    })();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    await this.init();
    const stem = path.join(this.root, STAGING_DIR, randomUUID());
    const staged: KeyFiles = { archive: `${stem}.bin`, manifest: `${stem}.json` };
    try {
      // Streamed to disk as it comes; the shared layer errors the stream when the bytes are not the task's.
      await pipeline(body.stream, createWriteStream(staged.archive, { flags: 'wx', mode: 0o444, flush: true }), { signal });
      const manifest = body.manifest();
      await writeFile(staged.manifest, sealManifest(manifest, this.settings.sealKey), { flag: 'wx', mode: 0o444, flush: true });
      return await this.publish(key.text, keyFiles(this.root, key.text), staged, manifest);
    } catch (error) {
      body.stream.destroy();
      throw signal.aborted ? new DepotError('unavailable', 'store aborted', { cause: error }) : error;
    } finally {
      await Promise.all([removeIfThere(staged.archive), removeIfThere(staged.manifest)]);
    }
  }

  /**
   * Manifest first, then the archive: a crash in between leaves a manifest
   * without an archive, which is invisible and which a retry adopts; never an
   * archive without a manifest (that is another writer's object).
   */
  private async publish(key: string, target: KeyFiles, staged: KeyFiles, manifest: Manifest): Promise<PublishOutcome> {
    const placed = await linkOnce(staged.manifest, target.manifest);
    if (!placed) {
      const existing = await this.readManifest(target.manifest, key);
      if (!existing) throw new DepotError('unavailable', `the manifest of ${this.name}:${key} was removed while storing`);
      if (manifestDifference(existing, manifest) !== null) return { status: 'exists', existing };
      manifest = existing; // an earlier attempt of this store got this far
    }
    if (await linkOnce(staged.archive, target.archive)) return { status: 'created', manifest };
    // The archive's name is taken although its manifest was not: another writer's, unless it is this store's size (the shared layer compares the bytes).
    const info = await lstat(target.archive);
    if (placed && (!info.isFile() || info.size !== manifest.size)) {
      await unlink(target.manifest);
      throw foreignObject(this.name, key);
    }
    return { status: 'exists', existing: manifest };
  }

  async retrieve(key: ArchiveKey, signal: AbortSignal): Promise<{ body: Readable; manifest: Manifest }> {
    await this.init();
    const files = keyFiles(this.root, key.text);
    const handle = await open(files.archive, 'r').catch((error: unknown) => {
      throw this.notFoundOr(error, key.text);
    });
    try {
      const manifest = await this.readManifest(files.manifest, key.text);
      if (!manifest) throw foreignObject(this.name, key.text);
      return { body: createReadStream('', { fd: handle, signal }), manifest };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async stat(key: ArchiveKey): Promise<Manifest | null> {
    await this.init();
    const files = keyFiles(this.root, key.text);
    if (!(await exists(files.archive))) return null;
    const manifest = await this.readManifest(files.manifest, key.text);
    if (!manifest) throw foreignObject(this.name, key.text);
    return manifest;
  }

  async delete(key: ArchiveKey): Promise<void> {
    await this.init();
    const files = keyFiles(this.root, key.text);
    // Archive first: a crash in between leaves an invisible manifest, never an archive without one.
    await unlink(files.archive).catch((error: unknown) => {
      throw this.notFoundOr(error, key.text);
    });
    await removeIfThere(files.manifest);
  }

  /** Every archive's manifest, filtered by prefix; sorted by key, the same order on every listing. */
  async *list(prefix: string): AsyncIterable<Manifest> {
    await this.init();
    const dir = path.join(this.root, ARCHIVES_DIR);
    const found: Manifest[] = [];
    for (const entry of await readdir(dir)) {
      if (!entry.endsWith('.json')) continue;
      const file = path.join(dir, entry);
      const manifest = await this.readManifest(file);
      if (!manifest?.key.startsWith(prefix)) continue;
      const files = keyFiles(this.root, manifest.key);
      // Only published archives under their own name: a manifest alone is an unfinished store.
      if (files.manifest === file && (await exists(files.archive))) found.push(manifest);
    }
    yield* found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async check(signal: AbortSignal): Promise<ProbeReport> {
    await this.init();
    const file = path.join(this.root, STAGING_DIR, probeName());
    const timings = await runProbe({
      write: (bytes) => writeFile(file, bytes, { flag: 'wx', signal }),
      read: () => readFile(file, { signal }),
      remove: () => removeIfThere(file),
    });
    return { ...timings, writeOnce: 'enforced' };
  }

  async space(): Promise<Space> {
    await this.init();
    const s = await statfs(this.root);
    return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize, usedBytes: (s.blocks - s.bfree) * s.bsize };
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  /** The manifest in `file`, or null when there is none; it must name `key` when given. */
  private async readManifest(file: string, key?: string): Promise<Manifest | null> {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    return unsealManifest(bytes, this.settings.sealKey, key);
  }

  private notFoundOr(error: unknown, key: string): unknown {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? new DepotError('not_found', `no archive ${this.name}:${key}`) : error;
  }
}

/** link(2): true when placed, false when the name was taken. */
async function linkOnce(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

async function removeIfThere(file: string): Promise<void> {
  await unlink(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}
