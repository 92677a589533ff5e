/**
 * S3 driver behaviour beyond the conformance suite, on s3rver: the multipart
 * failure paths (the suite's failing stores are all small), the start-up sweep
 * of stale uploads, listing among foreign objects, space against a quota,
 * and a check against a bucket with default retention.
 */
import { utimes } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { archiveKey, DepotError, newTaskId } from '../../src/contract';
import { ArchiveStore } from '../../src/storage/archive-store';
import { S3Driver } from '../../src/storage/drivers/s3/driver';
import { silentLogger } from '../../src/support/logging';
import { S3Server, s3rverSettings, startS3Server, uniqueBucket } from '../helpers/s3-server';
import { delay, KiB, MiB, patternBytes, patternSource } from '../helpers/streams';
import { firstTimes, injectFaults, recordRequests } from './s3-test-kit';

const logger = silentLogger();
const PREFIX = 'p/';
let server: S3Server;
let raw: S3Client;
const drivers: S3Driver[] = [];

beforeAll(async () => {
  server = await startS3Server();
  raw = server.client();
});

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await server?.destroy();
});

async function setup(overrides: Record<string, unknown> = {}) {
  const bucket = uniqueBucket('driver');
  await server.createBucket(bucket);
  const driver = new S3Driver('worm', s3rverSettings(server, bucket, { prefix: PREFIX, ...overrides }), logger);
  drivers.push(driver);
  return { bucket, driver, store: new ArchiveStore(driver, logger) };
}

function ref(name = 'exam.zip') {
  const taskId = newTaskId();
  return { key: archiveKey(new Date(), taskId, name), taskId, name };
}

async function bucketKeys(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of paginateListObjectsV2({ client: raw }, { Bucket: bucket }))
    keys.push(...(page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : [])));
  return keys.sort();
}

async function uploadsIn(bucket: string): Promise<string[]> {
  return ((await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).map((u) => u.Key ?? '');
}

describe('multipart stores that fail leave nothing, not even parts', () => {
  test('source failing after two parts', async () => {
    const { bucket, store } = await setup();
    const r = ref();
    const source = patternSource(20 * MiB, 'fails', { failAfter: 11 * MiB });
    await expect(store.store({ ...r, body: source.stream })).rejects.toBeInstanceOf(DepotError);
    expect(await bucketKeys(bucket)).toEqual([]);
    expect(await uploadsIn(bucket)).toEqual([]);
  });

  test('aborted after the first parts went up', async () => {
    const { bucket, driver, store } = await setup();
    const sent = recordRequests(driver.client);
    const controller = new AbortController();
    const r = ref();
    const source = patternSource(64 * MiB, 'aborted', {
      afterChunk: async (produced) => {
        if (produced === 12 * MiB) setImmediate(() => controller.abort());
        await delay(1);
      },
    });
    await expect(store.store({ ...r, body: source.stream, signal: controller.signal })).rejects.toMatchObject({ code: 'unavailable' });
    expect(sent.some((s) => s.command === 'UploadPartCommand')).toBe(true);
    expect(source.sent().size).toBeLessThan(64 * MiB);
    expect(await bucketKeys(bucket)).toEqual([]);
    expect(await uploadsIn(bucket)).toEqual([]);
  });

  test('a part refused for good stops the upload early (the rest of the source is not read)', async () => {
    const { bucket, driver, store } = await setup();
    injectFaults(
      driver.client,
      firstTimes(1, (r) => r.command === 'UploadPartCommand', { code: 'InternalError', status: 500 }),
    );
    const r = ref();
    const source = patternSource(200 * MiB, 'part fails');
    await expect(store.store({ ...r, body: source.stream })).rejects.toMatchObject({ code: 'unavailable', retryable: true });
    expect(source.sent().size).toBeLessThan(100 * MiB);
    expect(await bucketKeys(bucket)).toEqual([]);
    expect(await uploadsIn(bucket)).toEqual([]);
  });
});

describe('start-up sweep of stale multipart uploads', () => {
  async function startUpload(bucket: string, key: string, ageHours: number): Promise<void> {
    const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const at = new Date(Date.now() - ageHours * 60 * 60 * 1000);
    await utimes(path.join(server.dataDir, bucket, '._S3rver_uploads', String(UploadId)), at, at);
  }

  test("aborts depot's uploads older than a day under the prefix; keeps young ones and other software's", async () => {
    const { bucket, driver } = await setup();
    const stale = PREFIX + ref().key;
    const young = PREFIX + ref().key; // a live worker's, perhaps
    const foreign = `${PREFIX}not-an-archive-key.bin`;
    const elsewhere = `elsewhere/${ref().key}`;
    await startUpload(bucket, stale, 30);
    await startUpload(bucket, young, 2);
    await startUpload(bucket, foreign, 30);
    await startUpload(bucket, elsewhere, 30);
    expect(await driver.abortStaleUploads()).toBe(1);
    expect((await uploadsIn(bucket)).sort()).toEqual([young, foreign, elsewhere].sort());
  });

  test('runs by itself on the first store, in the background; close() waits for it', async () => {
    const { bucket, driver, store } = await setup();
    const stale = PREFIX + ref().key;
    await startUpload(bucket, stale, 48);
    await store.store({ ...ref(), body: Readable.from([Buffer.from('x')]) });
    await driver.close();
    expect(await uploadsIn(bucket)).toEqual([]);
  });
});

describe('list', () => {
  test('only archives with their manifests; foreign objects, probes and sidecars are skipped', async () => {
    const { bucket, store } = await setup();
    const a = ref('notes.json');
    const b = ref('b.zip');
    const stored = [
      (await store.store({ ...a, body: Readable.from([Buffer.from('a')]) })).manifest,
      (await store.store({ ...b, body: Readable.from([Buffer.from('b')]) })).manifest,
    ];
    for (const Key of [`${PREFIX}readme.txt`, `${PREFIX}${ref('no-manifest.zip').key}`, `${PREFIX}.depot-check/probe-1`, `outside/${ref().key}`]) {
      await raw.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'foreign' }));
    }
    const listed = [];
    for await (const m of store.list('')) listed.push(m);
    expect(listed.sort((x, y) => x.key.localeCompare(y.key))).toEqual(stored.sort((x, y) => x.key.localeCompare(y.key)));
  });
});

describe('stat and retrieve check the object against its manifest', () => {
  test("an object without its manifest is another writer's (conflict); a manifest without its object is invisible", async () => {
    const { bucket, store } = await setup();
    const orphan = ref();
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: PREFIX + orphan.key, Body: 'who wrote this?' }));
    await expect(store.stat(orphan.key)).rejects.toMatchObject({ code: 'conflict' });
    await expect(store.retrieve(orphan.key)).rejects.toMatchObject({ code: 'conflict' });

    const half = ref();
    await store.store({ ...half, body: Readable.from([Buffer.from('half')]) });
    await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: PREFIX + half.key }));
    expect(await store.stat(half.key)).toBeNull();
    await expect(store.retrieve(half.key)).rejects.toMatchObject({ code: 'not_found' });
  });

  test('an object replaced by one of another size is integrity before any byte is read', async () => {
    const { bucket, store } = await setup();
    const r = ref();
    await store.store({ ...r, body: Readable.from([patternBytes(4 * KiB, 'x')]) });
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: PREFIX + r.key, Body: patternBytes(5 * KiB, 'y') }));
    await expect(store.stat(r.key)).rejects.toMatchObject({ code: 'integrity' });
    await expect(store.retrieve(r.key)).rejects.toMatchObject({ code: 'integrity' });
  });
});

describe('Object Lock refusals (the lock itself: s3-worm.test.ts, on a store that enforces it)', () => {
  test('a bucket whose default retention locks the probe fails the check and says why', async () => {
    const { bucket, driver, store } = await setup();
    injectFaults(driver.client, (req) => (req.command === 'DeleteObjectCommand' ? { code: 'AccessDenied', status: 403 } : undefined));
    const result = await store.check();
    expect(result.ok).toBe(false);
    expect(result.error?.code).toBe('retention');
    expect(result.error?.message).toMatch(/default Object Lock retention/);
    // (s3rver itself has no Object Lock, so here the probe could be removed by hand.)
    expect((await bucketKeys(bucket)).every((k) => k.startsWith(`${PREFIX}.depot-check/probe-`))).toBe(true);
  });
});

describe('space', () => {
  test('without quotaBytes: nothing to report', async () => {
    const { driver, store } = await setup();
    expect(driver.capabilities.space).toBe(false);
    expect(await store.space()).toEqual({});
  });

  test('with quotaBytes: the objects under the prefix count against it, recounted at most once a minute', async () => {
    const { bucket, driver, store } = await setup({ quotaBytes: 10 * MiB });
    expect(driver.capabilities.space).toBe(true);
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'outside/x', Body: patternBytes(MiB, 'outside') }));
    const first = await store.store({ ...ref(), body: Readable.from([patternBytes(MiB, 'one')]) });
    const space = await store.space();
    const manifestBytes = space.usedBytes! - first.manifest.size;
    expect(manifestBytes).toBeGreaterThan(0);
    expect(manifestBytes).toBeLessThan(2 * KiB);
    expect(space).toEqual({ totalBytes: 10 * MiB, usedBytes: MiB + manifestBytes, freeBytes: 9 * MiB - manifestBytes });
    await store.store({ ...ref(), body: Readable.from([patternBytes(MiB, 'two')]) });
    expect(await store.space()).toEqual(space); // cached
  });
});
