import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { Client, FTPError } from 'basic-ftp';
import type { AccessOptions, FileInfo } from 'basic-ftp';
import { ArchiveKey, DepotError, Manifest, Space } from '../../../contract';
import { ignoreFailure } from '../../../support/ignore';
import type { Logger } from '../../../support/logging';
import type { ArchiveBody, DriverCapabilities, FileBody, ListOptions, ProbeReport, PublishOutcome, StorageDriver } from '../../driver';
import { DEFAULT_DRIVER_TIMEOUT_MS } from '../../driver-settings';
import { STREAM_CHUNK } from '../../hashing-stream';
import { ArchivePaths, archivePaths, walkKeyTree } from '../../key-tree';
import { foreignObject, manifestDifference, parseManifest, serializeManifest } from '../../manifest';
import { probeName, runProbe } from '../../probe';
import { QuotaUsage } from '../../quota-usage';
import { CHECK_DIR, isStagingName, notOwnDirectory, STAGING_DIR, STALE_STAGING_MS, StagingNames, writerGone } from '../../staging';
import { ClientPool } from './client-pool';
import { isFtpReply, toDepotError } from './errors';
import { guardedDownload, guardedFileUpload, guardedUpload } from './transfer-guard';
import type { FtpSettings } from './types';

/** A sidecar larger than this is not a depot manifest. */
const MANIFEST_LIMIT = 1024 * 1024;
const DEFAULT_CONNECTIONS = 4;
/** The end of an empty upload held this long on its second try (see transfer-guard.ts). */
const EMPTY_RETRY_DELAY_MS = 500;
/**
 * How long a computed usedBytes is reused by space(): the walk lists every task
 * directory, and `depot serve` checks every driver each minute.
 */
const USAGE_TTL_MS = 10 * 60_000;
/** Date directories remembered as existing, so that a store usually needs one MKD. */
const MAX_KNOWN_DIRS = 10_000;

/**
 * Write-once archives on an FTP or FTPS server: `<root>/YYYY/MM/DD/<taskId>/<name>`
 * with the manifest in a sidecar file beside it, as on the filesystem driver.
 *
 * FTP has no atomic "create if absent" and a plain-FTP upload that breaks off
 * looks complete to the server, so bytes never go to their final name: they are
 * uploaded to `<root>/.depot-tmp/`, their size is checked, and only after the
 * body ended cleanly (hashed and verified) are they renamed into place —
 * manifest first, then the archive, each only after checking that its name is
 * free. Servers should run with overwriting off (proftpd `AllowOverwrite off`),
 * which makes a rename onto an existing name fail instead of replacing it.
 */
export class FtpDriver implements StorageDriver {
  readonly type = 'ftp';
  readonly capabilities: DriverCapabilities;
  private readonly pool: ClientPool;
  private readonly stagingNames = new StagingNames();
  private readonly knownDirs = new Set<string>();
  private ready?: Promise<void>;
  private readonly usage: QuotaUsage;
  private ca?: Buffer;
  private readonly timeoutMs: number;

  constructor(
    readonly name: string,
    private readonly settings: FtpSettings,
    private readonly logger: Logger,
  ) {
    this.capabilities = { retention: false, space: settings.quotaBytes !== undefined, list: true };
    this.timeoutMs = settings.timeoutMs ?? DEFAULT_DRIVER_TIMEOUT_MS;
    this.pool = new ClientPool(settings.maxConcurrent ?? DEFAULT_CONNECTIONS, this.timeoutMs, () => this.accessOptions(), name);
    this.usage = new QuotaUsage(settings.quotaBytes, USAGE_TTL_MS, () => this.usedBytes(settings.root));
  }

  /** A fresh object each time: basic-ftp keeps and changes the TLS options it is given. */
  private accessOptions(): AccessOptions {
    const { host, port, user, password, secure, rejectUnauthorized, caFile } = this.settings;
    if (caFile && !this.ca) {
      try {
        this.ca = readFileSync(caFile);
      } catch (error) {
        throw new DepotError('internal', `${this.name}: cannot read caFile ${caFile}: ${(error as Error).message}`);
      }
    }
    return { host, port, user, password: password ?? '', secure, secureOptions: { rejectUnauthorized, ...(this.ca ? { ca: this.ca } : {}) } };
  }

  private abs(...segments: string[]): string {
    return path.posix.join(this.settings.root, ...segments);
  }

  private locate(key: ArchiveKey): ArchivePaths {
    return archivePaths(this.settings.root, key, path.posix);
  }

  /** Runs `action` on a pooled connection; a connection that failed other than by a server reply is not reused. */
  private async withClient<T>(action: string, run: (client: Client) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const lease = await this.pool.acquire(signal);
    try {
      const result = await run(lease.client);
      lease.release();
      return result;
    } catch (error) {
      lease.release(!(error instanceof FTPError));
      throw toDepotError(error, this.name, action);
    }
  }

  /** Once per driver: the staging directory exists (a real one), and leftovers of dead writers are swept in the background. */
  private init(): Promise<void> {
    this.ready ??= this.withClient('prepare', async (client) => {
      await this.makeDirs(client, this.abs(STAGING_DIR));
      await this.assertOwnDirectory(client, STAGING_DIR);
    }).then(() => {
      this.removeLeftovers().catch((error: Error) => this.logger.warn(`${this.name}: staging leftovers not removed: ${error.message}`, { driver: this.name }));
    });
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  /**
   * A directory of the driver's own at the root must be a real directory: a
   * symlink planted there (the server follows it) would lead staging files and
   * the leftover sweep elsewhere. The root's MLSD shows the entry itself
   * (proftpd: `type=OS.unix=slink`), where MLST would show its target.
   */
  private async assertOwnDirectory(client: Client, name: string): Promise<void> {
    const entry = (await this.listDir(client, this.settings.root)).find((e) => e.name === name);
    if (!entry?.isDirectory || entry.isSymbolicLink) throw notOwnDirectory(this.name, this.abs(name));
  }

  /** Only files named as depot names its staging files are removed: nothing else in there is depot's to delete. */
  private async removeLeftovers(): Promise<void> {
    const entries = await this.withClient('list staging', (client) => this.listDir(client, this.abs(STAGING_DIR)));
    for (const entry of entries) {
      if (!entry.isFile || !isStagingName(entry.name)) continue;
      const stale = entry.modifiedAt !== undefined && Date.now() - entry.modifiedAt.getTime() > STALE_STAGING_MS;
      if (writerGone(entry.name) || stale) await this.withClient('remove leftover', (client) => client.remove(this.abs(STAGING_DIR, entry.name), true));
    }
  }

  /** MKD of `dir` and, where missing, its parents below the root; absolute paths only (a pooled connection's working directory is never changed). */
  private async makeDirs(client: Client, dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    const made = await client.sendIgnoringError(`MKD ${dir}`);
    if (made.code !== 257) {
      // Exists already, or a parent is missing: make every level (each MKD of an existing directory just answers 550).
      const levels: string[] = [];
      for (let d = dir; d !== this.settings.root && d !== '/'; d = path.posix.dirname(d)) levels.unshift(d);
      for (const level of levels) if (!this.knownDirs.has(level)) await client.sendIgnoringError(`MKD ${level}`);
    }
    if (this.knownDirs.size >= MAX_KNOWN_DIRS) this.knownDirs.clear();
    // Task directories are not remembered: each is used once.
    for (let d = path.posix.dirname(dir); d !== this.settings.root && d !== '/'; d = path.posix.dirname(d)) this.knownDirs.add(d);
    if (path.posix.dirname(dir) === this.settings.root) this.knownDirs.add(dir);
  }

  async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    // An abort ends the upload the only way basic-ftp allows: the source fails.
    const onAbort = () => body.stream.destroy(new DepotError('unavailable', 'store aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.storeUploaded(
        key,
        async (client, remote) => {
          await this.uploadArchive(client, body, remote);
          return body.manifest();
        },
        signal,
      );
    } catch (error) {
      body.stream.destroy();
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * A local source file (path and spool sources), uploaded from the file
   * through two reused buffers instead of a stream (guardedFileUpload). An
   * empty file is left to the stream, which handles an empty upload's end on
   * TLS 1.3.
   */
  async storeFile(key: ArchiveKey, body: FileBody, signal: AbortSignal): Promise<PublishOutcome | null> {
    if (body.file.size === 0) return null;
    return this.storeUploaded(
      key,
      async (client, remote) =>
        body.manifest(await guardedFileUpload(client, body.file.path, remote, { timeoutMs: this.timeoutMs, driver: this.name, signal, onBytes: body.onBytes })),
      signal,
    );
  }

  /** A store: `upload` writes the bytes to a staging name and returns their manifest; then checked and published. */
  private async storeUploaded(key: ArchiveKey, upload: (client: Client, remote: string) => Promise<Manifest>, signal: AbortSignal): Promise<PublishOutcome> {
    const target = this.locate(key);
    const stem = this.abs(STAGING_DIR, this.stagingNames.next());
    const staged = { data: `${stem}.part`, manifest: `${stem}.manifest` };
    let published = false;
    try {
      await this.init();
      return await this.withClient(
        'store',
        async (client) => {
          await this.makeDirs(client, target.dir);
          const manifest = await upload(client, staged.data);
          signal.throwIfAborted();
          const size = await this.sizeOf(client, staged.data);
          // A proxy or server that cut the upload short must not get the archive published.
          if (size !== manifest.size) throw new DepotError('unavailable', `${this.name}: the server kept ${size ?? 'no'} bytes of ${manifest.size}`);
          const outcome = await this.publish(client, key.text, target, staged, manifest);
          published = outcome.status === 'created';
          return outcome;
        },
        signal,
      );
    } catch (error) {
      this.knownDirs.clear(); // a directory may have vanished under us
      throw signal.aborted ? new DepotError('unavailable', 'store aborted', { cause: error }) : error;
    } finally {
      await this.cleanUp(staged, published ? undefined : target.dir);
    }
  }

  private async uploadArchive(client: Client, body: ArchiveBody, remote: string): Promise<void> {
    try {
      await guardedUpload(client, body.stream, remote, this.timeoutMs, this.name);
    } catch (error) {
      // An empty archive refused while its TLS data connection was set up: once more, holding the end longer.
      if (!isFtpReply(error, 425) || body.stream.errored || body.manifest().size !== 0) throw error;
      await client.remove(remote, true);
      await guardedUpload(client, Readable.from([]), remote, this.timeoutMs, this.name, EMPTY_RETRY_DELAY_MS);
    }
  }

  /** Staging files go whatever happened; an empty task directory goes when nothing was published. */
  private async cleanUp(staged: { data: string; manifest: string }, emptyDir: string | undefined): Promise<void> {
    await this.withClient('clean up', async (client) => {
      await client.remove(staged.data, true);
      await client.remove(staged.manifest, true);
      if (emptyDir) await client.sendIgnoringError(`RMD ${emptyDir}`);
    }).catch((error: Error) => this.logger.warn(`${this.name}: staging files not removed (swept later): ${error.message}`, { driver: this.name }));
  }

  /**
   * Manifest first, then the archive: a crash between the two leaves a manifest
   * without an archive, which is invisible and which a retry completes; never an
   * archive without its manifest. Each rename goes only onto a name seen free.
   */
  private async publish(
    client: Client,
    key: string,
    target: ArchivePaths,
    staged: { data: string; manifest: string },
    manifest: Manifest,
  ): Promise<PublishOutcome> {
    let existing = await this.readManifest(client, target.sidecar, key);
    let placed = false;
    if (!existing) {
      await guardedUpload(client, Readable.from([serializeManifest(manifest)]), staged.manifest, this.timeoutMs, this.name);
      existing = await this.renameOnce(client, staged.manifest, target.sidecar, () => this.readManifest(client, target.sidecar, key));
      placed = existing === null;
    }
    if (existing) {
      // Adopted only when it is this store's own manifest (an earlier attempt got this far): same bytes under
      // another owner, metadata or retention are another archive, and the key is taken.
      if (manifestDifference(existing, manifest) !== null) return { status: 'exists', existing };
      manifest = existing;
    }
    const taken = await this.renameOnce(client, staged.data, target.file, async () => ((await this.sizeOf(client, target.file)) !== null ? manifest : null));
    if (!taken) return { status: 'created', manifest };
    // Taken although no manifest was there a moment ago: an attempt of this task that adopted the manifest
    // just placed writes the same size; another size is another writer's file. The manifest is taken back
    // rather than left beside it. The same size is left to the shared layer, which compares the bytes.
    if (placed && (await this.sizeOf(client, target.file)) !== manifest.size) {
      await client.remove(target.sidecar);
      throw foreignObject(this.name, key);
    }
    return { status: 'exists', existing: manifest };
  }

  /**
   * Renames `from` onto `to` unless `to` exists; resolves to what holds `to`
   * when it was taken (by `holder`), or null once the rename is done.
   */
  private async renameOnce(client: Client, from: string, to: string, holder: () => Promise<Manifest | null>): Promise<Manifest | null> {
    if ((await this.sizeOf(client, to)) !== null) return (await holder()) ?? this.takenWithoutManifest(to);
    try {
      await client.rename(from, to);
      return null;
    } catch (error) {
      // Overwriting is off on the server and someone was quicker: report what is there.
      if (isFtpReply(error, 550) && (await this.sizeOf(client, to)) !== null) return (await holder()) ?? this.takenWithoutManifest(to);
      throw error;
    }
  }

  private takenWithoutManifest(file: string): never {
    throw new DepotError('integrity', `${this.name}: ${file} exists without a readable manifest`);
  }

  /** SIZE of a file, or null when there is none (550). */
  private async sizeOf(client: Client, file: string): Promise<number | null> {
    try {
      return await client.size(file);
    } catch (error) {
      if (isFtpReply(error, 550)) return null;
      throw error;
    }
  }

  private async readManifest(client: Client, sidecar: string, key: string): Promise<Manifest | null> {
    if ((await this.sizeOf(client, sidecar)) === null) return null;
    return parseManifest(await this.download(client, sidecar, MANIFEST_LIMIT), key);
  }

  /** A small file into memory (a manifest, a probe); larger than `limit` is `integrity`. */
  private async download(client: Client, file: string, limit: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    await guardedDownload(
      client,
      file,
      (chunk, done) => {
        total += chunk.length;
        if (total > limit) return done(new DepotError('integrity', `${this.name}: ${file} is larger than ${limit} bytes`));
        chunks.push(chunk);
        done();
      },
      this.timeoutMs,
      this.name,
    );
    return Buffer.concat(chunks);
  }

  async retrieve(key: ArchiveKey, signal: AbortSignal): Promise<{ body: Readable; manifest: Manifest }> {
    const target = this.locate(key);
    const lease = await this.pool.acquire(signal);
    let manifest: Manifest;
    try {
      const size = await this.sizeOf(lease.client, target.file);
      if (size === null) throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
      const found = await this.readManifest(lease.client, target.sidecar, key.text);
      if (!found) throw foreignObject(this.name, key.text);
      if (found.size !== size) throw new DepotError('integrity', `${this.name}:${key.text} has ${size} bytes, its manifest says ${found.size}`);
      manifest = found;
    } catch (error) {
      // Only a server reply leaves the connection in step; anything else (a manifest download cut off) may not.
      lease.release(!(error instanceof FTPError) && !(error instanceof DepotError && error.code === 'not_found'));
      throw toDepotError(error, this.name, 'retrieve');
    }
    return { body: this.stream(lease, target.file, signal), manifest };
  }

  /**
   * The archive's bytes as a stream the caller reads at its own pace. basic-ftp
   * ends whatever stream it writes to even when the transfer fails, so it writes
   * to a sink that forwards into `out`, and `out` ends only once the transfer
   * succeeded: a cut transfer is `unavailable`, never a short archive.
   */
  private stream(lease: { client: Client; release(broken?: boolean): void }, file: string, signal: AbortSignal): Readable {
    const out = new PassThrough({ highWaterMark: STREAM_CHUNK });
    let settled = false;
    const onAbort = () => out.destroy(new DepotError('unavailable', 'retrieve aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    // The reader stopped early: closing the connection ends the transfer.
    out.once('close', () => {
      signal.removeEventListener('abort', onAbort);
      if (!settled) {
        settled = true;
        lease.release(true);
      }
    });
    const take = (chunk: Buffer, done: (error?: Error) => void) => {
      if (out.destroyed) return done(new Error('the reader went away'));
      if (out.write(chunk)) return done();
      out.once('drain', () => done());
    };
    guardedDownload(lease.client, file, take, this.timeoutMs, this.name, 'retrieve').then(
      () => {
        if (settled) return;
        settled = true;
        lease.release();
        out.end();
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        lease.release(!(error instanceof FTPError));
        out.destroy(toDepotError(error, this.name, 'retrieve'));
      },
    );
    return out;
  }

  async stat(key: ArchiveKey): Promise<Manifest | null> {
    const target = this.locate(key);
    return this.withClient('stat', async (client) => {
      const size = await this.sizeOf(client, target.file);
      if (size === null) return null;
      const manifest = await this.readManifest(client, target.sidecar, key.text);
      if (!manifest) throw foreignObject(this.name, key.text);
      if (manifest.size !== size) throw new DepotError('integrity', `${this.name}:${key.text} has ${size} bytes, its manifest says ${manifest.size}`);
      return manifest;
    });
  }

  async delete(key: ArchiveKey): Promise<void> {
    const target = this.locate(key);
    await this.withClient('delete', async (client) => {
      if ((await this.sizeOf(client, target.file)) === null) throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
      // Archive first: a crash in between leaves an invisible manifest, not an archive without one.
      await client.remove(target.file);
      await client.remove(target.sidecar, true);
      await client.sendIgnoringError(`RMD ${target.dir}`); // only when the task's directory is now empty
    });
  }

  /** A connection is held per listing or sidecar read, never across a yield. */
  list(prefix: string, options: ListOptions = {}): AsyncIterable<Manifest> {
    return walkKeyTree(
      {
        list: async (dir) =>
          (await this.withClient('list', (client) => this.listDir(client, dir))).map((e) => ({ name: e.name, isDirectory: e.isDirectory, isFile: e.isFile })),
        readManifest: (sidecar, key) => this.withClient('list', (client) => this.readManifest(client, sidecar, key.text)),
        join: (...parts) => path.posix.join(...parts),
      },
      this.settings.root,
      prefix,
      options.after,
    );
  }

  /** MLSD of a directory; a missing directory lists as empty. */
  private async listDir(client: Client, dir: string): Promise<FileInfo[]> {
    try {
      return await client.list(dir);
    } catch (error) {
      if (isFtpReply(error, 550)) return [];
      throw error;
    }
  }

  async check(signal: AbortSignal): Promise<ProbeReport> {
    const dir = this.abs(CHECK_DIR);
    const file = path.posix.join(dir, probeName());
    await this.withClient(
      'check',
      async (client) => {
        await this.makeDirs(client, dir);
        await this.assertOwnDirectory(client, CHECK_DIR);
      },
      signal,
    );
    const timings = await runProbe({
      write: (bytes) =>
        this.withClient(
          'check: write',
          (client) => guardedUpload(client, Readable.from([bytes]), file, this.timeoutMs, this.name).then(() => undefined),
          signal,
        ),
      read: () => this.withClient('check: read', (client) => this.download(client, file, MANIFEST_LIMIT), signal),
      remove: async () => {
        await ignoreFailure(
          this.withClient('check: delete', (client) => client.remove(file, true)),
          'a probe left behind is harmless: it is outside the archive keys',
        );
      },
    });
    // A server whose refusal could not be tried is not counted on.
    const replaces = await this.renameReplaces(dir, signal).catch(() => true);
    return { ...timings, writeOnce: replaces ? 'best_effort' : 'enforced' };
  }

  /**
   * Write-once holds against concurrent writers only where the server refuses
   * a rename onto an existing name (proftpd: AllowOverwrite off). The check
   * tries it with two probes and says so in the log when the server replaces.
   */
  private async renameReplaces(dir: string, signal: AbortSignal): Promise<boolean> {
    const [first, second] = [path.posix.join(dir, probeName()), path.posix.join(dir, probeName())];
    return this.withClient(
      'check: overwrite',
      async (client) => {
        try {
          await guardedUpload(client, Readable.from([Buffer.from('1')]), first, this.timeoutMs, this.name);
          await guardedUpload(client, Readable.from([Buffer.from('2')]), second, this.timeoutMs, this.name);
          const replaced = await client.rename(second, first).then(
            () => true,
            (error: unknown) => {
              if (isFtpReply(error, 550)) return false;
              throw error;
            },
          );
          if (replaced) {
            this.logger.warn(
              `${this.name}: the server replaces existing files on rename (proftpd: AllowOverwrite on); write-once then rests on depot's own check before each rename`,
              { driver: this.name },
            );
          }
          return replaced;
        } finally {
          await client.remove(first, true);
          await client.remove(second, true);
        }
      },
      signal,
    );
  }

  /** FTP reports no free space; with `quotaBytes`, used is the size of every file under the root (cached ten minutes). */
  space(): Promise<Space> {
    return this.usage.space();
  }

  private async usedBytes(dir: string): Promise<number> {
    const entries = await this.withClient('space', (client) => this.listDir(client, dir));
    let total = 0;
    for (const entry of entries) {
      if (entry.isFile) total += entry.size;
      else if (entry.isDirectory) total += await this.usedBytes(path.posix.join(dir, entry.name));
    }
    return total;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
