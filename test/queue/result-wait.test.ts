import { Worker } from 'bullmq';
import IORedis, { Redis } from 'ioredis';
import { ArchivingManager } from '../../src/archiving/manager';
import { cleanupAll } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * A task that finishes a few milliseconds after it is queued — while the
 * producer is still setting up its event listener — is still reported: this is
 * what `depot retrieve` and `depot store` do for every command. BullMQ's
 * QueueEvents starts at '$', fixed only when its first XREAD reaches Redis, so a
 * completion landing between the "already finished?" check and that XREAD was
 * lost and the waiter hung (about one task in six finishing 2–3 ms after being
 * queued, measured before the fix).
 */
jest.setTimeout(120_000);

const TASKS = 150;
let redis: RedisServer;
let connection: Redis;
let worker: Worker;

beforeAll(async () => {
  redis = await startRedis();
  connection = new IORedis(redis.url, { maxRetriesPerRequest: null });
  // No storage is involved: the worker answers each task after 1–3 ms, the window of the race.
  let n = 0;
  worker = new Worker(
    'depot',
    async (job) => {
      await new Promise((resolve) => setTimeout(resolve, 1 + (n++ % 3)));
      return { taskId: (job.data as { taskId: string }).taskId };
    },
    { connection, concurrency: 4 },
  );
  await worker.waitUntilReady();
});

afterAll(async () => {
  await cleanupAll(
    () => worker?.close(),
    async () => connection?.disconnect(),
    () => redis?.stop(),
  );
});

test(`${TASKS} producers, each queueing a task and then listening, all get their result`, async () => {
  const hung: string[] = [];
  for (let i = 0; i < TASKS; i++) {
    // A new producer each time, like one CLI command: its QueueEvents is created after the task is queued.
    const manager = new ArchivingManager({ redisUrl: redis.url });
    try {
      const handle = await manager.check('local');
      await manager.listen();
      const result = await handle.result(5_000).catch(() => undefined);
      if (result === undefined) hung.push(handle.taskId);
      else expect(result).toEqual({ taskId: handle.taskId });
    } finally {
      await manager.close();
    }
  }
  expect(hung).toEqual([]);
});
