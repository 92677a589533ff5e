import path from 'node:path';
import { validateConfig } from '../../src/config/load';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { Redactor } from '../../src/support/redaction';
import { archiveKeysBelow, cleanupAll, InProcessWorker, queueClient, QueueClient, settle, startInProcessWorker, TempDirs } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { S3RVER_CREDENTIALS, S3Server, startS3Server, uniqueBucket } from '../helpers/s3-server';

/**
 * CONTRACT §13: `misconfigured` — the backend refuses the request as
 * configured and will keep refusing — is neither retried nor failed over. An
 * archive meant for a WORM store must not land silently on a fallback without
 * WORM because the WORM store was set up wrong: here an s3 driver asks for
 * Object Lock on a store that keeps none (s3rver accepts the headers and
 * locks nothing, which depot notices when it reads the lock back).
 */
const temp = new TempDirs();
let redis: RedisServer;
let s3: S3Server;
let worker: InProcessWorker | undefined;
let client: QueueClient;
let fallbackRoot: string;

beforeAll(async () => {
  [redis, s3] = await Promise.all([startRedis(), startS3Server()]);
  const bucket = uniqueBucket('misconfigured');
  await s3.createBucket(bucket);
  const work = await temp.make();
  fallbackRoot = path.join(work, 'fallback');
  const config = validateConfig(
    {
      redis: { url: redis.url },
      queue: { attempts: 3, backoffMs: 50 },
      defaultDriver: 'worm',
      drivers: {
        worm: {
          type: 's3',
          bucket,
          region: 'us-east-1',
          endpoint: s3.endpoint,
          forcePathStyle: true,
          checksums: 'when_required',
          accessKeyId: '${S3_KEY}',
          secretAccessKey: '${S3_SECRET}',
          objectLock: { mode: 'COMPLIANCE', days: 1 },
        },
        fallback: { type: 'filesystem', root: fallbackRoot },
      },
      failover: { worm: ['fallback'] },
    },
    {
      env: { S3_KEY: S3RVER_CREDENTIALS.accessKeyId, S3_SECRET: S3RVER_CREDENTIALS.secretAccessKey },
      source: 'misconfigured-test',
      baseDir: work,
      factory: defaultDriverFactory(),
      redactor: new Redactor(),
    },
  );
  worker = await startInProcessWorker(config);
  client = await queueClient(redis.port);
});

afterAll(async () => {
  await cleanupAll(
    () => client?.close(),
    () => worker?.close(),
    () => redis?.stop(),
    () => s3?.destroy(),
    () => temp.cleanup(),
  );
});

test('a WORM store that will not keep its lock fails the task as misconfigured: tried once, no failover', async () => {
  const job = await client.queue.add('store', { source: { base64: Buffer.from('exam records').toString('base64') }, name: 'exam.zip' });
  const settled = await settle(client, job);
  expect(settled.state).toBe('failed');
  // s3rver answers depot's PutObjectRetention (sent when the lock read back is missing) with 405.
  expect(settled.failedReason).toMatch(/^misconfigured: worm: .*MethodNotAllowed, HTTP 405/);
  // Not retried on the driver (no "retrying" line), and nothing reached the fallback.
  expect(worker?.logs.filter((line) => line.includes('retrying'))).toEqual([]);
  expect(worker?.logs.filter((line) => line.includes('failing over'))).toEqual([]);
  expect(await archiveKeysBelow(fallbackRoot)).toEqual([]);
});
