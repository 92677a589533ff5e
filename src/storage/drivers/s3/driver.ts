import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  HeadObjectCommandOutput,
  paginateListObjectsV2,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  StorageClass,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { DepotError, Manifest, parseArchiveKey, Space } from '../../../contract';
import type { Logger } from '../../../support/logging';
import type { ArchiveBody, DriverCapabilities, ProbeReport, PublishOutcome, StorageDriver } from '../../driver';
import { parseManifest, serializeManifest, SIDECAR_SUFFIX } from '../../manifest';
import { probeName, runProbe } from '../../probe';
import { makeS3Client } from './client';
import { CompleteGate } from './complete-gate';
import { addContentMd5 } from './content-md5';
import { isAccessDenied, isNotFound, isPreconditionFailed, toDepotError } from './errors';
import { metadataContradicts, objectMetadata, sidecarKey } from './manifest-metadata';
import { abortStaleUploads } from './multipart-sweep';
import { mapInOrder } from './parallel';
import { partSizeFor } from './part-size';
import { LockParams, lockFor } from './retention';
import { StagedBody } from './staged-body';
import type { S3Settings } from './types';

const CHECK_DIR = '.depot-check';
const ARCHIVE_TYPE = 'application/octet-stream';
const MANIFEST_TYPE = 'application/json';
/** Sidecars read in parallel while listing. */
const LIST_PARALLEL = 8;
/** How long a computed usedBytes is reused by space(): a full listing per call would be costly. */
const USAGE_TTL_MS = 60_000;

/**
 * What the shared layer knows before the first byte. Not part of ArchiveBody
 * yet (a proposed addition): with it, the part size grows for archives over
 * 10,000 parts and the task's retainUntil reaches a multipart upload's Object
 * Lock at its start. Without it both fall back as described where they are used.
 */

/** The manifest step of a publish: ours is in place (`reused`: an earlier attempt of the same bytes put it there), or the key is taken. */
type ManifestStep = { status: 'placed'; manifest: Manifest; reused: boolean } | { status: 'taken'; existing: Manifest };

/** Thrown inside the Complete gate when the key turned out to be taken: Complete is then never sent. */
class KeyTaken extends Error {
  constructor(readonly existing: Manifest) {
    super('key taken');
  }
}

/**
 * Write-once archives in an S3 bucket: `<prefix>YYYY/MM/DD/<taskId>/<name>` with
 * the manifest in a sidecar object `<key>.depot.json`.
 *
 * Nothing is visible under a key until its bytes are complete and verified:
 * a small archive (up to one part) is read to its clean end and then sent in one
 * PutObject; a large one goes through lib-storage's multipart Upload, whose
 * parts stay invisible until CompleteMultipartUpload — which the CompleteGate
 * holds until the body ended cleanly and the manifest is published. A failed or
 * aborted store aborts its upload. Both writes carry `If-None-Match: *`, and the
 * manifest goes first, so no state shows an archive without its manifest.
 */
export class S3Driver implements StorageDriver {
  readonly type = 's3';
  readonly capabilities: DriverCapabilities;
  /** The SDK client; tests add middleware to it to see the exact requests. */
  readonly client: S3Client;
  private readonly gate: CompleteGate;
  private readonly closing = new AbortController();
  private sweep?: Promise<void>;
  private usage?: { at: number; bytes: Promise<number> };

  constructor(
    readonly name: string,
    private readonly settings: S3Settings,
    private readonly logger: Logger,
  ) {
    this.capabilities = { retention: settings.objectLock !== undefined, space: settings.quotaBytes !== undefined, list: true };
    this.client = makeS3Client(settings);
    addContentMd5(this.client);
    this.gate = new CompleteGate(this.client);
  }

  private objectKey(key: string): string {
    return this.settings.prefix + key;
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

  async store(key: string, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    this.startSweep();
    const what = `${this.name}: store ${key}`;
    const declared = body.declared;
    // The body is destroyed with a DepotError, so the shared layer reports this code rather than a stream's.
    const onAbort = () => body.stream.destroy(new DepotError('unavailable', `${what}: aborted`));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      signal.throwIfAborted();
      const staged = new StagedBody(body.stream);
      const partSize = partSizeFor(this.settings.partSizeMiB, declared.size);
      const head = await staged.head(partSize);
      const lock = lockFor(this.settings, declared.retainUntil);
      if (staged.ended) return await this.putWhole(key, Buffer.concat(head), body.manifest(), lock, signal);
      return await this.putMultipart(key, staged, head, body, { partSize, lock }, signal);
    } catch (error) {
      body.stream.destroy();
      throw signal.aborted ? new DepotError('unavailable', `${what}: aborted`) : toDepotError(error, what);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** A small archive, read to its clean end: manifest first, then the object, in one PUT each. */
  private async putWhole(key: string, bytes: Buffer, manifest: Manifest, lock: LockParams | undefined, signal: AbortSignal): Promise<PublishOutcome> {
    const objectLock = laterLock(lock, manifest.retainUntil);
    const step = await this.placeManifest(key, manifest, objectLock, signal);
    if (step.status === 'taken') return { status: 'exists', existing: step.existing };
    if (step.reused && (await this.headObject(key))) return { status: 'exists', existing: step.manifest };
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.objectKey(key),
          Body: bytes,
          ContentLength: bytes.length,
          ContentType: ARCHIVE_TYPE,
          IfNoneMatch: '*',
          Metadata: objectMetadata(step.manifest),
          ...objectLock,
          ...this.placement(true),
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      if (isPreconditionFailed(error)) return { status: 'exists', existing: await this.requireManifest(key) };
      throw error;
    }
    return { status: 'created', manifest: step.manifest };
  }

  /**
   * A large archive through lib-storage's Upload (memory about queueSize ×
   * partSize). Its CompleteMultipartUpload passes the gate only after the body
   * ended cleanly and the manifest is in place; any failure aborts the upload,
   * so no parts are left behind.
   */
  private async putMultipart(
    key: string,
    staged: StagedBody,
    head: Buffer[],
    body: ArchiveBody,
    plan: { partSize: number; lock: LockParams | undefined },
    signal: AbortSignal,
  ): Promise<PublishOutcome> {
    const objectKey = this.objectKey(key);
    const parts = parseArchiveKey(key);
    if (typeof parts === 'string') throw new DepotError('invalid_task', parts, { field: 'ref.key' });
    let published: Manifest | undefined;
    let taken: Manifest | undefined;
    const unhold = this.gate.hold(objectKey, {
      beforeComplete: async () => {
        if (!staged.ended) throw new DepotError('internal', `${this.name}: refusing to complete ${key} before its body ended`);
        const manifest = body.manifest();
        const step = await this.placeManifest(key, manifest, laterLock(plan.lock, manifest.retainUntil), signal);
        if (step.status === 'taken') throw new KeyTaken((taken = step.existing));
        // An earlier attempt of the same bytes may have completed after placing the same manifest.
        if (step.reused && (await this.headObject(key))) throw new KeyTaken((taken = step.manifest));
        published = step.manifest;
      },
      onPartFailed: (error) => body.stream.destroy(toDepotError(error, `${this.name}: store ${key}`)),
    });
    const upload = new Upload({
      client: this.client,
      queueSize: this.settings.queueSize,
      partSize: plan.partSize,
      // The driver aborts the upload itself, so the original failure is what the caller sees.
      leavePartsOnError: true,
      params: {
        Bucket: this.settings.bucket,
        Key: objectKey,
        Body: staged.remainder(head),
        ContentType: ARCHIVE_TYPE,
        IfNoneMatch: '*',
        Metadata: objectMetadata({ taskId: parts.taskId, name: parts.name }),
        ...plan.lock,
        ...this.placement(true),
      },
    });
    try {
      await upload.done();
    } catch (error) {
      await this.abortUpload(objectKey, upload.uploadId);
      if (taken) return { status: 'exists', existing: taken };
      if (isPreconditionFailed(error)) return { status: 'exists', existing: await this.requireManifest(key) };
      throw error;
    } finally {
      unhold();
    }
    if (!published) throw new DepotError('internal', `${this.name}: the upload of ${key} completed without passing the gate`);
    await this.extendRetention(key, plan.lock, published);
    return { status: 'created', manifest: published };
  }

  /**
   * A multipart upload's Object Lock is fixed when it starts, from what the task
   * declared; should the manifest hold a later retainUntil (a caller that did not
   * declare it), it is applied once the object exists (retention can always be
   * extended). A failure here is
   * logged, not thrown: the archive is published, and depot still refuses to
   * delete it before its manifest's retainUntil.
   */
  private async extendRetention(key: string, lock: LockParams | undefined, manifest: Manifest): Promise<void> {
    const wanted = manifest.retainUntil ? Date.parse(manifest.retainUntil) : NaN;
    if (!lock || Number.isNaN(wanted) || wanted <= lock.ObjectLockRetainUntilDate.getTime()) return;
    try {
      await this.client.send(
        new PutObjectRetentionCommand({
          Bucket: this.settings.bucket,
          Key: this.objectKey(key),
          Retention: { Mode: lock.ObjectLockMode, RetainUntilDate: new Date(wanted) },
        }),
      );
    } catch (error) {
      this.logger.error(`${key} is stored, but its Object Lock retention could not be extended to ${manifest.retainUntil}`, {
        driver: this.name,
        key,
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
   * replace it. An existing manifest of the same bytes was placed by an earlier
   * attempt whose object may or may not have followed; one of other bytes means
   * the key is taken.
   */
  private async placeManifest(key: string, manifest: Manifest, lock: LockParams | undefined, signal: AbortSignal): Promise<ManifestStep> {
    let existing = await this.readManifest(key, signal);
    if (!existing) {
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.settings.bucket,
            Key: sidecarKey(this.objectKey(key)),
            Body: serializeManifest(manifest),
            ContentType: MANIFEST_TYPE,
            IfNoneMatch: '*',
            // The manifest is locked as long as its archive; it never goes to a cold storage class, since every stat reads it.
            ...lock,
            ...this.placement(false),
          }),
          { abortSignal: signal },
        );
        return { status: 'placed', manifest, reused: false };
      } catch (error) {
        if (!isPreconditionFailed(error)) throw error;
        existing = await this.readManifest(key, signal);
        if (!existing) throw new DepotError('unavailable', `${this.name}: the manifest of ${key} exists but cannot be read yet`);
      }
    }
    if (existing.sha256 !== manifest.sha256 || existing.size !== manifest.size) return { status: 'taken', existing };
    return { status: 'placed', manifest: existing, reused: true };
  }

  private async readManifest(key: string, signal?: AbortSignal): Promise<Manifest | null> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: sidecarKey(this.objectKey(key)) }), { abortSignal: signal });
      if (!response.Body) throw new DepotError('integrity', `${this.name}: the manifest of ${key} is empty`);
      return parseManifest(Buffer.from(await response.Body.transformToByteArray()), key);
    } catch (error) {
      if (isNotFound(error)) return null;
      throw toDepotError(error, `${this.name}: read manifest of ${key}`);
    }
  }

  private async requireManifest(key: string): Promise<Manifest> {
    const manifest = await this.readManifest(key);
    // depot never writes an archive without its manifest: someone else wrote this object.
    if (!manifest) throw new DepotError('integrity', `${this.name}:${key} has no manifest`);
    return manifest;
  }

  private async headObject(key: string, objectKey = this.objectKey(key)): Promise<HeadObjectCommandOutput | null> {
    try {
      return await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: objectKey }));
    } catch (error) {
      if (isNotFound(error)) return null;
      throw toDepotError(error, `${this.name}: head ${key}`);
    }
  }

  /** The object's own size and metadata must agree with its manifest. */
  private assertConsistent(key: string, manifest: Manifest, object: { ContentLength?: number; Metadata?: Record<string, string> }): void {
    if (object.ContentLength !== undefined && object.ContentLength !== manifest.size) {
      throw new DepotError('integrity', `${this.name}:${key} holds ${object.ContentLength} bytes, its manifest says ${manifest.size}`);
    }
    if (metadataContradicts(manifest, object.Metadata)) throw new DepotError('integrity', `${this.name}:${key} does not match its manifest`);
  }

  async retrieve(key: string, signal: AbortSignal): Promise<{ body: Readable; manifest: Manifest }> {
    const what = `${this.name}: retrieve ${key}`;
    try {
      const manifest = await this.readManifest(key, signal);
      if (!manifest) {
        if (await this.headObject(key)) throw new DepotError('integrity', `${this.name}:${key} has no manifest`);
        throw new DepotError('not_found', `no archive ${this.name}:${key}`);
      }
      let response;
      try {
        response = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) }), { abortSignal: signal });
      } catch (error) {
        // A manifest without its archive: a store that crashed between the two, invisible.
        if (isNotFound(error)) throw new DepotError('not_found', `no archive ${this.name}:${key}`);
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

  async stat(key: string): Promise<Manifest | null> {
    const [object, manifest] = await Promise.all([this.headObject(key), this.readManifest(key)]);
    // A manifest without its archive is a store that has not published (yet): invisible.
    if (!object) return null;
    if (!manifest) throw new DepotError('integrity', `${this.name}:${key} has no manifest`);
    this.assertConsistent(key, manifest, object);
    return manifest;
  }

  /**
   * Archive first, then manifest (a crash in between leaves an invisible
   * manifest). The version seen by HEAD is deleted, so on a versioned bucket
   * (which Object Lock requires) the bytes are really gone rather than hidden
   * behind a delete marker — and Object Lock can refuse.
   */
  async delete(key: string): Promise<void> {
    const what = `${this.name}: delete ${key}`;
    const objectKey = this.objectKey(key);
    const [object, sidecar] = await Promise.all([this.headObject(key), this.headObject(key, sidecarKey(objectKey))]);
    if (!object) throw new DepotError('not_found', `no archive ${this.name}:${key}`);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: objectKey, VersionId: object.VersionId }));
    } catch (error) {
      if (isAccessDenied(error) && isLocked(object, error)) {
        throw new DepotError('retention', `${this.name}:${key} is under Object Lock retention${object.ObjectLockRetainUntilDate ? ` until ${object.ObjectLockRetainUntilDate.toISOString()}` : ''}`);
      }
      throw toDepotError(error, what);
    }
    if (!sidecar) return;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: sidecarKey(objectKey), VersionId: sidecar.VersionId }));
    } catch (error) {
      // The archive is gone; a manifest left behind is invisible. Say so rather than fail the delete.
      this.logger.warn(`deleted ${key}, but not its manifest`, { driver: this.name, error: toDepotError(error, what).message });
    }
  }

  async *list(prefix: string): AsyncIterable<Manifest> {
    const base = this.settings.prefix;
    const pages = paginateListObjectsV2({ client: this.client, pageSize: 1000 }, { Bucket: this.settings.bucket, Prefix: base + prefix });
    try {
      for await (const page of pages) {
        const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key.slice(base.length)] : []));
        const inPage = new Set(keys);
        const candidates = keys.filter(
          (k) =>
            !k.startsWith(`${CHECK_DIR}/`) &&
            typeof parseArchiveKey(k) !== 'string' &&
            // The sidecar of an archive listed beside it (an archive may itself be named *.depot.json).
            !(k.endsWith(SIDECAR_SUFFIX) && inPage.has(k.slice(0, -SIDECAR_SUFFIX.length))),
        );
        const manifests = await mapInOrder(candidates, LIST_PARALLEL, (k) =>
          this.readManifest(k).catch((error: unknown) => {
            if (error instanceof DepotError && error.code === 'integrity') return null; // not one of depot's manifests
            throw error;
          }),
        );
        for (const [i, manifest] of manifests.entries()) {
          if (manifest && manifest.name === (parseArchiveKey(candidates[i]) as { name: string }).name) yield manifest;
        }
      }
    } catch (error) {
      throw toDepotError(error, `${this.name}: list ${prefix}`);
    }
  }

  /**
   * A probe under `<prefix>.depot-check/`, written without retention so it can be
   * deleted. A bucket whose default retention locks every new object defeats
   * that: the check then fails and says why, instead of leaving probes behind.
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
      return { ...timings, writeOnce: 'best_effort' };
    } catch (error) {
      throw toDepotError(error, what);
    }
  }

  /** S3 has no free-space figure: with `quotaBytes`, the objects under the prefix count against it. */
  async space(): Promise<Space> {
    const quota = this.settings.quotaBytes;
    if (quota === undefined) return {};
    if (!this.usage || Date.now() - this.usage.at > USAGE_TTL_MS) {
      const bytes = this.usedBytes();
      bytes.catch(() => (this.usage = undefined));
      this.usage = { at: Date.now(), bytes };
    }
    const used = await this.usage.bytes;
    return { totalBytes: quota, usedBytes: used, freeBytes: Math.max(0, quota - used) };
  }

  private async usedBytes(): Promise<number> {
    let total = 0;
    try {
      for await (const page of paginateListObjectsV2({ client: this.client, pageSize: 1000 }, { Bucket: this.settings.bucket, Prefix: this.settings.prefix || undefined })) {
        for (const object of page.Contents ?? []) total += object.Size ?? 0;
      }
    } catch (error) {
      throw toDepotError(error, `${this.name}: space`);
    }
    return total;
  }

  async close(): Promise<void> {
    this.closing.abort();
    await this.sweep;
    this.client.destroy();
  }
}

/** The lock of a store, pushed to the manifest's retainUntil when that is later. */
function laterLock(lock: LockParams | undefined, retainUntil: string | undefined): LockParams | undefined {
  const wanted = retainUntil ? Date.parse(retainUntil) : NaN;
  if (!lock || Number.isNaN(wanted) || wanted <= lock.ObjectLockRetainUntilDate.getTime()) return lock;
  return { ...lock, ObjectLockRetainUntilDate: new Date(wanted) };
}

/** Whether an AccessDenied on delete is Object Lock's refusal rather than missing permissions. */
function isLocked(object: HeadObjectCommandOutput, error: unknown): boolean {
  const until = object.ObjectLockRetainUntilDate?.getTime();
  if ((until !== undefined && until > Date.now()) || object.ObjectLockLegalHoldStatus === 'ON') return true;
  const message = error instanceof Error ? error.message : '';
  return /object lock|retention|worm|legal hold/i.test(message);
}
