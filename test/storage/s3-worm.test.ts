/**
 * The S3 driver on a real store that enforces Object Lock: Ceph's RADOS Gateway
 * (test/helpers/worm-s3.ts). It also ignores If-None-Match on versioned buckets
 * and on every CompleteMultipartUpload, so write-once must hold there by
 * depot's own checks before and after each write: these tests let another
 * writer in at the worst moments. One server for the whole file (it takes
 * ~13 s to start), a bucket per test.
 */
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { archiveKey, DepotError, newTaskId, toArchiveKey } from '../../src/contract';
import { ArchiveStore } from '../../src/storage/archive-store';
import type { StorageDriver } from '../../src/storage/driver';
import { S3Driver } from '../../src/storage/drivers/s3/driver';
import { silentLogger } from '../../src/support/logging';
import { ConformanceHarness, describeConformance } from '../conformance/suite';
import { uniqueBucket } from '../helpers/s3-server';
import { digestOf, MiB, patternBytes } from '../helpers/streams';
import { startWormS3, WormS3, wormSettings } from '../helpers/worm-s3';
import { archiveBody, firstTimes, injectFaults, recordRequests } from './s3-test-kit';

const logger = silentLogger();
const DAY = 24 * 60 * 60 * 1000;
const PREFIX = 'p/';
let worm: WormS3;
let raw: S3Client;
const drivers: S3Driver[] = [];

beforeAll(async () => {
  worm = await startWormS3();
  raw = worm.client();
}, 200_000);

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await worm?.stop();
}, 100_000);

async function setup(options: { objectLockBucket?: boolean; settings?: Record<string, unknown> } = {}) {
  const bucket = uniqueBucket('worm');
  await worm.createBucket(bucket, { objectLock: options.objectLockBucket ?? true });
  const driver = new S3Driver('worm', wormSettings(worm, bucket, { prefix: PREFIX, ...options.settings }), logger);
  drivers.push(driver);
  return { bucket, driver, store: new ArchiveStore(driver, logger) };
}

function ref(name = 'exam.zip') {
  const taskId = newTaskId();
  return { key: archiveKey(new Date(), taskId, name), taskId, name };
}

async function versionsOf(bucket: string, key: string): Promise<{ versionId?: string; etag?: string }[]> {
  const page = await raw.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
  return (page.Versions ?? []).filter((v) => v.Key === key).map((v) => ({ versionId: v.VersionId, etag: v.ETag }));
}

async function bytesAt(bucket: string, key: string): Promise<Buffer> {
  const object = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from((await object.Body?.transformToByteArray()) ?? []);
}

async function exists(bucket: string, key: string): Promise<boolean> {
  return raw.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    () => true,
    () => false,
  );
}

/**
 * Another writer puts `bytes` at the archive's key just before the driver sends
 * `command` for it — after depot looked at the key and found it free. At the
 * build step, so it runs after the driver's own gate has let the request pass.
 */
function writerSlipsIn(driver: S3Driver, bucket: string, command: string, key: string, bytes: Buffer): void {
  let done = false;
  driver.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (!done && context.commandName === `${command}Command` && (args.input as { Key?: string }).Key === key) {
        done = true;
        await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
      }
      return next(args);
    },
    { step: 'build', name: 'testWriterSlipsIn' },
  );
}

describe('s3 driver (Ceph RGW, Object Lock bucket): conformance', () => {
  describeConformance((): ConformanceHarness => {
    const buckets = new Map<StorageDriver, string>();
    const bucketOf = (driver: StorageDriver): string => {
      const bucket = buckets.get(driver);
      if (!bucket) throw new Error('driver was not made by this harness');
      return bucket;
    };
    const allVersions = async (Bucket: string) => {
      const page = await raw.send(new ListObjectVersionsCommand({ Bucket }));
      return [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key ?? '', VersionId: v.VersionId }));
    };
    return {
      name: 's3-worm',
      async makeDriver() {
        // Object Lock (hence versioning, and If-None-Match ignored), with depot's own retention: the suite deletes after retainUntil.
        const { bucket, driver } = await setup();
        buckets.set(driver, bucket);
        return driver;
      },
      async tamper(driver, key) {
        // A new version with the first byte flipped, same metadata: only the bytes differ.
        const Bucket = bucketOf(driver);
        const Key = PREFIX + key;
        const object = await raw.send(new GetObjectCommand({ Bucket, Key }));
        const bytes = Buffer.from((await object.Body?.transformToByteArray()) ?? []);
        if (bytes.length === 0) bytes.writeUInt8(0x2a);
        else bytes[0] ^= 0xff;
        await raw.send(new PutObjectCommand({ Bucket, Key, Body: bytes, Metadata: object.Metadata, ContentType: object.ContentType }));
      },
      async plant(driver, key, bytes) {
        await raw.send(new PutObjectCommand({ Bucket: bucketOf(driver), Key: PREFIX + key, Body: bytes }));
      },
      async visibleEntries(driver) {
        // Every version and delete marker: on a versioned bucket a hidden version is still there.
        return (await allVersions(bucketOf(driver))).map((v) => v.Key).sort();
      },
      async stagingEntries(driver) {
        const uploads = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucketOf(driver) }));
        return (uploads.Uploads ?? []).map((u) => `${u.Key} (upload ${u.UploadId})`);
      },
      async breakBackend(driver) {
        const Bucket = bucketOf(driver);
        for (const v of await allVersions(Bucket)) await raw.send(new DeleteObjectCommand({ Bucket, Key: v.Key, VersionId: v.VersionId }));
        await raw.send(new DeleteBucketCommand({ Bucket }));
      },
      async cleanup() {
        buckets.clear();
      },
    };
  });
});

describe('write-once against another writer', () => {
  test('PutObject refused with 412 because another writer got there first: conflict, and depot leaves no manifest beside their object', async () => {
    // An unversioned bucket: the one place where this store enforces If-None-Match.
    const { bucket, driver, store } = await setup({ objectLockBucket: false });
    const r = ref();
    const theirs = patternBytes(1000, 'theirs');
    writerSlipsIn(driver, bucket, 'PutObject', PREFIX + r.key, theirs);
    const ours = patternBytes(1000, 'ours');
    await expect(store.store({ ...r, body: archiveBody(r.key, ours).stream })).rejects.toMatchObject({ code: 'conflict' });
    expect(digestOf(await bytesAt(bucket, PREFIX + r.key))).toEqual(digestOf(theirs));
    expect(await exists(bucket, `${PREFIX}${r.key}.depot.json`)).toBe(false);
  });

  test('the same race on an Object Lock bucket, which ignores If-None-Match: conflict, their object stays the only one', async () => {
    const { bucket, driver, store } = await setup();
    const r = ref();
    const theirs = patternBytes(1000, 'theirs');
    writerSlipsIn(driver, bucket, 'PutObject', PREFIX + r.key, theirs);
    await expect(store.store({ ...r, body: archiveBody(r.key, patternBytes(1000, 'ours')).stream })).rejects.toMatchObject({ code: 'conflict' });
    // depot withdrew the version it wrote on top (it was not locked) and its manifest.
    expect(await versionsOf(bucket, PREFIX + r.key)).toHaveLength(1);
    expect(digestOf(await bytesAt(bucket, PREFIX + r.key))).toEqual(digestOf(theirs));
    expect(await exists(bucket, `${PREFIX}${r.key}.depot.json`)).toBe(false);
  });

  test('a locked write on top of another writer is still a conflict, never reported as stored', async () => {
    const { bucket, driver, store } = await setup({ settings: { objectLock: { mode: 'COMPLIANCE', days: 1 } } });
    const r = ref();
    writerSlipsIn(driver, bucket, 'PutObject', PREFIX + r.key, patternBytes(1000, 'theirs'));
    await expect(store.store({ ...r, body: archiveBody(r.key, patternBytes(1000, 'ours')).stream })).rejects.toMatchObject({ code: 'conflict' });
    // Object Lock keeps depot's version (it cannot be withdrawn), but no manifest claims it.
    expect(await versionsOf(bucket, PREFIX + r.key)).toHaveLength(2);
    expect(await exists(bucket, `${PREFIX}${r.key}.depot.json`)).toBe(false);
    await expect(store.stat(r.key)).rejects.toMatchObject({ code: 'conflict' });
  });

  test('CompleteMultipartUpload, which ignores If-None-Match everywhere, after another writer slipped in: conflict', async () => {
    const { bucket, driver, store } = await setup();
    const r = ref();
    const theirs = patternBytes(1000, 'theirs');
    writerSlipsIn(driver, bucket, 'CompleteMultipartUpload', PREFIX + r.key, theirs);
    await expect(store.store({ ...r, body: archiveBody(r.key, patternBytes(12 * MiB, 'ours')).stream })).rejects.toMatchObject({ code: 'conflict' });
    expect(await versionsOf(bucket, PREFIX + r.key)).toHaveLength(1);
    expect(digestOf(await bytesAt(bucket, PREFIX + r.key))).toEqual(digestOf(theirs));
    expect(await exists(bucket, `${PREFIX}${r.key}.depot.json`)).toBe(false);
  });

  test('another writer already there while the parts go up: Complete is never sent', async () => {
    const { bucket, driver, store } = await setup();
    const r = ref();
    const sent = recordRequests(driver.client);
    writerSlipsIn(driver, bucket, 'UploadPart', PREFIX + r.key, patternBytes(1000, 'theirs'));
    await expect(store.store({ ...r, body: archiveBody(r.key, patternBytes(12 * MiB, 'ours')).stream })).rejects.toMatchObject({ code: 'conflict' });
    expect(sent.map((s) => s.command)).not.toContain('CompleteMultipartUploadCommand');
    expect(await versionsOf(bucket, PREFIX + r.key)).toHaveLength(1);
    expect(await exists(bucket, `${PREFIX}${r.key}.depot.json`)).toBe(false);
    expect((await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
  });

  test("a foreign object without a manifest at depot's key: conflict, not integrity; it is never replaced", async () => {
    const { bucket, store } = await setup();
    const r = ref();
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: PREFIX + r.key, Body: 'who wrote this?' }));
    await expect(store.stat(r.key)).rejects.toMatchObject({ code: 'conflict' });
    await expect(store.store({ ...r, body: archiveBody(r.key, Buffer.from('ours')).stream })).rejects.toMatchObject({ code: 'conflict' });
    expect(await versionsOf(bucket, PREFIX + r.key)).toHaveLength(1);
  });

  test("a retry whose manifest is in place but whose key holds another writer's bytes is a conflict, not an idempotent success", async () => {
    const { bucket, store } = await setup();
    const r = ref();
    const ours = patternBytes(1000, 'ours');
    await store.store({ ...r, body: archiveBody(r.key, ours).stream });
    // Another writer puts a version on top, keeping depot's metadata: the manifest still matches the task.
    const original = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: PREFIX + r.key }));
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: PREFIX + r.key, Body: patternBytes(1000, 'them!'), Metadata: original.Metadata }));
    await expect(store.store({ ...r, body: archiveBody(r.key, ours).stream, sha256: digestOf(ours).sha256 })).rejects.toMatchObject({ code: 'conflict' });
  });
});

describe('Object Lock, read back from the store', () => {
  const lockOf = async (bucket: string, key: string) => {
    const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { mode: head.ObjectLockMode, until: head.ObjectLockRetainUntilDate?.getTime() ?? 0, versionId: head.VersionId };
  };

  test.each([
    ['a small archive (one PutObject)', 1000, 'when_supported'],
    ['a multipart archive (the store ignores lock headers on CreateMultipartUpload)', 12 * MiB, 'when_supported'],
    ['a small archive with Content-MD5 (checksums: when_required)', 1000, 'when_required'],
    ['a multipart archive with Content-MD5 (checksums: when_required)', 12 * MiB, 'when_required'],
  ])('%s: archive and manifest locked as configured; the store refuses to delete them', async (_label, size, checksums) => {
    const { bucket, driver, store } = await setup({ settings: { objectLock: { mode: 'COMPLIANCE', days: 1 }, checksums } });
    const sent = recordRequests(driver.client);
    const r = ref();
    const before = Date.now();
    const bytes = patternBytes(size, 'locked');
    await store.store({ ...r, body: archiveBody(r.key, bytes).stream });
    expect(digestOf(await bytesAt(bucket, PREFIX + r.key))).toEqual(digestOf(bytes));
    // Every request that carries bytes has the one checksum Object Lock asks for (AWS refuses them without).
    const header = checksums === 'when_supported' ? 'x-amz-checksum-sha256' : 'content-md5';
    const carrying = sent.filter((q) => q.command === 'PutObjectCommand' || q.command === 'UploadPartCommand');
    expect(carrying.length).toBeGreaterThanOrEqual(2);
    for (const q of carrying) expect(Object.keys(q.headers).filter((h) => h.startsWith('x-amz-checksum-') || h === 'content-md5')).toEqual([header]);
    for (const key of [PREFIX + r.key, `${PREFIX}${r.key}.depot.json`]) {
      const lock = await lockOf(bucket, key);
      expect(lock.mode).toBe('COMPLIANCE');
      expect(lock.until).toBeGreaterThanOrEqual(before + DAY - 1000);
      await expect(raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: lock.versionId }))).rejects.toMatchObject({
        $metadata: { httpStatusCode: 403 },
      });
    }
    // depot refuses too, and says why.
    await expect(store.delete(r.key)).rejects.toMatchObject({ code: 'retention' });
  });

  test.each([
    ['a small archive', 1000],
    ['a multipart archive', 12 * MiB],
  ])("%s: a task's later retainUntil is the lock of archive and manifest, asked for from the first request", async (_label, size) => {
    const { bucket, driver, store } = await setup({ settings: { objectLock: { mode: 'GOVERNANCE', days: 1 } } });
    const sent = recordRequests(driver.client);
    const r = ref();
    const retainUntil = new Date(Date.now() + 400 * DAY).toISOString().replace(/\.\d+Z$/, 'Z');
    await store.store({ ...r, body: archiveBody(r.key, patternBytes(size, 'long')).stream, retainUntil });
    for (const key of [PREFIX + r.key, `${PREFIX}${r.key}.depot.json`]) {
      const lock = await lockOf(bucket, key);
      expect(lock.mode).toBe('GOVERNANCE');
      expect(new Date(lock.until).toISOString()).toBe(new Date(retainUntil).toISOString());
    }
    // Stores that honour lock headers get them on the request that creates the object; the manifest is
    // placed unlocked (it may have to be withdrawn) and locked once the archive is known to be depot's.
    const creating = sent.find((q) => q.command === (size > 5 * MiB ? 'CreateMultipartUploadCommand' : 'PutObjectCommand') && !q.path.endsWith('.depot.json'));
    expect(new Date(creating?.headers['x-amz-object-lock-retain-until-date'] ?? 0).toISOString()).toBe(new Date(retainUntil).toISOString());
    const manifestPut = sent.find((q) => q.command === 'PutObjectCommand' && q.path.endsWith('.depot.json'));
    expect(manifestPut?.headers['x-amz-object-lock-mode']).toBeUndefined();
    expect(sent.filter((q) => q.command === 'PutObjectRetentionCommand').map((q) => q.path.endsWith('.depot.json'))).toContain(true);
  });

  test('a driver called without the declared retainUntil still locks the archive until the manifest says', async () => {
    const { bucket, driver } = await setup({ settings: { objectLock: { mode: 'GOVERNANCE', days: 1 } } });
    const r = ref();
    const retainUntil = new Date(Date.now() + 400 * DAY).toISOString().replace(/\.\d+Z$/, 'Z');
    const outcome = await driver.store(toArchiveKey(r.key), archiveBody(r.key, patternBytes(12 * MiB, 'late'), { retainUntil }), new AbortController().signal);
    expect(outcome.status).toBe('created');
    expect(new Date((await lockOf(bucket, PREFIX + r.key)).until).toISOString()).toBe(new Date(retainUntil).toISOString());
  });

  test('a store interrupted between publishing and locking: its retry finds the archive and locks it', async () => {
    const { bucket, driver, store } = await setup({ settings: { objectLock: { mode: 'COMPLIANCE', days: 1 } } });
    injectFaults(
      driver.client,
      firstTimes(1, (req) => req.command === 'PutObjectRetentionCommand', { code: 'ServiceUnavailable', status: 503 }),
    );
    const r = ref();
    const bytes = patternBytes(12 * MiB, 'interrupted');
    await expect(store.store({ ...r, body: archiveBody(r.key, bytes).stream })).rejects.toMatchObject({ code: 'unavailable' });
    expect((await lockOf(bucket, PREFIX + r.key)).mode).toBeUndefined(); // published, not yet locked
    const again = await store.store({ ...r, body: archiveBody(r.key, bytes).stream });
    expect(again.created).toBe(false);
    for (const key of [PREFIX + r.key, `${PREFIX}${r.key}.depot.json`]) expect((await lockOf(bucket, key)).mode).toBe('COMPLIANCE');
  });

  test('a bucket without Object Lock asked for retention: misconfigured, its S3 code and status in the message, nothing left', async () => {
    const { bucket, store } = await setup({ objectLockBucket: false, settings: { objectLock: { mode: 'COMPLIANCE', days: 1 } } });
    const r = ref();
    const failure = await store.store({ ...r, body: archiveBody(r.key, patternBytes(1000, 'x')).stream }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(DepotError);
    expect(failure).toMatchObject({ code: 'misconfigured', retryable: false });
    expect((failure as DepotError).message).toContain('InvalidRequest, HTTP 400');
    expect(await exists(bucket, PREFIX + r.key)).toBe(false);
  });

  test('delete refused by the lock → retention; refused for want of permission → auth', async () => {
    const { driver, store } = await setup({ settings: { objectLock: { mode: 'COMPLIANCE', days: 1 } } });
    const r = ref();
    await store.store({ ...r, body: archiveBody(r.key, Buffer.from('locked')).stream });
    // The store's own refusal first, then one that is about permissions, not the lock.
    await expect(store.delete(r.key)).rejects.toMatchObject({ code: 'retention', retryable: false });
    const unlocked = ref();
    const plain = await setup();
    await plain.store.store({ ...unlocked, body: archiveBody(unlocked.key, Buffer.from('free')).stream });
    injectFaults(plain.driver.client, (req) =>
      req.command === 'DeleteObjectCommand' ? { code: 'AccessDenied', status: 403, message: 'Access Denied' } : undefined,
    );
    await expect(plain.store.delete(unlocked.key)).rejects.toMatchObject({ code: 'auth' });
    expect(await store.stat(r.key)).not.toBeNull();
    expect(driver.capabilities.retention).toBe(true);
  });
});

test('a declared size above one part but no bytes at all: the store takes the one empty part, and the archive is locked', async () => {
  const { bucket, driver } = await setup({ settings: { objectLock: { mode: 'GOVERNANCE', days: 1 } } });
  const r = ref();
  const outcome = await driver.store(toArchiveKey(r.key), archiveBody(r.key, Buffer.alloc(0), { declared: { size: 100 * MiB } }), new AbortController().signal);
  expect(outcome.status).toBe('created');
  expect(await bytesAt(bucket, PREFIX + r.key)).toEqual(Buffer.alloc(0));
  expect((await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: PREFIX + r.key }))).ObjectLockMode).toBe('GOVERNANCE');
});

describe('the connection check', () => {
  test.each([
    ['an Object Lock bucket (If-None-Match ignored)', true],
    ['an unversioned bucket (If-None-Match ignored on CompleteMultipartUpload)', false],
  ])('on %s: writeOnce best_effort, and no probe version left behind', async (_label, objectLockBucket) => {
    const { bucket, store } = await setup({ objectLockBucket });
    const result = await store.check();
    expect(result).toMatchObject({ ok: true, writeOnce: 'best_effort' });
    const left = await raw.send(new ListObjectVersionsCommand({ Bucket: bucket }));
    expect([...(left.Versions ?? []), ...(left.DeleteMarkers ?? [])]).toEqual([]);
  });
});
