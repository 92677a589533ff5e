import { useRedisTopology } from '../helpers/queue-harness';

/**
 * `depot serve` on a six-node Redis Cluster with `queue.prefix: {depot}`
 * (CONTRACT §10): /health, /metrics, the task API and bull-board, each
 * reading the queue through the cluster. The same test file as on one
 * redis-server.
 */
useRedisTopology('cluster');
jest.setTimeout(60_000);

describe('on a Redis Cluster', () => {
  // Required here, not imported: its hooks and tests then belong to this block, after the topology is chosen.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../http/serve.test');
});
