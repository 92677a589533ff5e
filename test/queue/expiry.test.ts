import path from 'node:path';
import { Queue } from 'bullmq';
import type { StoreResult } from '../../src/contract';
import { createRedis } from '../../src/queue/connection';
import { EXPIRY_SCHEDULER_ID, scheduleExpiry } from '../../src/queue/expiry-schedule';
import {
  archiveKeysBelow,
  cleanupAll,
  InProcessWorker,
  queueClient,
  QueueClient,
  settle,
  startInProcessWorker,
  startTestRedis,
  TempDirs,
  TestRedis,
  testConfig,
} from '../helpers/queue-harness';

/**
 * Automatic deletion (GDPR): archives past `deleteAfter` go, unless retention
 * still holds; the run is a scheduled `expire` job that every worker upserts.
 * On a redis-server, and on a Redis Cluster (test/redis/cluster-expiry.test.ts
 * runs this file there).
 */
const temp = new TempDirs();
let redis: TestRedis;
let worker: InProcessWorker | undefined;
let client: QueueClient;
let root: string;

beforeAll(async () => {
  redis = await startTestRedis();
  root = path.join(await temp.make(), 'archive');
  const config = testConfig(
    { redis: redis.config, queue: { prefix: redis.prefix, attempts: 1, backoffMs: 50 }, drivers: { local: { type: 'filesystem', root } } },
    root,
  );
  worker = await startInProcessWorker(config);
  client = await queueClient(redis);
});

afterAll(async () => {
  await cleanupAll(
    () => client?.close(),
    () => worker?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

async function store(name: string, extra: Record<string, string>): Promise<StoreResult> {
  const job = await client.queue.add('store', { source: { base64: Buffer.from(name).toString('base64') }, name, ...extra });
  const settled = await settle(client, job);
  if (settled.state !== 'completed') throw new Error(`store ${name}: ${settled.failedReason}`);
  return settled.result as StoreResult;
}

test('an expire run deletes what is past deleteAfter, keeps what is retained or not yet due', async () => {
  const past = new Date(Date.now() - 60_000).toISOString();
  const future = new Date(Date.now() + 3_600_000).toISOString();
  const expired = await store('expired.zip', { deleteAfter: past });
  const retained = await store('retained.zip', { deleteAfter: past, retainUntil: future });
  const due = await store('later.zip', { deleteAfter: future });
  const plain = await store('plain.zip', {});

  const run = await settle(client, await client.queue.add('expire', {}));
  expect(run.state).toBe('completed');
  expect(run.result).toEqual({ expired: [{ driver: 'local', deleted: 1, retained: 1, failed: 0 }] });

  const keys = await archiveKeysBelow(root);
  expect(keys).not.toContain(expired.ref.key);
  expect(keys).toEqual(expect.arrayContaining([retained.ref.key, due.ref.key, plain.ref.key]));
  expect(keys).toHaveLength(3);
});

test('an expire job with data is refused as invalid, not run', async () => {
  const run = await settle(client, await client.queue.add('expire', { driver: 'local' }));
  expect(run.state).toBe('failed');
  expect(run.failedReason).toMatch(/^invalid_task: data: /);
});

test('scheduling is idempotent across workers and can be turned off', async () => {
  const options = { redis: redis.target, queueName: 'depot', prefix: redis.prefix, everyMs: 120_000 };
  await scheduleExpiry(options);
  await scheduleExpiry(options); // a second worker starting
  const connection = createRedis(redis.target, 'worker');
  const queue = new Queue('depot', { connection, prefix: redis.prefix });
  try {
    const schedulers = await queue.getJobSchedulers();
    expect(schedulers.map((s) => [s.key, s.name, s.every])).toEqual([[EXPIRY_SCHEDULER_ID, 'expire', 120_000]]);
    await scheduleExpiry({ ...options, everyMs: 0 });
    expect(await queue.getJobSchedulers()).toEqual([]);
  } finally {
    await queue.close();
    connection.disconnect();
  }
});
