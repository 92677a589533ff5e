import { useRedisTopology } from '../helpers/queue-harness';

/**
 * `depot worker --processes N` on a six-node Redis Cluster with
 * `queue.prefix: {depot}` (CONTRACT §10): a child SIGKILLed mid-store has its
 * task handed back at once by the supervisor — the worker listing asked of
 * every node, the job's lock token and stall count read through the cluster —
 * and the crash loop ends the supervisor. The same test file as on one
 * redis-server, its Redis started by the harness for the topology chosen here.
 */
useRedisTopology('cluster');
jest.setTimeout(120_000);

describe('on a Redis Cluster', () => {
  // Required here, not imported: its hooks and tests then belong to this block, after the topology is chosen.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../process/supervisor.test');
});
