/**
 * Deliberately broken drivers for the meta-test: each wraps a real
 * FilesystemDriver and breaks ONE behaviour, the way a real driver could get it
 * wrong. The meta-test proves every conformance check fails against at least one.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline, Readable, Transform } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { ArchiveKey, DepotError, Manifest, Space, toArchiveKey } from '../../src/contract';
import type { ArchiveBody, DriverCapabilities, FileBody, FileTarget, ProbeReport, PublishOutcome, StorageDriver } from '../../src/storage/driver';
import type { FilesystemDriver } from '../../src/storage/drivers/filesystem';
import { serializeManifest, sidecarName } from '../../src/storage/manifest';
import { probeName, runProbe } from '../../src/storage/probe';
import { digestOf, MiB, readAll } from '../helpers/streams';
import { STAGING_DIR } from '../helpers/filesystem-harness';

/** Delegates everything to the real driver; each broken driver overrides one behaviour. */
export class PassThroughDriver implements StorageDriver {
  constructor(
    protected readonly inner: FilesystemDriver,
    protected readonly root: string,
  ) {}

  get name(): string {
    return this.inner.name;
  }
  get type(): string {
    return this.inner.type;
  }
  get capabilities(): DriverCapabilities {
    return this.inner.capabilities;
  }
  store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    return this.inner.store(key, body, signal);
  }
  storeFile(key: ArchiveKey, body: FileBody, signal: AbortSignal): Promise<PublishOutcome | null> {
    return this.inner.storeFile(key, body, signal);
  }
  retrieveFile(key: ArchiveKey, target: FileTarget, signal: AbortSignal): Promise<{ manifest: Manifest; written: { sha256: string; size: number } } | null> {
    return this.inner.retrieveFile(key, target, signal);
  }
  retrieve(key: ArchiveKey, signal: AbortSignal): Promise<{ body: Readable; manifest: Manifest }> {
    return this.inner.retrieve(key, signal);
  }
  stat(key: ArchiveKey): Promise<Manifest | null> {
    return this.inner.stat(key);
  }
  delete(key: ArchiveKey): Promise<void> {
    return this.inner.delete(key);
  }
  list(prefix: string): AsyncIterable<Manifest> {
    return this.inner.list(prefix);
  }
  check(signal: AbortSignal): Promise<ProbeReport> {
    return this.inner.check(signal);
  }
  space(): Promise<Space> {
    return this.inner.space();
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  /** Where the real driver keeps an archive. */
  protected fileOf(key: ArchiveKey): string {
    return path.join(this.root, ...key.text.split('/'));
  }
}

/**
 * Not broken: a legitimate variation the suite must accept. It looks for the key
 * before uploading and answers 'exists' without reading the body (as an FTP
 * driver checking SIZE first would).
 */
export class ChecksKeyBeforeUpload extends PassThroughDriver {
  override async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const existing = await this.inner.stat(key);
    if (existing) return { status: 'exists', existing };
    return this.inner.store(key, body, signal);
  }
}

// ---- helpers -------------------------------------------------------------

function streamOf(bytes: Buffer): Readable {
  return Readable.from(bytes.length > 0 ? [bytes] : [], { objectMode: false });
}

function bufferedBody(bytes: Buffer, manifest: () => Manifest): ArchiveBody {
  return { stream: streamOf(bytes), manifest, declared: {} };
}

/** Reads until the end or the first error, keeping what arrived (the error is swallowed). */
async function readUntilError(stream: Readable): Promise<{ bytes: Buffer; error?: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return { bytes: Buffer.concat(chunks) };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error };
  }
}

/** A manifest for whatever bytes a careless driver decided to keep. */
function manifestFor(key: ArchiveKey, bytes: Buffer, body?: ArchiveBody): Manifest {
  let base: Partial<Manifest> = {};
  try {
    base = body?.manifest() ?? {};
  } catch {
    // The body failed before its end: no manifest from the shared layer.
  }
  return { name: key.name, taskId: key.taskId, metadata: {}, storedAt: new Date().toISOString(), ...base, key: key.text, ...digestOf(bytes) };
}

function isNotFound(error: unknown): boolean {
  return error instanceof DepotError && error.code === 'not_found';
}

// ---- store ---------------------------------------------------------------

/** Skips the upload of empty bodies ("nothing to send") but reports them stored. */
class DropsEmptyArchives extends PassThroughDriver {
  override async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const bytes = await readAll(body.stream);
    if (bytes.length === 0) return { status: 'created', manifest: body.manifest() };
    return this.inner.store(key, bufferedBody(bytes, body.manifest), signal);
  }
}

/** A single-request upload limit that silently cuts large archives at 64 MiB. */
class TruncatesLargeArchives extends PassThroughDriver {
  override store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const limit = 64 * MiB;
    let seen = 0;
    const cut = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        const room = Math.max(0, limit - seen);
        seen += chunk.length;
        callback(null, chunk.subarray(0, room));
      },
    });
    return this.inner.store(key, { stream: pipeline(body.stream, cut, () => undefined), manifest: body.manifest, declared: body.declared }, signal);
  }
}

/** Writes straight to the final name while the bytes arrive, before knowing they are right. */
class WritesFinalInPlace extends PassThroughDriver {
  override async store(key: ArchiveKey, body: ArchiveBody): Promise<PublishOutcome> {
    const file = this.fileOf(key);
    await mkdir(path.dirname(file), { recursive: true });
    await pipelineAsync(body.stream, createWriteStream(file, { flags: 'wx', mode: 0o444 }));
    const manifest = body.manifest();
    await writeFile(path.join(path.dirname(file), sidecarName(key.name)), serializeManifest(manifest), { flag: 'wx', mode: 0o444 });
    return { status: 'created', manifest };
  }
}

/** Treats a failing stream as its end and publishes what arrived. */
class IgnoresStreamErrors extends PassThroughDriver {
  override async store(key: ArchiveKey, body: ArchiveBody): Promise<PublishOutcome> {
    const { bytes } = await readUntilError(body.stream);
    return this.inner.store(
      key,
      bufferedBody(bytes, () => manifestFor(key, bytes, body)),
      new AbortController().signal,
    );
  }
}

/** Ignores an abort: keeps what it had and publishes it anyway. */
class IgnoresAbort extends PassThroughDriver {
  override async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const { bytes, error } = await readUntilError(body.stream);
    if (error !== undefined && !signal.aborted) throw error instanceof Error ? error : new Error(JSON.stringify(error));
    return this.inner.store(
      key,
      bufferedBody(bytes, () => manifestFor(key, bytes, body)),
      new AbortController().signal,
    );
  }
}

/** Stages in its own temp file and forgets to remove it when the store fails. */
class LeaksStaging extends PassThroughDriver {
  override async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const file = path.join(this.root, STAGING_DIR, `leaky-${randomBytes(6).toString('hex')}.part`);
    await mkdir(path.dirname(file), { recursive: true });
    await pipelineAsync(body.stream, createWriteStream(file, { flags: 'wx' }));
    const outcome = await this.inner.store(key, { stream: createReadStream(file), manifest: body.manifest, declared: body.declared }, signal);
    await unlink(file);
    return outcome;
  }
}

/** One staging file name for every store: concurrent stores write over each other. */
class SharedStaging extends PassThroughDriver {
  override async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const file = path.join(this.root, STAGING_DIR, 'upload.part');
    await mkdir(path.dirname(file), { recursive: true });
    await pipelineAsync(body.stream, createWriteStream(file));
    return this.inner.store(key, { stream: createReadStream(file), manifest: body.manifest, declared: body.declared }, signal);
  }
}

/** A plain PUT: whatever is under the key is replaced. */
class OverwritesExisting extends PassThroughDriver {
  override async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const bytes = await readAll(body.stream);
    for (let attempt = 1; ; attempt++) {
      if (await this.inner.stat(key)) await this.inner.delete(key);
      const outcome = await this.inner.store(key, bufferedBody(bytes, body.manifest), signal);
      if (outcome.status === 'created' || attempt >= 3) return outcome;
    }
  }
}

/** Takes an object without a manifest for a leftover of its own and writes over it. */
class ReplacesForeignObjects extends PassThroughDriver {
  override async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const foreign = await this.inner.stat(key).then(
      () => false,
      (error: unknown) => error instanceof DepotError && error.code === 'conflict',
    );
    if (foreign) await unlink(this.fileOf(key));
    return this.inner.store(key, body, signal);
  }
  override async stat(key: ArchiveKey): Promise<Manifest | null> {
    // A key with an object but no manifest reads as free.
    return this.inner.stat(key).catch((error: unknown) => {
      if (error instanceof DepotError && error.code === 'conflict') return null;
      throw error;
    });
  }
}

/** Forgets retainUntil when it writes the manifest. */
class DropsRetention extends PassThroughDriver {
  override store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const manifest = () => {
      const m = { ...body.manifest() };
      delete m.retainUntil;
      return m;
    };
    return this.inner.store(key, { stream: body.stream, manifest, declared: body.declared }, signal);
  }
}

/** Forgets the metadata when it writes the manifest. */
class LosesMetadata extends PassThroughDriver {
  override store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    return this.inner.store(key, { stream: body.stream, manifest: () => ({ ...body.manifest(), metadata: {} }), declared: body.declared }, signal);
  }
}

/** The key as a backend that NFC-normalizes names sees it. */
function nfc(key: ArchiveKey): ArchiveKey {
  return toArchiveKey(key.text.normalize('NFC'));
}

/** A backend that NFC-normalizes names (as HFS+ and some FTP servers do). */
class NormalizesNames extends PassThroughDriver {
  override store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const manifest = () => {
      const m = body.manifest();
      return { ...m, key: m.key.normalize('NFC'), name: m.name.normalize('NFC') };
    };
    return this.inner.store(nfc(key), { stream: body.stream, manifest, declared: body.declared }, signal);
  }
  override retrieve(key: ArchiveKey, signal: AbortSignal) {
    return this.inner.retrieve(nfc(key), signal);
  }
  override stat(key: ArchiveKey) {
    return this.inner.stat(nfc(key));
  }
  override delete(key: ArchiveKey) {
    return this.inner.delete(nfc(key));
  }
}

// ---- storeFile ---------------------------------------------------------------

/** Copies a source file but publishes what it wrote whatever the task declared (its own manifest, unchecked). */
class FileCopyIgnoresExpectations extends PassThroughDriver {
  override storeFile(key: ArchiveKey, body: FileBody, signal: AbortSignal): Promise<PublishOutcome | null> {
    const manifest = (written: { sha256: string; size: number }): Manifest => {
      try {
        return body.manifest(written);
      } catch {
        return { name: key.name, taskId: key.taskId, metadata: {}, storedAt: new Date().toISOString(), key: key.text, ...written };
      }
    };
    return this.inner.storeFile(key, { ...body, manifest }, signal);
  }
}

/** Copies only the first half of a source file (a copy that stops early) and describes what it copied. */
class FileCopyTruncates extends PassThroughDriver {
  override async storeFile(key: ArchiveKey, body: FileBody, signal: AbortSignal): Promise<PublishOutcome | null> {
    const dir = path.join(this.root, '..', `half-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    try {
      const half = path.join(dir, 'half.bin');
      await copyFile(body.file.path, half);
      await truncate(half, Math.floor(body.file.size / 2));
      return await this.inner.storeFile(key, { ...body, file: { ...body.file, path: half, dev: (await stat(half)).dev } }, signal);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** Copies an archive into a retrieve's file but reports the manifest's digest instead of hashing what it wrote. */
class FileRetrieveTrustsManifest extends PassThroughDriver {
  override async retrieveFile(key: ArchiveKey, target: FileTarget, signal: AbortSignal) {
    const copied = await this.inner.retrieveFile(key, target, signal);
    return copied && { manifest: copied.manifest, written: { sha256: copied.manifest.sha256, size: copied.manifest.size } };
  }
}

/** Copies an archive into a retrieve's file, then loses its second half (a copy that stops early), reporting the whole. */
class FileRetrieveTruncates extends PassThroughDriver {
  override async retrieveFile(key: ArchiveKey, target: FileTarget, signal: AbortSignal) {
    const copied = await this.inner.retrieveFile(key, target, signal);
    if (copied) await truncate(target.path, Math.floor(copied.written.size / 2));
    return copied;
  }
}

// ---- retrieve and stat ------------------------------------------------------

/** Loses the last byte on the way out (an off-by-one in a ranged read). */
class TruncatesOnRetrieve extends PassThroughDriver {
  override async retrieve(key: ArchiveKey, signal: AbortSignal) {
    const { body, manifest } = await this.inner.retrieve(key, signal);
    let held = Buffer.alloc(0);
    const dropLast = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        const all = Buffer.concat([held, chunk]);
        held = all.subarray(all.length - 1);
        callback(null, all.subarray(0, all.length - 1));
      },
    });
    return { body: pipeline(body, dropLast, () => undefined), manifest };
  }
}

/** Serves retrieves from a cache keyed by the archive's name, not its key. */
class RetrieveLatestByName extends PassThroughDriver {
  private readonly latest = new Map<string, ArchiveKey>();
  override async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const outcome = await this.inner.store(key, body, signal);
    this.latest.set(key.name, key);
    return outcome;
  }
  override retrieve(key: ArchiveKey, signal: AbortSignal) {
    return this.inner.retrieve(this.latest.get(key.name) ?? key, signal);
  }
}

/** Takes the checksum from the bytes there now (like an ETag) instead of the stored manifest. */
class TrustsCurrentBytes extends PassThroughDriver {
  override async retrieve(key: ArchiveKey, signal: AbortSignal) {
    const { body, manifest } = await this.inner.retrieve(key, signal);
    const bytes = await readAll(body);
    return { body: streamOf(bytes), manifest: { ...manifest, ...digestOf(bytes) } };
  }
}

/** Serves retrieves from a cache of what it stored, not from the backend (whatever is there now). */
class RetrievesFromCache extends PassThroughDriver {
  private readonly cache = new Map<string, { bytes: Buffer; manifest: Manifest }>();
  override async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const outcome = await this.inner.store(key, body, signal);
    if (outcome.status === 'created') this.cache.set(key.text, { bytes: await readFile(this.fileOf(key)), manifest: outcome.manifest });
    return outcome;
  }
  override async retrieve(key: ArchiveKey, signal: AbortSignal) {
    const cached = this.cache.get(key.text);
    return cached ? { body: streamOf(cached.bytes), manifest: cached.manifest } : this.inner.retrieve(key, signal);
  }
}

/** Answers a missing key with an empty archive instead of not_found. */
class MissingAsEmpty extends PassThroughDriver {
  override async stat(key: ArchiveKey) {
    return (await this.inner.stat(key)) ?? manifestFor(key, Buffer.alloc(0));
  }
  override async retrieve(key: ArchiveKey, signal: AbortSignal) {
    try {
      return await this.inner.retrieve(key, signal);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      return { body: streamOf(Buffer.alloc(0)), manifest: manifestFor(key, Buffer.alloc(0)) };
    }
  }
}

/** Reports a missing key as an outage (so it would be retried forever). */
class MissingAsOutage extends PassThroughDriver {
  override async retrieve(key: ArchiveKey, signal: AbortSignal) {
    try {
      return await this.inner.retrieve(key, signal);
    } catch (error) {
      if (isNotFound(error)) throw new DepotError('unavailable', `the backend answered 404 for ${key.text}`);
      throw error;
    }
  }
}

// ---- delete ----------------------------------------------------------------

class DeleteIsNoop extends PassThroughDriver {
  override async delete(): Promise<void> {
    // Pretends to have deleted.
  }
}

/** Removes the archive but leaves its manifest behind. */
class DeleteLeavesManifest extends PassThroughDriver {
  override async delete(key: ArchiveKey): Promise<void> {
    await unlink(this.fileOf(key));
  }
}

// ---- list ------------------------------------------------------------------

class ListsNothing extends PassThroughDriver {
  override async *list(): AsyncIterable<Manifest> {
    yield* [];
  }
}

class ListsDuplicates extends PassThroughDriver {
  override async *list(prefix: string): AsyncIterable<Manifest> {
    for await (const manifest of this.inner.list(prefix)) {
      yield manifest;
      yield manifest;
    }
  }
}

/** Hides entries whose name starts with a dot (an FTP LIST without -a). */
class ListHidesDotEntries extends PassThroughDriver {
  override async *list(prefix: string): AsyncIterable<Manifest> {
    for await (const manifest of this.inner.list(prefix)) {
      if (!manifest.key.split('/').some((segment) => segment.startsWith('.'))) yield manifest;
    }
  }
}

class ListIgnoresPrefix extends PassThroughDriver {
  override list(): AsyncIterable<Manifest> {
    return this.inner.list('');
  }
}

// ---- check and space -------------------------------------------------------

/** Its probe's delete step does nothing. */
class CheckLeavesProbe extends PassThroughDriver {
  override async check(): Promise<ProbeReport> {
    const file = path.join(this.root, '.depot-check', probeName());
    await mkdir(path.dirname(file), { recursive: true });
    return {
      ...(await runProbe({ write: (bytes) => writeFile(file, bytes), read: () => readFile(file), remove: async () => undefined })),
      writeOnce: 'enforced',
    };
  }
}

/** Reports timings without touching the backend. */
class CheckWithoutBackend extends PassThroughDriver {
  override async check(): Promise<ProbeReport> {
    return { writeMs: 1.5, readMs: 0.75, deleteMs: 0.25, writeOnce: 'enforced' };
  }
}

/** Measures with a clock that can go backwards. */
class CheckNegativeTimings extends PassThroughDriver {
  override async check(signal: AbortSignal): Promise<ProbeReport> {
    const timings = await this.inner.check(signal);
    return { ...timings, readMs: -1 - timings.readMs };
  }
}

class SpaceNegative extends PassThroughDriver {
  override async space(): Promise<Space> {
    return { ...(await this.inner.space()), freeBytes: -1 };
  }
}

class SpaceFreeBeyondTotal extends PassThroughDriver {
  override async space(): Promise<Space> {
    const space = await this.inner.space();
    return { ...space, freeBytes: (space.totalBytes ?? 0) + 4096 };
  }
}

/** Claims the space capability but reports nothing. */
class SpaceMissing extends PassThroughDriver {
  override async space(): Promise<Space> {
    return {};
  }
}

// ---- the catalogue -----------------------------------------------------------

export interface BrokenDriver {
  name: string;
  breaks: string;
  wrap(inner: FilesystemDriver, root: string): StorageDriver;
}

type Wrapper = new (inner: FilesystemDriver, root: string) => StorageDriver;

const broken = (name: string, breaks: string, Driver: Wrapper): BrokenDriver => ({
  name,
  breaks,
  wrap: (inner, root) => new Driver(inner, root),
});

export const brokenDrivers: BrokenDriver[] = [
  broken('drops-empty-archives', 'reports empty archives stored without storing them', DropsEmptyArchives),
  broken('truncates-large-archives', 'silently cuts archives at 64 MiB', TruncatesLargeArchives),
  broken('writes-final-in-place', 'publishes while streaming, before the bytes are verified', WritesFinalInPlace),
  broken('ignores-stream-errors', 'publishes what arrived when the stream fails', IgnoresStreamErrors),
  broken('ignores-abort', 'publishes anyway when the store is aborted', IgnoresAbort),
  broken('leaks-staging', 'leaves its staging file behind when a store fails', LeaksStaging),
  broken('shared-staging', 'stages every store in one file', SharedStaging),
  broken('overwrites-existing', 'replaces an existing key', OverwritesExisting),
  broken(
    'file-copy-ignores-expectations',
    "publishes a copied source file without checking it against the task's sha256 and size",
    FileCopyIgnoresExpectations,
  ),
  broken('file-copy-truncates', 'copies only the first half of a source file', FileCopyTruncates),
  broken('file-retrieve-trusts-manifest', "reports the manifest's digest for the file it filled", FileRetrieveTrustsManifest),
  broken('file-retrieve-truncates', 'fills a retrieve’s file with only the first half of the archive', FileRetrieveTruncates),
  broken('replaces-foreign-objects', 'writes over an object at its key that has no manifest', ReplacesForeignObjects),
  broken('drops-retention', 'does not keep retainUntil', DropsRetention),
  broken('loses-metadata', 'does not keep the metadata', LosesMetadata),
  broken('normalizes-names', 'NFC-normalizes names', NormalizesNames),
  broken('truncates-on-retrieve', 'drops the last byte when reading', TruncatesOnRetrieve),
  broken('retrieve-latest-by-name', "returns another archive's bytes of the same name", RetrieveLatestByName),
  broken('trusts-current-bytes', 'verifies reads against the bytes there now', TrustsCurrentBytes),
  broken('retrieves-from-cache', 'serves reads from what it stored, not from the backend', RetrievesFromCache),
  broken('missing-as-empty', 'answers missing keys with an empty archive', MissingAsEmpty),
  broken('missing-as-outage', "answers missing keys with 'unavailable'", MissingAsOutage),
  broken('delete-noop', 'does not delete', DeleteIsNoop),
  broken('delete-leaves-manifest', 'deletes the archive but not its manifest', DeleteLeavesManifest),
  broken('lists-nothing', 'lists nothing', ListsNothing),
  broken('lists-duplicates', 'lists every archive twice', ListsDuplicates),
  broken('list-ignores-prefix', 'lists everything whatever the prefix', ListIgnoresPrefix),
  broken('list-hides-dot-entries', 'does not list taskIds or names starting with a dot', ListHidesDotEntries),
  broken('check-leaves-probe', 'leaves its probe behind', CheckLeavesProbe),
  broken('check-without-backend', 'reports timings without writing anything', CheckWithoutBackend),
  broken('check-negative-timings', 'reports a negative timing', CheckNegativeTimings),
  broken('space-negative', 'reports negative free space', SpaceNegative),
  broken('space-free-beyond-total', 'reports more free space than there is in total', SpaceFreeBeyondTotal),
  broken('space-missing', 'claims the space capability but reports nothing', SpaceMissing),
];
