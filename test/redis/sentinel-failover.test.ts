import { SentinelSet, startSentinelSet } from '../helpers/redis-sentinel';
import { storesThroughFailure } from './stores-through-failure';

/**
 * CONTRACT §10 on Sentinel: one master, one replica, three sentinels. 200
 * stores are running when the master is SIGKILLed; the sentinels promote the
 * replica, the worker's connections follow (+switch-master), and every task
 * completes exactly once.
 */
jest.setTimeout(150_000);

let set: SentinelSet | undefined;

afterAll(async () => {
  await set?.stop();
});

test('200 stores while the master is killed: every task completes exactly once, no archive lost or duplicated', async () => {
  set = await startSentinelSet();
  const sentinels = set;
  await storesThroughFailure({
    redis: sentinels.redisConfig,
    target: { kind: 'sentinel', ...sentinels.redisConfig },
    prefix: 'bull',
    count: 200,
    failAfter: 20,
    fail: async () => {
      const { killed, promoted } = await sentinels.killMaster();
      expect(promoted.port).not.toBe(killed.port);
    },
  });
});
