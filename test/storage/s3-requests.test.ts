/**
 * What s3rver does not enforce — conditional writes, checksums, encryption,
 * storage class — checked on the exact requests the SDK sends (a middleware at
 * the last step before the wire records them). A second server answers
 * `If-None-Match: *` with 412 like AWS does, for the driver's paths that only
 * such a store reaches. Object Lock is tested on a real store that enforces
 * it, in s3-worm.test.ts: s3rver accepts lock headers and keeps no lock, which
 * the driver now notices (it reads every lock back).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { archiveKey, DepotError, Manifest, newTaskId, toArchiveKey } from '../../src/contract';
import { ArchiveStore } from '../../src/storage/archive-store';
import { S3Driver } from '../../src/storage/drivers/s3/driver';
import { silentLogger } from '../../src/support/logging';
import { S3Server, s3rverSettings, startS3Server, uniqueBucket } from '../helpers/s3-server';
import { digestOf, MiB, patternBytes } from '../helpers/streams';
import { archiveBody, commandTrail, firstTimes, injectFaults, recordRequests, SentRequest } from './s3-test-kit';

const logger = silentLogger();

let plain: S3Server;
let conditional: S3Server;
let raw: S3Client;
const drivers: S3Driver[] = [];

beforeAll(async () => {
  [plain, conditional] = await Promise.all([startS3Server(), startS3Server({ conditionalWrites: true })]);
  raw = plain.client();
});

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await Promise.all([plain?.destroy(), conditional?.destroy()]);
});

async function driverOn(server: S3Server, overrides: Record<string, unknown> = {}) {
  const bucket = uniqueBucket('requests');
  await server.createBucket(bucket);
  const driver = new S3Driver('worm', s3rverSettings(server, bucket, { prefix: 'p/', ...overrides }), logger);
  drivers.push(driver);
  return { driver, bucket, sent: recordRequests(driver.client), store: new ArchiveStore(driver, logger) };
}

function newKey(name = 'exam.zip'): string {
  return archiveKey(new Date(), newTaskId(), name);
}

const md5 = (bytes: Buffer) => createHash('md5').update(bytes).digest('base64');
const sha256 = (bytes: Buffer, encoding: 'hex' | 'base64') => createHash('sha256').update(bytes).digest(encoding);
/** The checksum headers of a request: x-amz-checksum-* and Content-MD5. */
/** UploadPart requests by part number (parts go up in parallel). */
const partsOf = (sent: SentRequest[]) =>
  sent.filter((r) => r.command === 'UploadPartCommand').sort((a, b) => Number(a.query.partNumber) - Number(b.query.partNumber));
const checksumHeaders = (r: SentRequest) => Object.keys(r.headers).filter((h) => h.startsWith('x-amz-checksum-') || h === 'content-md5');
const only = (sent: SentRequest[], command: string, sidecar?: boolean) =>
  sent.filter((r) => r.command === `${command}Command` && (sidecar === undefined || r.path.endsWith('.depot.json') === sidecar));
const one = (sent: SentRequest[], command: string, sidecar?: boolean): SentRequest => {
  const found = only(sent, command, sidecar);
  expect(found).toHaveLength(1);
  return found[0];
};
/** Where objects go: encryption and storage class (s3rver accepts and ignores both). */
const placement = {
  sse: 'aws:kms',
  kmsKeyId: 'arn:aws:kms:eu-central-1:111122223333:key/depot-test',
  storageClass: 'STANDARD_IA',
};

describe('a small archive (one PutObject)', () => {
  test('manifest first, then the object; both If-None-Match: * and SSE; storage class on the object only', async () => {
    const { sent, store } = await driverOn(plain, placement);
    const key = newKey('Prüfung 試験.zip');
    const bytes = patternBytes(100_000, 'small');
    await store.store({ key, taskId: key.split('/')[3], name: 'Prüfung 試験.zip', body: archiveBody(key, bytes).stream });

    const puts = only(sent, 'PutObject');
    expect(puts.map((r) => r.path.endsWith('.depot.json'))).toEqual([true, false]); // manifest, then archive
    const [sidecar, object] = puts;
    for (const r of puts) {
      expect(r.headers['if-none-match']).toBe('*');
      expect(r.headers['x-amz-server-side-encryption']).toBe('aws:kms');
      expect(r.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe(placement.kmsKeyId);
      // checksums: when_required without objectLock: no checksum header, only the signature's payload hash.
      expect(checksumHeaders(r)).toEqual([]);
    }
    // The object's payload hash is the archive's sha256 as the shared layer computed it.
    expect(object.headers['x-amz-content-sha256']).toBe(digestOf(bytes).sha256);
    // The key is looked at right before the object is written: a store that ignores If-None-Match would replace it.
    const trail = commandTrail(sent);
    expect(trail.slice(trail.indexOf('PutObject (sidecar)'))).toEqual(['PutObject (sidecar)', 'HeadObject', 'PutObject', 'HeadObject']);
    expect(object.headers['x-amz-storage-class']).toBe('STANDARD_IA');
    expect(sidecar.headers['x-amz-storage-class']).toBeUndefined(); // every stat reads it: never a cold class
    // Metadata is ASCII: the name percent-encoded; sha256 and size known, since the PUT follows the last byte.
    expect(object.headers['x-amz-meta-depot-name']).toBe(encodeURIComponent('Prüfung 試験.zip'));
    expect(object.headers['x-amz-meta-depot-sha256']).toBe(digestOf(bytes).sha256);
    expect(object.headers['x-amz-meta-depot-size']).toBe(String(bytes.length));
  });

  test('without objectLock, sse or storageClass: none of their headers', async () => {
    const { sent, store } = await driverOn(plain);
    const key = newKey();
    await store.store({ key, taskId: key.split('/')[3], name: 'exam.zip', body: archiveBody(key, patternBytes(10, 'x')).stream, retainUntil: '2099-01-01' });
    for (const r of only(sent, 'PutObject')) {
      expect(Object.keys(r.headers).filter((h) => /object-lock|server-side-encryption|storage-class/.test(h))).toEqual([]);
      expect(r.headers['if-none-match']).toBe('*');
    }
  });

  test.each([
    ['when_required', undefined, []],
    ['when_required', { mode: 'GOVERNANCE', days: 1 }, ['content-md5']],
    ['when_supported', undefined, ['x-amz-checksum-sha256']],
    ['when_supported', { mode: 'GOVERNANCE', days: 1 }, ['x-amz-checksum-sha256']],
  ])('checksums: %s, objectLock %j → %j on the object; the bytes arrive intact', async (checksums, objectLock, expected) => {
    const { driver, bucket, sent, store } = await driverOn(plain, { checksums, objectLock });
    const key = newKey();
    const bytes = patternBytes(200_000, 'checksums');
    const stored = store.store({ key, taskId: key.split('/')[3], name: 'exam.zip', body: archiveBody(key, bytes).stream });
    // s3rver keeps no lock, and the driver reads every lock back: with objectLock the store fails after writing.
    if (objectLock) await expect(stored).rejects.toMatchObject({ code: 'misconfigured' });
    else await stored;
    const object = one(sent, 'PutObject', false);
    expect(checksumHeaders(object)).toEqual(expected);
    if (expected.includes('content-md5')) expect(object.headers['content-md5']).toBe(md5(bytes));
    if (expected.includes('x-amz-checksum-sha256')) expect(object.headers['x-amz-checksum-sha256']).toBe(sha256(bytes, 'base64'));
    // One digest, the archive's own, signs the request and is its checksum.
    expect(object.headers['x-amz-content-sha256']).toBe(sha256(bytes, 'hex'));
    // The driver never streams a body (always a buffer), so no aws-chunked framing reaches the store.
    expect(object.headers['content-encoding'] ?? '').not.toContain('aws-chunked');
    const sidecar = one(sent, 'PutObject', true);
    expect(checksumHeaders(sidecar)).toEqual(expected);
    if (objectLock) return;
    const back = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `p/${key}` }));
    expect(digestOf(Buffer.from((await back.Body?.transformToByteArray()) ?? []))).toEqual(digestOf(bytes));
    expect(driver.capabilities.retention).toBe(false);
  });
});

describe('a large archive (multipart)', () => {
  const size = 12 * MiB; // three parts of 5 MiB
  const trailOf = (sent: SentRequest[]) => commandTrail(sent).filter((c) => !c.startsWith('Head') && !c.startsWith('ListMultipartUploads'));

  test('SSE and storage class at CreateMultipartUpload, each part signed by its sha256, manifest before Complete, If-None-Match on Complete', async () => {
    const { sent, store, driver } = await driverOn(plain, placement);
    expect(driver.capabilities.retention).toBe(false);
    const key = newKey();
    const bytes = patternBytes(size, 'large');
    await store.store({ key, taskId: key.split('/')[3], name: 'exam.zip', body: archiveBody(key, bytes).stream });

    expect(trailOf(sent)).toEqual([
      'GetObject (sidecar)', // the shared layer's stat
      'CreateMultipartUpload',
      'UploadPart',
      'UploadPart',
      'UploadPart',
      'GetObject (sidecar)', // the manifest step: nothing there yet
      'PutObject (sidecar)',
      'CompleteMultipartUpload',
    ]);
    const create = one(sent, 'CreateMultipartUpload');
    expect(create.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    expect(create.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe(placement.kmsKeyId);
    expect(create.headers['x-amz-storage-class']).toBe('STANDARD_IA');
    expect(create.headers['x-amz-meta-depot-task-id']).toBe(key.split('/')[3]);
    expect(create.headers['x-amz-meta-depot-sha256']).toBeUndefined(); // not known at the start
    const parts = partsOf(sent);
    expect(parts.map((p) => p.query.partNumber)).toEqual(['1', '2', '3']);
    for (const [i, part] of parts.entries()) {
      const chunk = bytes.subarray(i * 5 * MiB, (i + 1) * 5 * MiB);
      expect(part.headers['x-amz-content-sha256']).toBe(sha256(chunk, 'hex'));
      expect(part.bodyBytes).toBe(chunk.length);
      expect(checksumHeaders(part)).toEqual([]); // when_required without objectLock
    }
    expect(create.headers['x-amz-checksum-algorithm']).toBeUndefined();
    const complete = one(sent, 'CompleteMultipartUpload');
    expect(complete.headers['if-none-match']).toBe('*');
    expect(one(sent, 'PutObject', true).headers['if-none-match']).toBe('*');
    // Between the manifest and Complete, the key itself is looked at; after Complete, the object is checked to be depot's.
    const all = commandTrail(sent);
    expect(all.slice(all.indexOf('PutObject (sidecar)'))).toEqual(['PutObject (sidecar)', 'HeadObject', 'CompleteMultipartUpload', 'HeadObject']);
  });

  test('with the declared size: the part size is set at the start', async () => {
    const { driver, sent } = await driverOn(plain);
    const key = newKey();
    const bytes = patternBytes(23 * MiB, 'declared');
    // 110 GiB would need 11,264 parts of 10 MiB: the part size grows to 12 MiB (whole MiB).
    const declared = { size: 110 * 1024 * MiB };
    const outcome = await driver.store(toArchiveKey(key), archiveBody(key, bytes, { declared }), new AbortController().signal);
    expect(outcome.status).toBe('created');
    expect(only(sent, 'UploadPart').map((p) => p.headers['content-length'])).toEqual([String(12 * MiB), String(11 * MiB)]);
  });

  test.each([
    ['when_supported', undefined, 'x-amz-checksum-sha256'],
    ['when_required', { mode: 'GOVERNANCE', days: 1 }, 'content-md5'],
  ])('checksums: %s, objectLock %j → %s on every part, from the digests taken while filling it', async (checksums, objectLock, header) => {
    const { sent, store } = await driverOn(plain, { checksums, objectLock });
    const key = newKey();
    const bytes = patternBytes(size, 'parts');
    const stored = store.store({ key, taskId: key.split('/')[3], name: 'exam.zip', body: archiveBody(key, bytes).stream });
    if (objectLock) await expect(stored).rejects.toMatchObject({ code: 'misconfigured' });
    else await stored;
    const create = one(sent, 'CreateMultipartUpload');
    // Parts with x-amz-checksum-sha256 need an upload created for that algorithm.
    expect(create.headers['x-amz-checksum-algorithm']).toBe(header === 'x-amz-checksum-sha256' ? 'SHA256' : undefined);
    const parts = partsOf(sent);
    expect(parts).toHaveLength(3);
    for (const [i, part] of parts.entries()) {
      const chunk = bytes.subarray(i * 5 * MiB, (i + 1) * 5 * MiB);
      expect(checksumHeaders(part)).toEqual([header]);
      expect(part.headers[header]).toBe(header === 'content-md5' ? md5(chunk) : sha256(chunk, 'base64'));
      expect(part.headers['x-amz-content-sha256']).toBe(sha256(chunk, 'hex'));
    }
  });

  test.each([
    ['no bytes at all', 0],
    ['less than a part', 1000],
  ])('a declared size above one part but %s: one part, and the object holds exactly the bytes', async (_label, length) => {
    const { driver, bucket, sent } = await driverOn(plain);
    const key = newKey();
    const bytes = patternBytes(length, 'shorter');
    const outcome = await driver.store(toArchiveKey(key), archiveBody(key, bytes, { declared: { size: 100 * MiB } }), new AbortController().signal);
    expect(outcome.status).toBe('created');
    expect(only(sent, 'UploadPart').map((p) => p.headers['content-length'])).toEqual([String(length)]);
    const back = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `p/${key}` }));
    expect(digestOf(Buffer.from((await back.Body?.transformToByteArray()) ?? []))).toEqual(digestOf(bytes));
  });

  test('a body that fails its check at the end never reaches Complete; the upload is aborted', async () => {
    const { driver, bucket, sent, store } = await driverOn(plain, placement);
    const key = newKey();
    const bytes = patternBytes(size, 'bad');
    const wrong = digestOf(patternBytes(size, 'other')).sha256;
    await expect(store.store({ key, taskId: key.split('/')[3], name: 'exam.zip', body: archiveBody(key, bytes).stream, sha256: wrong })).rejects.toMatchObject({
      code: 'integrity',
    });
    const trail = trailOf(sent);
    expect(trail).toContain('CreateMultipartUpload');
    expect(trail[trail.length - 1]).toBe('AbortMultipartUpload');
    expect(trail.filter((c) => c === 'CompleteMultipartUpload' || c === 'PutObject (sidecar)' || c === 'PutObject')).toEqual([]);
    const abort = one(sent, 'AbortMultipartUpload');
    expect(abort.query.uploadId).toBe(only(sent, 'UploadPart')[0].query.uploadId);
    expect((await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
    expect(await driver.stat(toArchiveKey(key))).toBeNull();
  });
});

describe('the connection check', () => {
  test('writes its probes without Object Lock or storage class, under the check directory, and deletes them', async () => {
    const { sent, store } = await driverOn(plain, { ...placement, objectLock: { mode: 'GOVERNANCE', days: 30 } });
    expect((await store.check()).ok).toBe(true);
    const probe = only(sent, 'PutObject')[0];
    expect(probe.path).toMatch(/\/p\/\.depot-check\/probe-/);
    expect(probe.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    for (const put of only(sent, 'PutObject')) {
      expect(put.path).toMatch(/\/p\/\.depot-check\/probe-/);
      expect(Object.keys(put.headers).filter((h) => /object-lock|storage-class/.test(h))).toEqual([]);
      expect(put.headers['content-md5']).toBeDefined();
    }
    const written = new Set([...only(sent, 'PutObject'), ...only(sent, 'CompleteMultipartUpload')].map((r) => r.path));
    expect(new Set(only(sent, 'DeleteObject').map((r) => r.path))).toEqual(written);
  });

  test.each([
    ['a store that refuses overwrites (412 on PutObject and on CompleteMultipartUpload)', true, 'enforced'],
    ['a store that overwrites despite If-None-Match', false, 'best_effort'],
  ])('on %s: writeOnce %s', async (_label, enforcing, writeOnce) => {
    const { store } = await driverOn(enforcing ? conditional : plain);
    expect(await store.check()).toMatchObject({ ok: true, writeOnce });
  });
});

describe('a store that enforces If-None-Match (412), when the driver read the key as free', () => {
  // The driver's own reads before writing are made to miss, as in a race with another worker.
  const staleRead = (times: number, command: string, suffix = '') =>
    firstTimes(times, (r) => r.command === `${command}Command` && (r.key ?? '').endsWith(suffix), { code: 'NoSuchKey', status: 404 });

  async function storedOnce(bytes: Buffer): Promise<{ driver: S3Driver; bucket: string; sent: SentRequest[]; key: string; first: Manifest }> {
    const { driver, bucket, sent } = await driverOn(conditional);
    const key = newKey();
    const outcome = await driver.store(toArchiveKey(key), archiveBody(key, bytes), new AbortController().signal);
    if (outcome.status !== 'created') throw new Error(`the first store found ${key} taken`);
    sent.length = 0;
    return { driver, bucket, sent, key, first: outcome.manifest };
  }
  const inOrder =
    (...deciders: Array<ReturnType<typeof staleRead>>) =>
    (r: { command: string; key?: string }) =>
      deciders.reduce<ReturnType<ReturnType<typeof staleRead>>>((found, decide) => found ?? decide(r), undefined);

  test('manifest PUT answered 412 with other bytes there: exists, nothing replaced', async () => {
    const original = patternBytes(1000, 'original');
    const { driver, sent, key, first } = await storedOnce(original);
    injectFaults(driver.client, staleRead(1, 'GetObject', '.depot.json'));
    const outcome = await driver.store(toArchiveKey(key), archiveBody(key, patternBytes(1000, 'other')), new AbortController().signal);
    expect(outcome).toEqual({ status: 'exists', existing: first });
    expect(sent.filter((r) => r.command === 'PutObjectCommand').map((r) => r.path.endsWith('.depot.json'))).toEqual([true]); // only the refused manifest PUT
    const { stream } = await new ArchiveStore(driver, logger).retrieve(key);
    expect(digestOf(Buffer.concat(await stream.toArray()))).toEqual(digestOf(original));
  });

  test('object PUT answered 412 (same bytes, an earlier attempt got there): exists', async () => {
    const bytes = patternBytes(1000, 'same');
    const { driver, sent, key, first } = await storedOnce(bytes);
    injectFaults(driver.client, inOrder(staleRead(1, 'GetObject', '.depot.json'), staleRead(1, 'HeadObject')));
    const outcome = await driver.store(toArchiveKey(key), archiveBody(key, bytes), new AbortController().signal);
    expect(outcome).toEqual({ status: 'exists', existing: first });
    expect(sent.filter((r) => r.command === 'PutObjectCommand')).toHaveLength(2); // manifest 412, object 412
  });

  test('CompleteMultipartUpload answered 412: exists, and the upload is aborted', async () => {
    const bytes = patternBytes(12 * MiB, 'same large');
    const { driver, bucket, sent, key, first } = await storedOnce(bytes);
    injectFaults(driver.client, inOrder(staleRead(1, 'GetObject', '.depot.json'), staleRead(1, 'HeadObject')));
    const outcome = await driver.store(toArchiveKey(key), archiveBody(key, bytes), new AbortController().signal);
    expect(outcome).toEqual({ status: 'exists', existing: first });
    const trail = commandTrail(sent);
    // Decided by the object under the key (written by this task?), not by the manifest.
    expect(trail.slice(trail.indexOf('CompleteMultipartUpload'))).toEqual(['CompleteMultipartUpload', 'AbortMultipartUpload', 'HeadObject']);
    expect((await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
  });
});

test('a second store of one key in the same process is refused while the first runs', async () => {
  const { driver } = await driverOn(plain);
  const key = newKey();
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  async function* slow() {
    yield patternBytes(6 * MiB, 'a');
    await held;
    yield patternBytes(MiB, 'b');
  }
  const first = driver.store(toArchiveKey(key), archiveBody(key, Readable.from(slow())), new AbortController().signal);
  await new Promise((r) => setTimeout(r, 300));
  const second = driver.store(toArchiveKey(key), archiveBody(key, patternBytes(7 * MiB, 'c')), new AbortController().signal);
  await expect(second).rejects.toBeInstanceOf(DepotError);
  await expect(second).rejects.toMatchObject({ code: 'unavailable' });
  release();
  expect((await first).status).toBe('created');
});

describe('a local source file (storeFile)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'depot-s3-file-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A body that fails the test if anything reads it: storeFile must read the file instead. */
  function unreadBody(): { body: Readable; read: () => boolean } {
    let read = false;
    const body = new Readable({
      read() {
        read = true;
        this.push(null);
      },
    });
    return { body, read: () => read };
  }

  async function fileOf(bytes: Buffer, name: string) {
    const at = path.join(dir, name);
    await writeFile(at, bytes);
    return { path: at, size: bytes.length, dev: (await stat(at)).dev };
  }

  test('above one part: the parts come from the file, each signed by its sha256; the manifest has the sha256 of the bytes read', async () => {
    const { bucket, sent, store } = await driverOn(plain);
    const key = newKey();
    const bytes = patternBytes(12 * MiB + 3, 'file');
    const { body, read } = unreadBody();
    const stored = await store.store({ key, taskId: key.split('/')[3], name: 'exam.zip', body, file: await fileOf(bytes, 'a.bin'), sourceSize: bytes.length });
    expect(read()).toBe(false);
    expect(stored.manifest).toMatchObject({ sha256: digestOf(bytes).sha256, size: bytes.length });
    const parts = partsOf(sent);
    expect(parts.map((p) => p.bodyBytes)).toEqual([5 * MiB, 5 * MiB, 2 * MiB + 3]);
    for (const [i, part] of parts.entries()) expect(part.headers['x-amz-content-sha256']).toBe(sha256(bytes.subarray(i * 5 * MiB, (i + 1) * 5 * MiB), 'hex'));
    const back = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `p/${key}` }));
    expect(digestOf(Buffer.from((await back.Body?.transformToByteArray()) ?? []))).toEqual(digestOf(bytes));
  });

  test('bytes that are not what the task says: integrity, nothing published, the upload aborted', async () => {
    const { bucket, driver, sent, store } = await driverOn(plain);
    const key = newKey();
    const bytes = patternBytes(12 * MiB, 'file bad');
    const { body } = unreadBody();
    const wrong = digestOf(patternBytes(12 * MiB, 'other')).sha256;
    await expect(
      store.store({ key, taskId: key.split('/')[3], name: 'exam.zip', body, sha256: wrong, file: await fileOf(bytes, 'b.bin'), sourceSize: bytes.length }),
    ).rejects.toMatchObject({ code: 'integrity' });
    const trail = commandTrail(sent);
    expect(trail.filter((c) => c === 'CompleteMultipartUpload' || c.startsWith('PutObject'))).toEqual([]);
    expect(trail[trail.length - 1]).toBe('AbortMultipartUpload');
    expect((await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
    expect(await driver.stat(toArchiveKey(key))).toBeNull();
  });

  test('aborted while its parts go up: unavailable, the file is read no further, the upload is aborted', async () => {
    const { bucket, driver, sent, store } = await driverOn(plain);
    const key = newKey();
    const bytes = patternBytes(60 * MiB, 'file aborted');
    const controller = new AbortController();
    injectFaults(driver.client, (r) => {
      if (r.command === 'UploadPartCommand') controller.abort();
      return undefined;
    });
    const { body } = unreadBody();
    await expect(
      store.store({
        key,
        taskId: key.split('/')[3],
        name: 'exam.zip',
        body,
        file: await fileOf(bytes, 'd.bin'),
        sourceSize: bytes.length,
        signal: controller.signal,
      }),
    ).rejects.toMatchObject({ code: 'unavailable' });
    expect(only(sent, 'UploadPart').length).toBeLessThan(12);
    expect(commandTrail(sent).filter((c) => c === 'CompleteMultipartUpload' || c.startsWith('PutObject'))).toEqual([]);
    expect((await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
    expect(await driver.stat(toArchiveKey(key))).toBeNull();
  });

  test('up to one part: left to the stream, one PutObject', async () => {
    const { sent, store } = await driverOn(plain);
    const key = newKey();
    const bytes = patternBytes(1000, 'small file');
    const stored = await store.store({
      key,
      taskId: key.split('/')[3],
      name: 'exam.zip',
      body: Readable.from([bytes]),
      file: await fileOf(bytes, 'c.bin'),
      sourceSize: bytes.length,
    });
    expect(stored.manifest.sha256).toBe(digestOf(bytes).sha256);
    expect(only(sent, 'PutObject', false)).toHaveLength(1);
    expect(only(sent, 'UploadPart')).toHaveLength(0);
  });
});
