import path from 'node:path';
import type { StoreResult } from '../../src/contract';
import { cleanupAll, InProcessWorker, queueClient, QueueClient, settle, startInProcessWorker, TempDirs, testConfig } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/** A worker outlives a Redis outage: it reconnects by itself and takes tasks again. */
const temp = new TempDirs();
let redis: RedisServer | undefined;
let worker: InProcessWorker | undefined;
let client: QueueClient | undefined;

afterAll(async () => {
  await cleanupAll(
    () => client?.close(),
    () => worker?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

async function storeOne(name: string): Promise<StoreResult> {
  if (!redis) throw new Error('no redis');
  client = await queueClient(redis.port);
  try {
    const settled = await settle(client, await client.queue.add('store', { source: { base64: Buffer.from(name).toString('base64') }, name }), 30_000);
    expect(settled.state).toBe('completed');
    return settled.result as StoreResult;
  } finally {
    await client.close();
    client = undefined;
  }
}

test('Redis stopped and started again on the same port: the running worker stores the next task', async () => {
  redis = await startRedis();
  const port = redis.port;
  const root = path.join(await temp.make(), 'archive');
  worker = await startInProcessWorker(testConfig({ redis: { url: redis.url }, drivers: { local: { type: 'filesystem', root } } }, root));
  expect((await storeOne('before.zip')).name).toBe('before.zip');

  await redis.stop();
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  redis = await startRedis(port);

  expect((await storeOne('after.zip')).name).toBe('after.zip');
  // The outage was logged once in a while, not once per reconnect attempt.
  expect(worker.logs.filter((line) => line.includes('queue connection')).length).toBeLessThanOrEqual(2);
});
