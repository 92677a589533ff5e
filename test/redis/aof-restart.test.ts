import { RedisServer, startRedis } from '../helpers/redis-server';
import { storesThroughFailure } from './stores-through-failure';

/**
 * A single redis-server with an append-only file (fsynced on every write, as
 * production should run it): SIGKILLed and started again mid-run, it reads its
 * AOF back, and no task is lost.
 */
jest.setTimeout(120_000);

let redis: RedisServer | undefined;

afterAll(async () => {
  await redis?.stop();
});

test('Redis with AOF restarted mid-run: no task lost, none stored twice', async () => {
  redis = await startRedis(undefined, { aof: true });
  const server = redis;
  await storesThroughFailure({
    redis: { url: server.url },
    target: server.url,
    prefix: 'bull',
    count: 100,
    failAfter: 15,
    fail: () => server.restart(),
  });
});
