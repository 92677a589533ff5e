import { useRedisTopology } from '../helpers/queue-harness';

/**
 * The queue path's end-to-end tests (store, retrieve, delete and check, by
 * plain BullMQ jobs and by ArchivingManager) on a six-node Redis Cluster with
 * `queue.prefix: {depot}`: the same test file as on one redis-server, its
 * Redis started by the harness for the topology chosen here (CONTRACT §10).
 */
useRedisTopology('cluster');
jest.setTimeout(60_000);

describe('on a Redis Cluster', () => {
  // Required here, not imported: its hooks and tests then belong to this block, after the topology is chosen.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../queue/operations.test');
});
