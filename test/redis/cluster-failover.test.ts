import { RedisCluster, startRedisCluster } from '../helpers/redis-cluster';
import { storesThroughFailure } from './stores-through-failure';

/**
 * CONTRACT §10 on Redis Cluster: six nodes, three masters with a replica each.
 * The master serving the queue's slot (`{depot}`) is SIGKILLed mid-run; its
 * replica takes over and every task completes exactly once.
 */
jest.setTimeout(150_000);

let cluster: RedisCluster | undefined;

afterAll(async () => {
  await cluster?.stop();
});

test("the master of the queue's slot killed mid-run: its replica takes over and every task completes", async () => {
  cluster = await startRedisCluster();
  const nodes = cluster;
  await storesThroughFailure({
    redis: nodes.redisConfig,
    target: { kind: 'cluster', nodes: nodes.redisConfig.cluster },
    prefix: '{depot}',
    count: 100,
    failAfter: 15,
    fail: async () => {
      const { killed, promoted } = await nodes.killMasterOf('{depot}');
      expect(promoted.port).not.toBe(killed.port);
    },
  });
});
