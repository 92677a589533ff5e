import { constants, createReadStream } from 'node:fs';
import { FileHandle, link, lstat, mkdir, open, readdir, readFile, realpath, rmdir, stat, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ArchiveKey, DepotError, Manifest, Space } from '../../../contract';
import { handleError } from '../../../support/error-handler';
import type { ArchiveBody, DriverCapabilities, FileBody, FileTarget, ListOptions, ProbeReport, PublishOutcome, StorageDriver } from '../../driver';
import { foreignObject, manifestDifference, parseManifest, serializeManifest } from '../../manifest';
import { STREAM_CHUNK } from '../../hashing-stream';
import { ArchivePaths, archivePaths, walkKeyTree } from '../../key-tree';
import { FlushAlong, SYNC_EVERY } from '../../flush-along';
import { probeName, runProbe } from '../../probe';
import { DirSync } from './dir-sync';
import { closeFd, fchmodFd, fstatFd, fsyncFd, openFd, writeAllFd } from './fd';
import { copyThroughBuffers } from './buffered-copy';
import { copyInKernel, kernelCopyAvailable, KernelCopyOptions } from './kernel-copy';
import type { FilesystemSettings } from './types';
import { CHECK_DIR, isStagingName, notOwnDirectory, STAGING_DIR, STALE_STAGING_MS, StagingNames, writerGone } from '../../staging';
import { ignoreFailure } from '../../../support/ignore';
import { isInsideRoot } from '../../../support/path-inside';

/** Source files from this size on are copied inside the kernel (storeFile); below it starting cp costs more than it saves. */
const KERNEL_COPY_FROM = 8 * 1024 * 1024;
/** Date directories remembered as flushed into their parents; a bound, not a tuning knob (a few per day are used). */
const MAX_DURABLE = 10_000;

/**
 * Write-once archives in a directory tree: `<root>/YYYY/MM/DD/<taskId>/<name>`
 * with a sidecar manifest. Bytes go to a staging file inside the root, are
 * fsynced, and are published with link(2), which never replaces an existing
 * name. Every path is derived from a checked key and resolved inside the root.
 */
export class FilesystemDriver implements StorageDriver {
  readonly type = 'filesystem';
  readonly capabilities: DriverCapabilities = { retention: false, space: true, list: true };
  private readonly root: string;
  private readonly staging: string;
  private readonly dirSync = new DirSync();
  /** Date directories whose entry in their parent this process has flushed since they were made. */
  private readonly durable = new Set<string>();
  private readonly stagingNames = new StagingNames();
  private ready?: Promise<string>;

  constructor(
    readonly name: string,
    private readonly settings: FilesystemSettings,
  ) {
    this.root = path.resolve(settings.root);
    this.staging = path.join(this.root, STAGING_DIR);
  }

  /** Creates the root and staging area once, and removes what crashed stores left there. Resolves to the real root. */
  private init(): Promise<string> {
    this.ready ??= (async () => {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      await this.ownDirectory(this.staging);
      await this.removeLeftovers();
      return realpath(this.root);
    })();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  /**
   * Staging files whose writer is gone: our host with a dead pid, or untouched
   * for a day (other hosts on a shared volume). Only files named as depot
   * names its staging files: nothing else in there is depot's to delete.
   */
  private async removeLeftovers(): Promise<void> {
    for (const entry of await readdir(this.staging, { withFileTypes: true })) {
      if (!entry.isFile() || !isStagingName(entry.name)) continue;
      const file = path.join(this.staging, entry.name);
      if (writerGone(entry.name) || (await isOlderThan(file, STALE_STAGING_MS)))
        await ignoreFailure(unlink(file), 'a leftover removed by another process meanwhile is gone either way');
    }
  }

  /** Makes one of the driver's own directories under the root, and refuses one that is not a real directory there (a planted symlink). */
  private async ownDirectory(dir: string): Promise<void> {
    await mkdir(dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    if (!(await lstat(dir)).isDirectory()) throw notOwnDirectory(this.name, dir);
  }

  /** Paths of a key; callers make sure its directory resolves inside the root (no symlink escape) before using them. */
  private locate(key: ArchiveKey): ArchivePaths {
    return archivePaths(this.root, key, path);
  }

  private async assertInside(dir: string, realRoot: string): Promise<void> {
    const real = await realpath(dir);
    if (!isInsideRoot(real, realRoot)) {
      throw new DepotError('internal', `${this.name}: a directory of the key resolves outside the root; refusing to follow it`);
    }
  }

  /**
   * Creates a key's directory, after checking that the part of its path which
   * already exists resolves inside the root: mkdir would otherwise follow a
   * planted symlink and create directories outside the root before any check.
   * Returns the directories it created, outermost first.
   */
  private async makeKeyDir(dir: string, realRoot: string): Promise<string[]> {
    // Usually the day's directory exists already: check it, create the task's directory in it, check that.
    try {
      await this.assertInside(path.dirname(dir), realRoot);
      await mkdir(dir, { mode: 0o755 });
      await this.assertInside(dir, realRoot);
      return [dir];
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EEXIST') throw error;
    }
    // A new day (or a retry whose directory exists): find the deepest existing directory and check it.
    let existing = dir;
    for (;;) {
      try {
        await this.assertInside(existing, realRoot);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || existing === this.root) throw error;
        existing = path.dirname(existing);
      }
    }
    if (existing === dir) return [];
    const first = await mkdir(dir, { recursive: true, mode: 0o755 });
    await this.assertInside(dir, realRoot);
    const created: string[] = [];
    if (first !== undefined) for (let d = dir; d.length >= first.length; d = path.dirname(d)) created.unshift(d);
    return created;
  }

  async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    return this.storeStaged(
      key,
      (staged) => this.stage(staged, body, signal),
      () => body.stream.destroy(),
      signal,
    );
  }

  /**
   * A source file of at least KERNEL_COPY_FROM bytes: on the root's own
   * filesystem copied inside the kernel (kernel-copy.ts) and hashed from the
   * staged copy; elsewhere copied through two reused buffers
   * (buffered-copy.ts). A smaller one is streamed (null).
   */
  async storeFile(key: ArchiveKey, body: FileBody, signal: AbortSignal): Promise<PublishOutcome | null> {
    if (body.file.size < KERNEL_COPY_FROM) return null;
    const realRoot = await this.init();
    const rootDev = (await stat(realRoot)).dev;
    return this.storeStaged(
      key,
      (staged) => this.stageCopy(staged, body, rootDev, signal),
      () => undefined,
      signal,
    );
  }

  /** Stages the bytes (`stage`), publishes them under `key`, flushes the directories; on failure removes what it made. */
  private async storeStaged(
    key: ArchiveKey,
    stage: (staged: { data: string; manifest: string }) => Promise<Manifest>,
    abandon: () => void,
    signal: AbortSignal,
  ): Promise<PublishOutcome> {
    const realRoot = await this.init();
    const target = this.locate(key);
    const stem = path.join(this.staging, this.stagingNames.next());
    const staged = { data: `${stem}.part`, manifest: `${stem}.manifest` };
    // The key's directory is made while the bytes are written; a store that publishes nothing removes it again.
    const making = this.makeKeyDir(target.dir, realRoot);
    void ignoreFailure(making, 'its failure is reported below, once the bytes are written');
    let published = false;
    try {
      const manifest = await stage(staged);
      signal.throwIfAborted();
      const created = await making;
      const outcome = await this.publish(key.text, target, staged, manifest);
      published = outcome.status === 'created';
      // The staging names go while the directories are flushed.
      const syncing = published && this.settings.fsync ? this.syncUp(target.dir, created) : Promise.resolve();
      await settleAll([removeStaged(staged), syncing]);
      return outcome;
    } catch (error) {
      abandon();
      await removeStaged(staged);
      throw handleError(signal.aborted ? new DepotError('unavailable', 'store aborted', { cause: error }) : error);
    } finally {
      if (!published) await removeEmpty(await making.catch(() => []));
    }
  }

  /**
   * Manifest first, then the archive: a crash between the two leaves a manifest
   * without an archive, which is invisible and which a retry completes; never an
   * archive without its manifest.
   */
  private async publish(key: string, target: ArchivePaths, staged: { data: string; manifest: string }, manifest: Manifest): Promise<PublishOutcome> {
    const placed = await linkOnce(staged.manifest, target.sidecar);
    if (!placed) {
      const existing = parseManifest(await readFile(target.sidecar, { flag: constants.O_RDONLY | constants.O_NOFOLLOW }), key);
      // Adopted only when it is this store's own manifest (an earlier attempt got this far): same bytes under
      // another owner, metadata or retention are another archive, and the key is taken.
      if (manifestDifference(existing, manifest) !== null) return { status: 'exists', existing };
      manifest = existing;
    }
    if (!(await linkOnce(staged.data, target.file))) {
      if (placed) await this.withdrawIfForeign(key, target, manifest);
      return { status: 'exists', existing: manifest };
    }
    return { status: 'created', manifest };
  }

  /**
   * The archive name was taken although no manifest was there a moment ago. An
   * attempt of this task that adopted the manifest just placed writes the same
   * size; a file of another size (or not a file) is another writer's: the
   * manifest is taken back rather than left beside it, and the store is a
   * conflict. One of the same size is left to the shared layer, which compares
   * the bytes.
   */
  private async withdrawIfForeign(key: string, target: { file: string; sidecar: string }, manifest: Manifest): Promise<void> {
    const info = await lstat(target.file);
    if (info.isFile() && info.size === manifest.size) return;
    await unlink(target.sidecar);
    throw foreignObject(this.name, key);
  }

  /**
   * fsyncs the key's directory and its parents up to the root, so new
   * directories survive a crash too. A parent is skipped when this process has
   * already flushed it since the child's entry was made (`durable`); concurrent
   * stores share the fsyncs that remain (DirSync).
   */
  private async syncUp(dir: string, created: string[]): Promise<void> {
    for (const d of created) this.durable.delete(d);
    const syncs: Promise<void>[] = [this.dirSync.sync(dir)];
    for (let d = dir; d.length > this.root.length && !this.durable.has(d); d = path.dirname(d)) {
      const child = d;
      const remember = child !== dir; // date directories only: task directories are never revisited
      syncs.push(this.dirSync.sync(path.dirname(child)).then(() => void (remember && this.rememberDurable(child))));
    }
    await Promise.all(syncs);
  }

  private rememberDurable(dir: string): void {
    if (this.durable.size >= MAX_DURABLE) this.durable.clear();
    this.durable.add(dir);
  }

  /**
   * Writes the archive and its manifest to new staging files and flushes both.
   * Both are created at once; after the last byte of the archive, the manifest
   * is written and the two are flushed side by side. Descriptors are closed in
   * the background: nothing needs to wait for close(2) once fsync succeeded.
   */
  private async stage(staged: { data: string; manifest: string }, body: ArchiveBody, signal: AbortSignal): Promise<Manifest> {
    const [data, sidecar] = await createAll([staged.data, staged.manifest]);
    const flush = new FlushAlong(data, this.settings.fsync ? SYNC_EVERY : undefined);
    try {
      for await (const chunk of body.stream as AsyncIterable<Buffer>) {
        signal.throwIfAborted();
        await writeAllFd(data, chunk);
        flush.wrote(chunk.length);
      }
      signal.throwIfAborted();
      const manifest = body.manifest();
      await this.completeStaged(data, sidecar, manifest, flush);
      return manifest;
    } finally {
      await flush.settled();
      closeQuietly(data);
      closeQuietly(sidecar);
    }
  }

  /**
   * stage() for a local source file: copied into the staging file inside the
   * kernel, hashed from the staged bytes as the copy goes on (or, on another
   * filesystem, through reused buffers: copyLocal); the manifest (checked
   * against the task by body.manifest) then written beside it and both
   * flushed, as stage() does.
   */
  private async stageCopy(staged: { data: string; manifest: string }, body: FileBody, rootDev: number, signal: AbortSignal): Promise<Manifest> {
    const [data, sidecar] = await createAll([staged.data, staged.manifest], constants.O_RDWR);
    try {
      const options = { signal, syncEvery: this.settings.fsync ? SYNC_EVERY : undefined, onBytes: body.onBytes };
      const written = await copyLocal(body.file, { path: staged.data, fd: data, dev: rootDev }, options);
      signal.throwIfAborted();
      const manifest = body.manifest(written);
      await this.completeStaged(data, sidecar, manifest);
      return manifest;
    } finally {
      closeQuietly(data);
      closeQuietly(sidecar);
    }
  }

  /** The staged archive (after its flushes along the way, if any) and its manifest, written beside it, completed side by side. */
  private async completeStaged(data: number, sidecar: number, manifest: Manifest, flush?: FlushAlong): Promise<void> {
    const completeData = async () => {
      await flush?.done();
      await this.complete(data);
    };
    const writeSidecar = async () => {
      await writeAllFd(sidecar, serializeManifest(manifest));
      await this.complete(sidecar);
    };
    await settleAll([completeData(), writeSidecar()]);
  }

  /** A staging file, fully written: flushed (fsync) and given its final mode. */
  private complete(fd: number): Promise<void> {
    return settleAll([this.settings.fsync ? fsyncFd(fd) : Promise.resolve(), fchmodFd(fd, this.settings.fileMode)]);
  }

  private async writeFile(file: string, bytes: Buffer): Promise<void> {
    const fd = await openFd(file, CREATE_NEW | constants.O_WRONLY, 0o600);
    try {
      await writeAllFd(fd, bytes);
      if (this.settings.fsync) await fsyncFd(fd);
      await fchmodFd(fd, this.settings.fileMode);
    } finally {
      await closeFd(fd);
    }
  }

  async retrieve(key: ArchiveKey, signal: AbortSignal): Promise<{ body: Readable; manifest: Manifest }> {
    const realRoot = await this.init();
    const target = this.locate(key);
    let handle: FileHandle | undefined;
    try {
      await this.assertInside(target.dir, realRoot);
      handle = await open(target.file, constants.O_RDONLY | constants.O_NOFOLLOW);
      const manifest = await this.readSidecar(key.text, target.sidecar);
      if (!manifest) throw foreignObject(this.name, key.text);
      const body = createReadStream('', { fd: handle, highWaterMark: STREAM_CHUNK, signal });
      handle = undefined; // the stream closes it now
      return { body, manifest };
    } catch (error) {
      await handle?.close();
      throw this.notFoundOr(error, key.text);
    }
  }

  /**
   * An archive of at least KERNEL_COPY_FROM bytes retrieved to a file: on the
   * root's own filesystem copied inside the kernel (kernel-copy.ts) and
   * hashed from the target as it fills; elsewhere copied through two reused
   * buffers (buffered-copy.ts). A smaller one is streamed (null).
   */
  async retrieveFile(
    key: ArchiveKey,
    target: FileTarget,
    signal: AbortSignal,
  ): Promise<{ manifest: Manifest; written: { sha256: string; size: number } } | null> {
    const realRoot = await this.init();
    const paths = this.locate(key);
    let fd: number | undefined;
    try {
      await this.assertInside(paths.dir, realRoot);
      // Not blocking on a FIFO put in the archive's place; only a regular file is copied.
      fd = await openFd(paths.file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const info = await fstatFd(fd);
      if (!info.isFile()) throw new DepotError('integrity', `${this.name}:${key.text} is not a regular file`);
      const manifest = await this.readSidecar(key.text, paths.sidecar);
      if (!manifest) throw foreignObject(this.name, key.text);
      if (manifest.size < KERNEL_COPY_FROM) return null;
      const archive = `/proc/${process.pid}/fd/${fd}`;
      const options = { signal, syncEvery: SYNC_EVERY, onBytes: (bytes: number) => target.onBytes?.(bytes, manifest.size) };
      const written = await copyLocal({ path: archive, dev: info.dev }, target, options);
      return { manifest, written };
    } catch (error) {
      // cp's "source" is the archive here: a failure to read it is the backend's, not the task's source's.
      if (error instanceof DepotError && error.code === 'source_unavailable') throw new DepotError('unavailable', error.message, { cause: error });
      throw signal.aborted ? new DepotError('unavailable', 'retrieve aborted', { cause: error }) : this.notFoundOr(error, key.text);
    } finally {
      if (fd !== undefined) closeQuietly(fd);
    }
  }

  async stat(key: ArchiveKey): Promise<Manifest | null> {
    const realRoot = await this.init();
    const target = this.locate(key);
    try {
      await this.assertInside(target.dir, realRoot);
      const info = await lstat(target.file);
      if (!info.isFile()) throw new DepotError('integrity', `${this.name}:${key.text} is not a regular file`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw handleError(error);
    }
    const manifest = await this.readSidecar(key.text, target.sidecar);
    if (!manifest) throw foreignObject(this.name, key.text);
    return manifest;
  }

  private async readSidecar(key: string, sidecar: string): Promise<Manifest | null> {
    try {
      return parseManifest(await readFile(sidecar, { flag: constants.O_RDONLY | constants.O_NOFOLLOW }), key);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw handleError(error);
    }
  }

  async delete(key: ArchiveKey): Promise<void> {
    const realRoot = await this.init();
    const target = this.locate(key);
    try {
      await this.assertInside(target.dir, realRoot);
      // Archive first: a crash in between leaves an invisible manifest, not an archive without one.
      await unlink(target.file);
      await unlink(target.sidecar).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      await ignoreFailure(rmdir(target.dir), "only when the task's directory is now empty");
      if (this.settings.fsync) await this.dirSync.sync(path.dirname(target.dir));
    } catch (error) {
      throw this.notFoundOr(error, key.text);
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<Manifest> {
    await this.init();
    yield* walkKeyTree(
      {
        list: async (dir) => {
          try {
            return (await readdir(dir, { withFileTypes: true })).map((e) => ({ name: e.name, isDirectory: e.isDirectory(), isFile: e.isFile() }));
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
            throw handleError(error);
          }
        },
        readManifest: (sidecar, key) => this.readSidecar(key.text, sidecar),
        join: (...parts) => path.join(...parts),
      },
      this.root,
      prefix,
      options.after,
    );
  }

  async check(signal: AbortSignal): Promise<ProbeReport> {
    await this.init();
    const dir = path.join(this.root, CHECK_DIR);
    await this.ownDirectory(dir);
    const file = path.join(dir, probeName());
    // link(2) never replaces a name: write-once is the kernel's, not depot's.
    const timings = await runProbe({
      write: async (bytes) => {
        signal.throwIfAborted();
        await this.writeFile(file, bytes);
      },
      read: () => readFile(file, { signal }),
      remove: async () => {
        await ignoreFailure(unlink(file), 'a probe left behind is harmless: it is outside the archive keys');
      },
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

  private notFoundOr(error: unknown, key: string): DepotError {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return new DepotError('not_found', `no archive ${this.name}:${key}`);
    if (code === 'ELOOP') return new DepotError('integrity', `${this.name}:${key} is a symbolic link; refusing to follow it`);
    return handleError(error);
  }
}

const CREATE_NEW = constants.O_CREAT | constants.O_EXCL;

/** New files (mode 0600), opened side by side; none is left open when one fails. */
/** New staging files, opened for writing (`access`: O_RDWR to read them back too). */
async function createAll(files: string[], access = constants.O_WRONLY): Promise<number[]> {
  const opened = await Promise.allSettled(files.map((file) => openFd(file, CREATE_NEW | access, 0o600)));
  const fds = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    fds.forEach(closeQuietly);
    throw failed.reason;
  }
  return fds;
}

/** Copies `from` into `to` inside the kernel when both are on one filesystem and cp runs here, else through two reused buffers. */
async function copyLocal(
  from: { path: string; dev: number },
  to: { path: string; fd: number; dev: number },
  options: KernelCopyOptions,
): Promise<{ sha256: string; size: number }> {
  if (from.dev === to.dev && (await kernelCopyAvailable())) return copyInKernel(from.path, to.path, to.fd, options);
  return copyThroughBuffers(from.path, to.fd, options);
}

function closeQuietly(fd: number): void {
  void ignoreFailure(closeFd(fd), 'the data was flushed (or the store failed) before the close');
}

/** Waits for all, then fails with the first failure: nothing is left running behind a rejection. */
async function settleAll(operations: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(operations);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

function removeStaged(staged: { data: string; manifest: string }): Promise<unknown> {
  const why = 'a staging file that is not there was never written or is gone; the sweep removes any other';
  return Promise.all([ignoreFailure(unlink(staged.data), why), ignoreFailure(unlink(staged.manifest), why)]);
}

/** Directories this store made and left empty, deepest first; one in use by another store is kept (ENOTEMPTY). */
async function removeEmpty(created: string[]): Promise<void> {
  for (const dir of [...created].reverse()) {
    if (
      !(await rmdir(dir).then(
        () => true,
        () => false,
      ))
    )
      return;
  }
}

/** link(2): false when the name exists. Never replaces it. */
async function linkOnce(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

async function isOlderThan(file: string, ms: number): Promise<boolean> {
  const info = await ignoreFailure(lstat(file), 'a file that cannot be looked at is not taken for old');
  return info !== undefined && Date.now() - info.mtimeMs > ms;
}
