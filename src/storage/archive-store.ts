import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable, pipeline } from 'node:stream';
import { finished, pipeline as pipelineAsync } from 'node:stream/promises';
import { ArchiveKey, CheckResult, DepotError, Manifest, Metadata, Space, toArchiveKey } from '../contract';
import { errorBody, handleError } from '../support/error-handler';
import { audit, Logger } from '../support/logging';
import type { ListOptions, LocalFile, PublishOutcome, StorageDriver } from './driver';
import type { ByteRate } from './byte-rate';
import { HashingStream, mismatch, pipeInto } from './hashing-stream';
import { manifestDifference } from './manifest';

export interface StoreInput {
  key: string;
  taskId: string;
  name: string;
  body: Readable;
  /** Expected checksum and size from the task; a mismatch is `integrity` and nothing is published. */
  sha256?: string;
  size?: number;
  /**
   * The source's own length when known before reading (a file's, a spool file's,
   * inline bytes'): drivers size uploads by it (Moodle's Content-Length, S3's
   * part size) when the task declares none. Not checked: only `size` is a promise.
   */
  sourceSize?: number;
  metadata?: Metadata;
  retainUntil?: string;
  deleteAfter?: string;
  signal?: AbortSignal;
  onBytes?: (bytes: number) => void;
  /** The source as a file on this host (path and spool sources): a driver may copy it instead of reading `body` (storeFile). */
  file?: LocalFile;
}

/** What a fixity check found: the bytes as stored (`ok`), changed (`corrupt`), or gone (`missing`). */
export interface Verification {
  status: 'ok' | 'corrupt' | 'missing';
  /** sha256 and size of the bytes read; null when none could be (missing, or a manifest that cannot be read). */
  foundSha256: string | null;
  foundSize: number | null;
  /** What differs, for the log. */
  problem?: string;
}

export interface StoredArchive {
  manifest: Manifest;
  /** false when the key already held the same bytes (an idempotent re-store). */
  created: boolean;
}

/**
 * What every driver gets once, instead of each doing it again: key checks,
 * sha256 and size computed in the same pass as the transfer, idempotent
 * re-stores, retention on delete, verification on read, and the audit trail.
 */
export class ArchiveStore {
  constructor(
    readonly driver: StorageDriver,
    private readonly logger: Logger,
  ) {}

  get name(): string {
    return this.driver.name;
  }

  async store(input: StoreInput): Promise<StoredArchive> {
    const key = toArchiveKey(input.key);
    const signal = input.signal ?? new AbortController().signal;
    const expected = { sha256: input.sha256, size: input.size };
    let existing: Manifest | null;
    try {
      existing = await this.driver.stat(key);
    } catch (error) {
      input.body.destroy(); // the source is open (a file descriptor, a download): it is never read now
      throw handleError(error);
    }
    if (existing) return this.settleExisting(key, input, existing, await this.sourceDigest(input, existing, expected), signal);
    if (input.file && this.driver.storeFile) {
      const copied = await this.storeFile(key, input, input.file, signal);
      if (copied) return copied;
    }

    const hasher = new HashingStream(expected, input.onBytes);
    // A source failure is carried into the hasher, so the driver sees it and publishes nothing.
    const stream = pipeInto(input.body, hasher);
    const onAbort = () => input.body.destroy(new DepotError('unavailable', 'store aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    let outcome;
    try {
      outcome = await this.driver.store(
        key,
        {
          stream,
          declared: { size: input.size ?? input.sourceSize, retainUntil: input.retainUntil },
          manifest: () => manifestFor(input, hasher.result(), new Date().toISOString()),
        },
        signal,
      );
    } catch (error) {
      input.body.destroy();
      throw handleError(hasher.destroyed && hasher.errored ? hasher.errored : error);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (outcome.status === 'exists') {
      // Another attempt published first (a race or a crash after publish): same archive or a conflict.
      // A driver may find the key taken before reading the whole body: hash the rest here to tell which.
      hasher.resume();
      await finished(hasher).catch((error: unknown) => {
        throw handleError(error);
      });
      return this.settleExisting(key, input, outcome.existing, hasher.result(), signal);
    }
    this.auditStore(outcome.manifest, 'created');
    return { manifest: outcome.manifest, created: true };
  }

  /**
   * A local source file handed to the driver's storeFile; null when the driver
   * cannot take this file (the source is then streamed, unread so far). The
   * driver hashes what it wrote; the task's expectations are checked here,
   * before it publishes.
   */
  private async storeFile(key: ArchiveKey, input: StoreInput, file: LocalFile, signal: AbortSignal): Promise<StoredArchive | null> {
    const expected = { sha256: input.sha256, size: input.size };
    let written: { sha256: string; size: number } | undefined;
    let outcome: PublishOutcome | null;
    try {
      outcome =
        (await this.driver.storeFile?.(
          key,
          {
            file,
            declared: { size: input.size ?? input.sourceSize, retainUntil: input.retainUntil },
            onBytes: input.onBytes,
            manifest: (digest) => {
              const failure = mismatch(expected, digest);
              if (failure) throw failure;
              written = digest;
              return manifestFor(input, digest, new Date().toISOString());
            },
          },
          signal,
        )) ?? null;
    } catch (error) {
      input.body.destroy();
      throw handleError(error);
    }
    if (!outcome) return null;
    input.body.destroy(); // never read: this closes the source file
    if (outcome.status === 'exists') {
      if (!written) throw new DepotError('internal', `${this.name}: storeFile found the key taken without hashing the source`);
      return this.settleExisting(key, input, outcome.existing, written, signal);
    }
    this.auditStore(outcome.manifest, 'created');
    return { manifest: outcome.manifest, created: true };
  }

  /**
   * sha256 and size of the task's bytes when its key is already taken. A task
   * that declared the checksum the key's manifest holds need not be read; any
   * other is hashed to the end.
   */
  private async sourceDigest(input: StoreInput, existing: Manifest, expected: { sha256?: string; size?: number }): Promise<{ sha256: string; size: number }> {
    if (expected.sha256 === existing.sha256 && (expected.size === undefined || expected.size === existing.size)) {
      input.body.destroy();
      return { sha256: existing.sha256, size: existing.size };
    }
    const hasher = new HashingStream(expected, input.onBytes);
    await new Promise<void>((resolve, reject) => {
      pipeline(input.body, hasher, (error) => (error ? reject(handleError(error)) : resolve()));
      hasher.resume();
    });
    return hasher.result();
  }

  /**
   * The key is taken. It is this task's archive only when the manifest found
   * there is the one this task would have written (every field; storedAt
   * aside) and the bytes stored there are this task's bytes. The manifest alone
   * does not decide: on a store that ignores conditional writes it may be this
   * task's own, placed a moment ago beside another writer's bytes. So the
   * stored archive is read back and hashed; that costs a read, but only on a
   * retry that finds its key taken.
   */
  private async settleExisting(
    key: ArchiveKey,
    input: StoreInput,
    existing: Manifest,
    ours: { sha256: string; size: number },
    signal: AbortSignal,
  ): Promise<StoredArchive> {
    if (existing.sha256 !== ours.sha256 || existing.size !== ours.size) {
      throw new DepotError('conflict', `${this.name}:${key.text} already holds other content (sha256 ${existing.sha256})`);
    }
    const differs = manifestDifference(existing, manifestFor(input, ours, existing.storedAt));
    if (differs) throw new DepotError('conflict', `${this.name}:${key.text} already holds an archive whose ${differs} differs from this task's`);
    await this.assertStoredBytes(key, existing, signal);
    // A store interrupted after publishing may not have finished on the backend (S3: Object Lock retention).
    if (this.driver.capabilities.retention) await this.driver.ensureRetention?.(key, existing, signal);
    this.auditStore(existing, 'exists');
    return { manifest: existing, created: false };
  }

  /** The bytes under `key` must be the ones its manifest describes; else another writer's bytes sit there: `conflict`. */
  private async assertStoredBytes(key: ArchiveKey, manifest: Manifest, signal: AbortSignal): Promise<void> {
    const { body } = await this.driver.retrieve(key, signal);
    const verifier = new HashingStream({ sha256: manifest.sha256, size: manifest.size });
    try {
      await new Promise<void>((resolve, reject) => {
        pipeline(body, verifier, (error) => (error ? reject(error) : resolve()));
        verifier.resume();
      });
    } catch (error) {
      const failure = handleError(error);
      if (failure.code !== 'integrity') throw failure;
      throw new DepotError(
        'conflict',
        `${this.name}:${key.text} holds bytes other than its manifest describes (another writer's, or damaged): ${failure.message}`,
      );
    }
  }

  private auditStore(manifest: Manifest, outcome: string): void {
    audit(this.logger, {
      action: 'store',
      driver: this.name,
      key: manifest.key,
      taskId: manifest.taskId,
      size: manifest.size,
      sha256: manifest.sha256,
      outcome,
    });
  }

  /**
   * The archive as a stream that is re-verified against its manifest while it is
   * read: it errors with `integrity` at the end if the stored bytes were changed.
   */
  async retrieve(
    key: string,
    options: { signal?: AbortSignal; taskId?: string; onBytes?: (bytes: number) => void } = {},
  ): Promise<{ manifest: Manifest; stream: Readable }> {
    const signal = options.signal ?? new AbortController().signal;
    const { body, manifest } = await this.driver.retrieve(toArchiveKey(key), signal);
    const verifier = new HashingStream({ sha256: manifest.sha256, size: manifest.size }, options.onBytes);
    const stream = pipeInto(body, verifier);
    finished(stream).then(
      () => this.auditRead(key, options.taskId, manifest),
      () => undefined,
    );
    return { manifest, stream };
  }

  /**
   * The archive written into `file` (empty, open for reading and writing):
   * by the driver's retrieveFile where it has one and can (the filesystem
   * driver copies inside the kernel, and the bytes written are hashed back
   * from `file`), else through retrieve()'s verified stream. Either way the
   * bytes in `file` are the manifest's, or this fails `integrity`.
   */
  async retrieveInto(
    key: string,
    file: { handle: FileHandle; dev: number; link?: string },
    options: { signal?: AbortSignal; taskId?: string; onBytes?: (bytes: number, totalBytes: number) => void } = {},
  ): Promise<Manifest> {
    const signal = options.signal ?? new AbortController().signal;
    if (this.driver.retrieveFile && file.link !== undefined) {
      const target = { path: file.link, fd: file.handle.fd, dev: file.dev, onBytes: options.onBytes };
      const copied = await this.driver.retrieveFile(toArchiveKey(key), target, signal);
      if (copied) {
        const problem = mismatch(copied.manifest, copied.written);
        if (problem) throw problem;
        this.auditRead(key, options.taskId, copied.manifest);
        return copied.manifest;
      }
    }
    let total = 0;
    const { manifest, stream } = await this.retrieve(key, { signal, taskId: options.taskId, onBytes: (bytes) => options.onBytes?.(bytes, total) });
    total = manifest.size;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let offset = 0;
      while (offset < chunk.length) offset += (await file.handle.write(chunk, offset)).bytesWritten;
    }
    return manifest;
  }

  private auditRead(key: string, taskId: string | undefined, manifest: Manifest): void {
    audit(this.logger, { action: 'retrieve', driver: this.name, key, taskId, size: manifest.size, sha256: manifest.sha256, outcome: 'read' });
  }

  /**
   * A fixity check (CONTRACT §8): the stored bytes read again (paced by
   * `rate` when given), their sha256 and size compared with the manifest's.
   * `missing` when the backend has no archive under the key, `corrupt` when
   * the bytes or the manifest are not what was stored (`expected`: the
   * catalog's record of it, compared too, so that bytes and manifest changed
   * together are caught). A backend that does not answer throws: that is no
   * verdict on the archive.
   */
  async verify(key: string, expected: { sha256: string; size: number }, options: { rate?: ByteRate; signal?: AbortSignal } = {}): Promise<Verification> {
    const signal = options.signal ?? new AbortController().signal;
    let found: { body: Readable; manifest: Manifest };
    try {
      found = await this.driver.retrieve(toArchiveKey(key), signal);
    } catch (error) {
      const failure = handleError(error);
      if (failure.code === 'not_found') return { status: 'missing', foundSha256: null, foundSize: null };
      if (failure.code === 'integrity') return { status: 'corrupt', foundSha256: null, foundSize: null, problem: failure.message };
      throw failure;
    }
    const hash = createHash('sha256');
    let size = 0;
    const digest = async (chunks: AsyncIterable<Buffer>) => {
      for await (const chunk of chunks) {
        hash.update(chunk);
        size += chunk.length;
      }
    };
    try {
      if (options.rate) await pipelineAsync(found.body, options.rate.pace(signal), digest, { signal });
      else await pipelineAsync(found.body, digest, { signal });
    } catch (error) {
      throw handleError(error);
    }
    const foundSha256 = hash.digest('hex');
    const { manifest } = found;
    const problem =
      manifest.sha256 !== expected.sha256 || manifest.size !== expected.size
        ? `its manifest says sha256 ${manifest.sha256}, ${manifest.size} bytes; it was stored as sha256 ${expected.sha256}, ${expected.size} bytes`
        : foundSha256 !== expected.sha256 || size !== expected.size
          ? `read ${size} bytes with sha256 ${foundSha256}; stored were ${expected.size} bytes with sha256 ${expected.sha256}`
          : undefined;
    return problem ? { status: 'corrupt', foundSha256, foundSize: size, problem } : { status: 'ok', foundSha256, foundSize: size };
  }

  async stat(key: string): Promise<Manifest | null> {
    return this.driver.stat(toArchiveKey(key));
  }

  /** Deletes an archive unless it is under retention; `not_found` when there is none. */
  async delete(key: string, options: { taskId?: string; now?: Date } = {}): Promise<void> {
    const parsed = toArchiveKey(key);
    const manifest = await this.driver.stat(parsed);
    if (!manifest) throw new DepotError('not_found', `no archive ${this.name}:${key}`);
    const now = options.now ?? new Date();
    if (manifest.retainUntil && Date.parse(manifest.retainUntil) > now.getTime()) {
      throw new DepotError('retention', `${this.name}:${key} is retained until ${manifest.retainUntil}`);
    }
    await this.driver.delete(parsed);
    audit(this.logger, {
      action: 'delete',
      driver: this.name,
      key,
      taskId: options.taskId ?? manifest.taskId,
      size: manifest.size,
      sha256: manifest.sha256,
      outcome: 'deleted',
    });
  }

  list(prefix = '', options: ListOptions = {}): AsyncIterable<Manifest> {
    return this.driver.list(prefix, options);
  }

  /** Only what the backend reports: a driver that reports no figures of its own (capabilities.space) is not asked. */
  async space(): Promise<Space> {
    if (!this.driver.capabilities.space) return {};
    return this.driver.space();
  }

  /** Connection check plus space; never throws, the result says what failed. */
  async check(options: { signal?: AbortSignal } = {}): Promise<CheckResult> {
    try {
      const timings = await this.driver.check(options.signal ?? new AbortController().signal);
      const result: CheckResult = { driver: this.name, ok: true, ...timings };
      try {
        result.space = await this.space();
      } catch (error) {
        this.logger.warn(`space of ${this.name} not available`, { driver: this.name, error: errorBody(error) });
      }
      return result;
    } catch (error) {
      return { driver: this.name, ok: false, error: errorBody(error) };
    }
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}

/** The manifest a store writes for its task's bytes. */
function manifestFor(input: StoreInput, digest: { sha256: string; size: number }, storedAt: string): Manifest {
  return {
    ...digest,
    name: input.name,
    key: input.key,
    storedAt,
    taskId: input.taskId,
    metadata: input.metadata ?? {},
    ...(input.retainUntil ? { retainUntil: input.retainUntil } : {}),
    ...(input.deleteAfter ? { deleteAfter: input.deleteAfter } : {}),
  };
}
