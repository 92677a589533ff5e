/**
 * Failures as the contract names them: refused credentials (`auth`, never
 * echoing them), a store that is down, slow or erring (`unavailable`, retried),
 * a full one (`no_space`), and a server restarted under a running driver.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { archiveKey, newTaskId } from '../../src/contract';
import { ArchiveStore } from '../../src/storage/archive-store';
import { s3SettingsSchema } from '../../src/storage/drivers/s3';
import { S3Driver } from '../../src/storage/drivers/s3/driver';
import { silentLogger } from '../../src/support/logging';
import { S3Server, s3rverSettings, startS3Server, uniqueBucket } from '../helpers/s3-server';
import { digestOf, patternBytes } from '../helpers/streams';
import { failure } from '../helpers/depot-failure';

const logger = silentLogger();
let server: S3Server;
const drivers: S3Driver[] = [];

beforeAll(async () => {
  server = await startS3Server();
});

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await server?.destroy();
});

function ref(name = 'exam.zip') {
  const taskId = newTaskId();
  return { key: archiveKey(new Date(), taskId, name), taskId, name };
}

function track(driver: S3Driver): ArchiveStore {
  drivers.push(driver);
  return new ArchiveStore(driver, logger);
}

describe('refused credentials → auth', () => {
  test('s3rver refuses an access key id it does not know (for real); the message holds neither key', async () => {
    const bucket = uniqueBucket('auth');
    await server.createBucket(bucket);
    const accessKeyId = 'AKIAWRONGKEYID123456';
    const secretAccessKey = 'wrong/secret+key/0123456789abcdefghijklmn';
    const store = track(new S3Driver('worm', s3rverSettings(server, bucket, { accessKeyId, secretAccessKey }), logger));
    const r = ref();
    for (const operation of [() => store.store({ ...r, body: Readable.from([Buffer.from('x')]) }), () => store.stat(r.key), () => store.retrieve(r.key)]) {
      const error = await failure(operation());
      expect(error.code).toBe('auth');
      expect(error.retryable).toBe(false);
      expect(error.message).toMatch(/InvalidAccessKeyId|HTTP 403/); // a HEAD's answer has no body to name the code
      expect(error.message).not.toContain(accessKeyId);
      expect(error.message).not.toContain(secretAccessKey);
      expect(JSON.stringify(error)).not.toContain(accessKeyId);
    }
    const checked = await store.check();
    expect(checked).toMatchObject({ ok: false, error: { code: 'auth' } });
  });

  test('no credentials at all (empty default chain) → auth', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
      AWS_CONFIG_FILE: '/nonexistent/config',
    });
    for (const name of [
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_SESSION_TOKEN',
      'AWS_PROFILE',
      'AWS_CONTAINER_CREDENTIALS_FULL_URI',
      'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
      'AWS_WEB_IDENTITY_TOKEN_FILE',
    ]) {
      delete process.env[name];
    }
    try {
      const settings = s3SettingsSchema.parse({
        type: 's3',
        bucket: 'anything',
        region: 'us-east-1',
        endpoint: server.endpoint,
        forcePathStyle: true,
        timeoutMs: 2000,
      });
      const store = track(new S3Driver('worm', settings, logger));
      expect((await failure(store.stat(ref().key))).code).toBe('auth');
    } finally {
      process.env = saved;
    }
  });
});

/** A local HTTP server answering like an S3 store would, one scripted answer per request. */
async function fakeStore(
  answer: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ endpoint: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const http: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    answer(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

function s3Error(status: number, code: string, message: string) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(status, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>r1</RequestId></Error>`);
  };
}

describe('what the store answers, mapped to the contract', () => {
  test.each([
    [403, 'SignatureDoesNotMatch', 'auth', 'The request signature we calculated does not match the signature you provided.'],
    [403, 'InvalidAccessKeyId', 'auth', 'The AWS Access Key Id you provided does not exist in our records.'],
    [403, 'AccessDenied', 'auth', 'Access Denied'],
    [400, 'EntityTooLarge', 'no_space', 'Your proposed upload exceeds the maximum allowed size'],
    [403, 'QuotaExceeded', 'no_space', 'Bucket quota exceeded'],
    [503, 'SlowDown', 'unavailable', 'Please reduce your request rate.'],
    [500, 'InternalError', 'unavailable', 'We encountered an internal error. Please try again.'],
    [404, 'NoSuchBucket', 'unavailable', 'The specified bucket does not exist'],
  ])('HTTP %i %s → %s', async (status, code, expected, message) => {
    const fake = await fakeStore(s3Error(status, code, message));
    try {
      const settings = s3SettingsSchema.parse({
        type: 's3',
        bucket: 'archives',
        region: 'us-east-1',
        endpoint: fake.endpoint,
        forcePathStyle: true,
        accessKeyId: 'AKIAEXAMPLEKEY',
        secretAccessKey: 'example-secret',
      });
      const store = track(new S3Driver('worm', settings, logger));
      const result = await store.check();
      expect(result.ok).toBe(false);
      expect(result.error?.code).toBe(expected);
      expect(result.error?.message).toContain(code);
      expect(result.error?.message).not.toContain('AKIAEXAMPLEKEY');
      // The SDK retries what is worth retrying (3 attempts); a refusal is final at once.
      expect(fake.requests.filter((r) => r.startsWith('PUT'))).toHaveLength(expected === 'unavailable' && status >= 500 ? 3 : 1);
    } finally {
      await fake.close();
    }
  });

  test('a store that accepts the connection and never answers: unavailable after timeoutMs (per attempt)', async () => {
    const fake = await fakeStore(() => undefined);
    try {
      const settings = s3SettingsSchema.parse({
        type: 's3',
        bucket: 'archives',
        region: 'us-east-1',
        endpoint: fake.endpoint,
        forcePathStyle: true,
        accessKeyId: 'k',
        secretAccessKey: 's',
        timeoutMs: 300,
      });
      const store = track(new S3Driver('worm', settings, logger));
      const started = Date.now();
      const error = await failure(store.stat(ref().key));
      expect(error.code).toBe('unavailable');
      expect(error.retryable).toBe(true);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await fake.close();
    }
  });
});

describe('server down and back', () => {
  test('stopped → unavailable (retried); restarted under the same driver → stores succeed and earlier archives read back', async () => {
    const bucket = uniqueBucket('outage');
    await server.createBucket(bucket);
    const store = track(new S3Driver('worm', s3rverSettings(server, bucket, { timeoutMs: 2000 }), logger));
    const before = ref('before.zip');
    const beforeBytes = patternBytes(50_000, 'before');
    await store.store({ ...before, body: Readable.from([beforeBytes]) });

    await server.stop();
    const during = ref('during.zip');
    for (const operation of [
      () => store.store({ ...during, body: Readable.from([Buffer.from('during')]) }),
      () => store.stat(before.key),
      () => store.retrieve(before.key),
    ]) {
      const error = await failure(operation());
      expect(error.code).toBe('unavailable');
      expect(error.retryable).toBe(true);
    }
    expect((await store.check()).error?.code).toBe('unavailable');

    await server.start(); // same port, same data directory
    const duringBytes = patternBytes(70_000, 'during');
    expect((await store.store({ ...during, body: Readable.from([duringBytes]) })).created).toBe(true);
    for (const [key, bytes] of [
      [before.key, beforeBytes],
      [during.key, duringBytes],
    ] as const) {
      const { stream } = await store.retrieve(key);
      expect(digestOf(Buffer.concat(await stream.toArray()))).toEqual(digestOf(bytes));
    }
  });
});
