import { useRedisTopology } from '../helpers/queue-harness';

/**
 * Automatic deletion on a six-node Redis Cluster with `queue.prefix: {depot}`
 * (CONTRACT §10): the `expire` run, and its job scheduler upserted by every
 * worker (BullMQ's scheduler keys beside the queue's, in its slot). The same
 * test file as on one redis-server.
 */
useRedisTopology('cluster');
jest.setTimeout(60_000);

describe('on a Redis Cluster', () => {
  // Required here, not imported: its hooks and tests then belong to this block, after the topology is chosen.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../queue/expiry.test');
});
