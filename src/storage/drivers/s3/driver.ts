import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  HeadObjectCommandOutput,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  StorageClass,
} from '@aws-sdk/client-s3';
import { ArchiveKey, DepotError, Manifest, parseArchiveKey, Space } from '../../../contract';
import type { Logger } from '../../../support/logging';
import type { ArchiveBody, DriverCapabilities, FileBody, ListOptions, ProbeReport, PublishOutcome, StorageDriver } from '../../driver';
import { foreignObject, parseManifest, serializeManifest } from '../../manifest';
import { probeName, runProbe } from '../../probe';
import { QuotaUsage } from '../../quota-usage';
import { CHECK_DIR } from '../../staging';
import { addBodyChecksums, BodyChecksum, bodyChecksumFor, withSha256 } from './body-checksums';
import { makeS3Client } from './client';
import { probeConditionalWrites } from './conditional-write-probe';
import { isAccessDenied, isNotFound, isPreconditionFailed, toDepotError } from './errors';
import { sameBytes, versionsBeside, Written } from './key-versions';
import { metadataContradicts, objectMetadata, readObjectMetadata, sidecarKey } from './manifest-metadata';
import { FileChunks } from '../../file-chunks';
import { abortStaleUploads } from './multipart-sweep';
import { uploadParts } from './multipart-upload';
import { mapInOrder } from './parallel';
import { PartBuffers } from './part-buffers';
import { partSizeFor } from './part-size';
import { isLocked, laterLock, LockParams, lockFor, lockVersion } from './retention';
import { StagedBody } from './staged-body';
import type { S3Settings } from './types';

const ARCHIVE_TYPE = 'application/octet-stream';
const MANIFEST_TYPE = 'application/json';
/** Sidecars read in parallel while listing. */
const LIST_PARALLEL = 8;
/** How long a computed usedBytes is reused by space(): a full listing per call would be costly. */
const USAGE_TTL_MS = 60_000;

/**
 * The manifest step of a publish: ours is in place — `placed` by this attempt
 * (with the version it made, so it can be withdrawn), or found from an earlier
 * attempt that wrote the same archive — or the key is taken by another manifest.
 */
type ManifestStep = { status: 'placed'; manifest: Manifest; placed: boolean; versionId?: string } | { status: 'taken'; existing: Manifest };

/** What a multipart store reads: the archive's chunks, whether they ended cleanly, its manifest then, and how to stop it at once. */
interface MultipartSource {
  chunks: AsyncIterable<Buffer>;
  ended(): boolean;
  manifest(): Manifest;
  stop(error: unknown): void;
}

/**
 * Write-once archives in an S3 bucket: `<prefix>YYYY/MM/DD/<taskId>/<name>` with
 * the manifest in a sidecar object `<key>.depot.json`.
 *
 * Nothing is visible under a key until its bytes are complete and verified:
 * a small archive (up to one part) is read to its clean end and then sent in one
 * PutObject; a large one goes up as a multipart upload, whose parts stay
 * invisible until CompleteMultipartUpload — which is sent only once the body
 * ended cleanly and the manifest is published. A failed or aborted store
 * aborts its upload.
 *
 * Write-once, in this order: the manifest goes first (so no state shows an
 * archive without its manifest), unlocked; the archive key is looked at right
 * before writing; both writes carry `If-None-Match: *`; after writing, the
 * key's versions must show depot's write alone (stores that ignore the
 * condition let a second writer in); only then are archive and manifest
 * locked, and the lock read back. Whether a taken key holds the same archive
 * is decided by the shared layer from the stored bytes, never by the manifest.
 */
export class S3Driver implements StorageDriver {
  readonly type = 's3';
  readonly capabilities: DriverCapabilities;
  /** The SDK client; tests add middleware to it to see the exact requests. */
  readonly client: S3Client;
  /** The integrity header of every request that carries bytes. */
  private readonly checksum: BodyChecksum;
  private readonly partBuffers: PartBuffers;
  /** Object keys with a multipart store running in this process: a second one at once is refused. */
  private readonly uploading = new Set<string>();
  private readonly closing = new AbortController();
  private sweep?: Promise<void>;
  private readonly usage: QuotaUsage;

  constructor(
    readonly name: string,
    private readonly settings: S3Settings,
    private readonly logger: Logger,
  ) {
    this.capabilities = { retention: settings.objectLock !== undefined, space: settings.quotaBytes !== undefined, list: true };
    this.client = makeS3Client(settings);
    this.checksum = bodyChecksumFor(settings);
    addBodyChecksums(this.client, this.checksum);
    this.partBuffers = new PartBuffers(settings.queueSize);
    this.usage = new QuotaUsage(settings.quotaBytes, USAGE_TTL_MS, () => this.usedBytes());
  }

  private objectKey(key: ArchiveKey): string {
    return this.settings.prefix + key.text;
  }

  /** Where an object goes besides its key: storage class and server-side encryption. */
  private placement(withStorageClass: boolean) {
    return {
      ...(withStorageClass && this.settings.storageClass ? { StorageClass: this.settings.storageClass as StorageClass } : {}),
      ...(this.settings.sse ? { ServerSideEncryption: this.settings.sse } : {}),
      ...(this.settings.kmsKeyId ? { SSEKMSKeyId: this.settings.kmsKeyId } : {}),
    };
  }

  /** On first store: abort the multipart uploads crashed workers left behind, in the background. */
  private startSweep(): void {
    this.sweep ??= this.abortStaleUploads().then(
      (count) => {
        if (count > 0) this.logger.info(`aborted ${count} stale multipart upload(s) in ${this.settings.bucket}`, { driver: this.name });
      },
      (error: unknown) => {
        if (!this.closing.signal.aborted) {
          this.logger.warn('could not sweep stale multipart uploads', { driver: this.name, error: toDepotError(error, this.name).message });
        }
      },
    );
  }

  /** Aborts multipart uploads under the prefix older than a day; returns how many. */
  abortStaleUploads(options: { olderThanMs?: number } = {}): Promise<number> {
    return abortStaleUploads(this.client, { bucket: this.settings.bucket, prefix: this.settings.prefix, signal: this.closing.signal, ...options });
  }

  async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    this.startSweep();
    const what = `${this.name}: store ${key.text}`;
    const declared = body.declared;
    // The body is destroyed with a DepotError, so the shared layer reports this code rather than a stream's.
    const onAbort = () => body.stream.destroy(new DepotError('unavailable', `${what}: aborted`));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      signal.throwIfAborted();
      const staged = new StagedBody(body.stream);
      const partSize = partSizeFor(this.settings.partSizeMiB, declared.size);
      const lock = lockFor(this.settings, declared.retainUntil);
      const multipart = (head: Buffer[]): MultipartSource => ({
        chunks: staged.chunks(head),
        ended: () => staged.ended,
        manifest: () => body.manifest(),
        stop: (error) => body.stream.destroy(toDepotError(error, what)),
      });
      // Known to take several parts: straight into the part buffers, without holding a first part's worth of chunks.
      if (declared.size !== undefined && declared.size > partSize) return await this.putMultipart(key, multipart([]), { partSize, lock }, signal);
      const head = await staged.head(partSize);
      if (staged.ended) return await this.putWhole(key, Buffer.concat(head), body.manifest(), lock, signal);
      return await this.putMultipart(key, multipart(head), { partSize, lock }, signal);
    } catch (error) {
      body.stream.destroy();
      throw signal.aborted ? new DepotError('unavailable', `${what}: aborted`) : toDepotError(error, what);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * A local source file above one part goes into the part buffers straight
   * from the file, through one reused read buffer, hashed as it is read —
   * rather than through the source stream, whose fresh chunk per read is left
   * to the collector. The shared layer checks the digest against the task
   * (`body.manifest`) before anything is published. Up to one part: null, and
   * the stream takes it (one PUT).
   */
  async storeFile(key: ArchiveKey, body: FileBody, signal: AbortSignal): Promise<PublishOutcome | null> {
    const partSize = partSizeFor(this.settings.partSizeMiB, body.declared.size ?? body.file.size);
    if (body.file.size <= partSize) return null;
    this.startSweep();
    const what = `${this.name}: store ${key.text}`;
    const reader = new FileChunks(body.file.path, signal, body.onBytes);
    try {
      signal.throwIfAborted();
      return await this.putMultipart(
        key,
        // Nothing to stop on a failure: the reader is not asked for more, and it checks the signal before each read.
        { chunks: reader.chunks(), ended: () => reader.ended, manifest: () => body.manifest(reader.digest()), stop: () => undefined },
        { partSize, lock: lockFor(this.settings, body.declared.retainUntil) },
        signal,
      );
    } catch (error) {
      throw signal.aborted ? new DepotError('unavailable', `${what}: aborted`) : toDepotError(error, what);
    } finally {
      await reader.close();
    }
  }

  /** A small archive, read to its clean end: manifest first, then the object, in one PUT each. */
  private async putWhole(key: ArchiveKey, bytes: Buffer, manifest: Manifest, lock: LockParams | undefined, signal: AbortSignal): Promise<PublishOutcome> {
    // The shared layer hashed exactly these bytes: its sha256 signs the request, and is its checksum where the store takes one.
    const sha256 = Buffer.from(manifest.sha256, 'hex');
    const step = await this.placeManifest(key, manifest, signal);
    if (step.status === 'taken') return { status: 'exists', existing: step.existing };
    if (await this.headObject(key)) return this.keyTaken(key, step);
    const objectLock = laterLock(lock, step.manifest.retainUntil);
    let written: Written;
    try {
      const response = await this.client.send(
        new PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.objectKey(key),
          Body: withSha256(bytes, sha256),
          ContentLength: bytes.length,
          ...(this.checksum === 'sha256' ? { ChecksumSHA256: sha256.toString('base64') } : {}),
          ContentType: ARCHIVE_TYPE,
          IfNoneMatch: '*',
          Metadata: objectMetadata(step.manifest),
          ...objectLock,
          ...this.placement(true),
        }),
        { abortSignal: signal },
      );
      written = { versionId: response.VersionId, etag: response.ETag };
    } catch (error) {
      if (isPreconditionFailed(error)) return this.keyTaken(key, step);
      throw error;
    }
    await this.confirmWritten(key, step, written, signal);
    await this.lockPublished(key, step, written, objectLock, signal);
    return { status: 'created', manifest: step.manifest };
  }

  /**
   * A large archive as a multipart upload (memory: queueSize part buffers,
   * reused from store to store). CompleteMultipartUpload is sent only after the body ended cleanly,
   * the manifest is in place and the key is still free; any failure aborts the
   * upload once no part request runs any more, so no parts are left behind.
   * Lock headers go on CreateMultipartUpload for the stores that honour them
   * there; the lock is applied and read back after completion for those that
   * do not.
   */
  private async putMultipart(
    key: ArchiveKey,
    source: MultipartSource,
    plan: { partSize: number; lock: LockParams | undefined },
    signal: AbortSignal,
  ): Promise<PublishOutcome> {
    const objectKey = this.objectKey(key);
    if (this.uploading.has(objectKey)) throw new DepotError('unavailable', `another store of ${objectKey} is running in this process`);
    this.uploading.add(objectKey);
    let uploadId: string | undefined;
    // Aborted at most once: every way out but a completed upload goes through here.
    const abort = async () => {
      const id = uploadId;
      uploadId = undefined;
      if (id) await this.abortUpload(objectKey, id);
    };
    try {
      const created = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.settings.bucket,
          Key: objectKey,
          ContentType: ARCHIVE_TYPE,
          Metadata: objectMetadata({ taskId: key.taskId, name: key.name }),
          // Parts with a checksum need the upload created for it.
          ...(this.checksum === 'sha256' ? { ChecksumAlgorithm: 'SHA256' as const } : {}),
          ...plan.lock,
          ...this.placement(true),
        }),
      );
      uploadId = created.UploadId;
      if (!uploadId) throw new DepotError('unavailable', `${this.name}: CreateMultipartUpload of ${key.text} returned no upload id`);
      const parts = await uploadParts(
        {
          client: this.client,
          bucket: this.settings.bucket,
          key: objectKey,
          uploadId,
          partSize: plan.partSize,
          queueSize: this.settings.queueSize,
          checksum: this.checksum,
          buffers: this.partBuffers,
          onFailure: (error) => source.stop(error),
        },
        source.chunks,
      );
      if (!source.ended()) throw new DepotError('internal', `${this.name}: refusing to complete ${key.text} before its body ended`);
      const step = await this.placeManifest(key, source.manifest(), signal);
      if (step.status === 'taken') {
        await abort();
        return { status: 'exists', existing: step.existing };
      }
      if (await this.headObject(key)) {
        await abort();
        return await this.keyTaken(key, step);
      }
      let written: Written;
      try {
        // Without the store's signal: once sent, its outcome must be known (an aborted Complete may still have published).
        const response = await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.settings.bucket,
            Key: objectKey,
            UploadId: uploadId,
            IfNoneMatch: '*',
            MultipartUpload: { Parts: parts },
          }),
        );
        written = { versionId: response.VersionId, etag: response.ETag };
      } catch (error) {
        await abort();
        if (isPreconditionFailed(error)) return await this.keyTaken(key, step);
        throw error;
      }
      uploadId = undefined; // completed: nothing to abort any more
      await this.confirmWritten(key, step, written, signal);
      await this.lockPublished(key, step, written, laterLock(plan.lock, step.manifest.retainUntil), signal);
      return { status: 'created', manifest: step.manifest };
    } catch (error) {
      await abort();
      throw error;
    } finally {
      this.uploading.delete(objectKey);
    }
  }

  /**
   * The archive key is taken although the manifest step went through: seen
   * right before writing, or refused with 412. An object that an attempt of
   * this task wrote (its own metadata names the task and name) is reported as
   * `exists`, and the shared layer compares its bytes; any other object is
   * another writer's: `conflict`, and a manifest this attempt placed is
   * withdrawn rather than left beside it.
   */
  private async keyTaken(key: ArchiveKey, step: Extract<ManifestStep, { status: 'placed' }>): Promise<PublishOutcome> {
    const object = await this.headObject(key);
    if (!object) throw new DepotError('unavailable', `${this.name}: ${key.text} was refused as taken but is not there; try again`);
    const own = readObjectMetadata(object.Metadata);
    if (own.taskId === step.manifest.taskId && own.name === step.manifest.name) return { status: 'exists', existing: step.manifest };
    if (step.placed) await this.withdrawManifest(key, step.versionId);
    throw new DepotError('conflict', `${this.name}:${key.text} holds an object that depot did not write for this task`);
  }

  /**
   * After writing: the key must show depot's version alone. Another version
   * under it (a store that ignores If-None-Match let another writer in, before
   * or after) is a conflict unless it holds the same bytes by the store's own
   * ETag and size; depot then withdraws what it can of its own write (a locked
   * version stays, and the log says so) and never reports it as stored.
   */
  private async confirmWritten(key: ArchiveKey, step: Extract<ManifestStep, { status: 'placed' }>, written: Written, signal: AbortSignal): Promise<void> {
    const objectKey = this.objectKey(key);
    const seen = await versionsBeside(this.client, { bucket: this.settings.bucket, key: objectKey }, written, signal);
    if ('replaced' in seen) {
      throw new DepotError(
        'conflict',
        `${this.name}:${key.text} was replaced by another writer right after depot wrote it (ETag ${seen.etag ?? 'none'}); the store does not refuse overwrites`,
      );
    }
    if (seen.others.length === 0) return;
    if (sameBytes(seen.ours, seen.others)) {
      this.logger.warn(`${key.text} holds ${seen.others.length + 1} versions of the same bytes: another attempt wrote it too`, {
        driver: this.name,
        key: key.text,
      });
      return;
    }
    this.logger.error(
      `${key.text} was written by another writer too (${seen.others.length} other version(s)); the store ignores If-None-Match, so depot withdraws its own write`,
      {
        driver: this.name,
        key: key.text,
        versions: seen.others.map((v) => v.versionId),
      },
    );
    await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: objectKey, VersionId: written.versionId })).catch((error: unknown) => {
      this.logger.error(`could not withdraw depot's version of ${key.text}`, {
        driver: this.name,
        key: key.text,
        versionId: written.versionId,
        error: toDepotError(error, this.name).message,
      });
    });
    if (step.placed) await this.withdrawManifest(key, step.versionId);
    throw new DepotError('conflict', `${this.name}:${key.text} holds another writer's object beside depot's; the store ignores If-None-Match`);
  }

  /** Locks archive and manifest once the archive is known to be depot's, and reads the locks back. */
  private async lockPublished(
    key: ArchiveKey,
    step: Extract<ManifestStep, { status: 'placed' }>,
    written: Written,
    lock: LockParams | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    if (!lock) return;
    const objectKey = this.objectKey(key);
    await lockVersion(
      this.client,
      { bucket: this.settings.bucket, key: objectKey, versionId: written.versionId, label: `${this.name}:${key.text}` },
      lock,
      signal,
    );
    await lockVersion(
      this.client,
      {
        bucket: this.settings.bucket,
        key: sidecarKey(objectKey),
        versionId: step.placed ? step.versionId : undefined,
        label: `${this.name}:${key.text} (manifest)`,
      },
      lock,
      signal,
    );
  }

  /**
   * For a store that found this archive already in place (its own earlier
   * attempt): the lock that attempt may not have got to, computed from the
   * manifest as that attempt would have (the configured days count from
   * storedAt). Retention is only ever extended.
   */
  async ensureRetention(key: ArchiveKey, manifest: Manifest, signal: AbortSignal): Promise<void> {
    const lock = lockFor(this.settings, manifest.retainUntil, new Date(manifest.storedAt));
    if (!lock) return;
    const objectKey = this.objectKey(key);
    try {
      await lockVersion(this.client, { bucket: this.settings.bucket, key: objectKey, label: `${this.name}:${key.text}` }, lock, signal);
      await lockVersion(this.client, { bucket: this.settings.bucket, key: sidecarKey(objectKey), label: `${this.name}:${key.text} (manifest)` }, lock, signal);
    } catch (error) {
      throw toDepotError(error, `${this.name}: lock ${key.text}`);
    }
  }

  /** Removes a manifest this attempt placed (by its version where the bucket keeps versions). */
  private async withdrawManifest(key: ArchiveKey, versionId: string | undefined): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: sidecarKey(this.objectKey(key)), VersionId: versionId }));
    } catch (error) {
      this.logger.error(`could not withdraw the manifest depot placed beside another writer's ${key.text}`, {
        driver: this.name,
        key: key.text,
        error: toDepotError(error, this.name).message,
      });
    }
  }

  private async abortUpload(objectKey: string, uploadId: string | undefined): Promise<void> {
    if (!uploadId) return;
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.settings.bucket, Key: objectKey, UploadId: uploadId }));
    } catch (error) {
      if (isNotFound(error)) return;
      // The start-up sweep of a later worker removes it.
      this.logger.warn(`could not abort the multipart upload of ${objectKey}`, { driver: this.name, error: toDepotError(error, this.name).message });
    }
  }

  /**
   * Puts the manifest beside the key unless one is there: `If-None-Match: *`,
   * preceded by a read because some stores ignore the condition and would
   * replace it. It goes unlocked: it is locked with its archive once that is
   * known to be depot's, so a manifest withdrawn from beside another writer's
   * object can be. An existing manifest that is this archive's (sha256 and
   * size; the shared layer compares the rest) was placed by an earlier attempt
   * whose object may or may not have followed; any other means the key is taken.
   */
  private async placeManifest(key: ArchiveKey, manifest: Manifest, signal: AbortSignal): Promise<ManifestStep> {
    let existing = await this.readManifest(key, signal);
    if (!existing) {
      try {
        const response = await this.client.send(
          new PutObjectCommand({
            Bucket: this.settings.bucket,
            Key: sidecarKey(this.objectKey(key)),
            Body: serializeManifest(manifest),
            ContentType: MANIFEST_TYPE,
            IfNoneMatch: '*',
            // Never a cold storage class: every stat reads it.
            ...this.placement(false),
          }),
          { abortSignal: signal },
        );
        return { status: 'placed', manifest, placed: true, versionId: response.VersionId };
      } catch (error) {
        if (!isPreconditionFailed(error)) throw error;
        existing = await this.readManifest(key, signal);
        if (!existing) throw new DepotError('unavailable', `${this.name}: the manifest of ${key.text} exists but cannot be read yet`);
      }
    }
    if (existing.sha256 !== manifest.sha256 || existing.size !== manifest.size) return { status: 'taken', existing };
    return { status: 'placed', manifest: existing, placed: false };
  }

  private async readManifest(key: ArchiveKey, signal?: AbortSignal): Promise<Manifest | null> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: sidecarKey(this.objectKey(key)) }), {
        abortSignal: signal,
      });
      if (!response.Body) throw new DepotError('integrity', `${this.name}: the manifest of ${key.text} is empty`);
      return parseManifest(Buffer.from(await response.Body.transformToByteArray()), key.text);
    } catch (error) {
      if (isNotFound(error)) return null;
      throw toDepotError(error, `${this.name}: read manifest of ${key.text}`);
    }
  }

  private async headObject(key: ArchiveKey, objectKey = this.objectKey(key)): Promise<HeadObjectCommandOutput | null> {
    try {
      return await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: objectKey }));
    } catch (error) {
      if (isNotFound(error)) return null;
      throw toDepotError(error, `${this.name}: head ${key.text}`);
    }
  }

  /** The object's own size and metadata must agree with its manifest. */
  private assertConsistent(key: ArchiveKey, manifest: Manifest, object: { ContentLength?: number; Metadata?: Record<string, string> }): void {
    if (object.ContentLength !== undefined && object.ContentLength !== manifest.size) {
      throw new DepotError('integrity', `${this.name}:${key.text} holds ${object.ContentLength} bytes, its manifest says ${manifest.size}`);
    }
    if (metadataContradicts(manifest, object.Metadata)) throw new DepotError('integrity', `${this.name}:${key.text} does not match its manifest`);
  }

  async retrieve(key: ArchiveKey, signal: AbortSignal): Promise<{ body: Readable; manifest: Manifest }> {
    const what = `${this.name}: retrieve ${key.text}`;
    try {
      const manifest = await this.readManifest(key, signal);
      if (!manifest) {
        if (await this.headObject(key)) throw foreignObject(this.name, key.text);
        throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
      }
      let response;
      try {
        response = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) }), { abortSignal: signal });
      } catch (error) {
        // A manifest without its archive: a store that crashed between the two, invisible.
        if (isNotFound(error)) throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
        throw error;
      }
      const body = response.Body;
      if (!(body instanceof Readable)) throw new DepotError('internal', `${what}: the SDK returned no stream`);
      try {
        this.assertConsistent(key, manifest, response);
      } catch (error) {
        body.destroy();
        throw error;
      }
      return { body, manifest };
    } catch (error) {
      throw toDepotError(error, what);
    }
  }

  async stat(key: ArchiveKey): Promise<Manifest | null> {
    const [object, manifest] = await Promise.all([this.headObject(key), this.readManifest(key)]);
    // A manifest without its archive is a store that has not published (yet): invisible.
    if (!object) return null;
    if (!manifest) throw foreignObject(this.name, key.text);
    this.assertConsistent(key, manifest, object);
    return manifest;
  }

  /**
   * Archive first, then manifest (a crash in between leaves an invisible
   * manifest). The version seen by HEAD is deleted, so on a versioned bucket
   * (which Object Lock requires) the bytes are really gone rather than hidden
   * behind a delete marker — and Object Lock can refuse.
   */
  async delete(key: ArchiveKey): Promise<void> {
    const what = `${this.name}: delete ${key.text}`;
    const objectKey = this.objectKey(key);
    const [object, sidecar] = await Promise.all([this.headObject(key), this.headObject(key, sidecarKey(objectKey))]);
    if (!object) throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: objectKey, VersionId: object.VersionId }));
    } catch (error) {
      if (isAccessDenied(error) && isLocked(object, error)) {
        throw new DepotError(
          'retention',
          `${this.name}:${key.text} is under Object Lock retention${object.ObjectLockRetainUntilDate ? ` until ${object.ObjectLockRetainUntilDate.toISOString()}` : ''}`,
        );
      }
      throw toDepotError(error, what);
    }
    if (!sidecar) return;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: sidecarKey(objectKey), VersionId: sidecar.VersionId }));
    } catch (error) {
      // The archive is gone; a manifest left behind is invisible. Say so rather than fail the delete.
      this.logger.warn(`deleted ${key.text}, but not its manifest`, { driver: this.name, error: toDepotError(error, what).message });
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<Manifest> {
    const base = this.settings.prefix;
    // Keys come in UTF-8 byte order; StartAfter resumes a listing after a key it yielded.
    const pages = paginateListObjectsV2(
      { client: this.client, pageSize: 1000 },
      { Bucket: this.settings.bucket, Prefix: base + prefix, ...(options.after !== undefined ? { StartAfter: base + options.after } : {}) },
    );
    try {
      for await (const page of pages) {
        const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key.slice(base.length)] : []));
        // Sidecars are no archive keys (no archive name may end like one), nor is anything under the check directory.
        const candidates = keys.flatMap((k) => {
          const parsed = parseArchiveKey(k);
          return parsed.ok ? [parsed.key] : [];
        });
        const manifests = await mapInOrder(candidates, LIST_PARALLEL, (k) =>
          this.readManifest(k).catch((error: unknown) => {
            if (error instanceof DepotError && error.code === 'integrity') return null; // not one of depot's manifests
            throw error;
          }),
        );
        for (const [i, manifest] of manifests.entries()) {
          if (manifest && manifest.name === candidates[i].name) yield manifest;
        }
      }
    } catch (error) {
      throw toDepotError(error, `${this.name}: list ${prefix}`);
    }
  }

  /**
   * A probe under `<prefix>.depot-check/`, written without retention so it can be
   * deleted; then a second one that asks whether the store refuses overwrites
   * itself (`writeOnce`). A bucket whose default retention locks every new
   * object defeats that: the check then fails and says why, instead of leaving
   * probes behind.
   */
  async check(signal: AbortSignal): Promise<ProbeReport> {
    const key = `${this.settings.prefix}${CHECK_DIR}/${probeName()}`;
    const what = `${this.name}: check`;
    let versionId: string | undefined;
    try {
      const timings = await runProbe({
        write: async (bytes) => {
          const response = await this.client.send(
            new PutObjectCommand({ Bucket: this.settings.bucket, Key: key, Body: bytes, ContentType: ARCHIVE_TYPE, ...this.placement(false) }),
            { abortSignal: signal },
          );
          versionId = response.VersionId;
        },
        read: async () => {
          const response = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: key }), { abortSignal: signal });
          return Buffer.from((await response.Body?.transformToByteArray()) ?? []);
        },
        remove: async () => {
          try {
            await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: key, VersionId: versionId }));
          } catch (error) {
            if (!isAccessDenied(error)) throw error;
            throw new DepotError(
              'retention',
              `${what}: the probe ${key} cannot be deleted — the bucket's default Object Lock retention locked it. ` +
                'depot sets retention per archive (objectLock); remove the default retention rule from the bucket',
            );
          }
        },
      });
      const writeOnce = await probeConditionalWrites(this.client, this.settings.bucket, `${this.settings.prefix}${CHECK_DIR}/${probeName()}`, signal);
      return { ...timings, writeOnce };
    } catch (error) {
      throw toDepotError(error, what);
    }
  }

  /** S3 has no free-space figure: with `quotaBytes`, the objects under the prefix count against it (cached a minute). */
  space(): Promise<Space> {
    return this.usage.space();
  }

  private async usedBytes(): Promise<number> {
    let total = 0;
    try {
      for await (const page of paginateListObjectsV2(
        { client: this.client, pageSize: 1000 },
        { Bucket: this.settings.bucket, Prefix: this.settings.prefix || undefined },
      )) {
        for (const object of page.Contents ?? []) total += object.Size ?? 0;
      }
    } catch (error) {
      throw toDepotError(error, `${this.name}: space`);
    }
    return total;
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.partBuffers.clear();
    await this.sweep;
    this.client.destroy();
  }
}
