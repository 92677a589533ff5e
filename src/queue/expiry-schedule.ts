import { Queue } from 'bullmq';
import { EXPIRE_OPERATION } from '../contract';
import { createRedis } from './connection';
import { ignoreErrorEvents } from '../support/ignore';

export const EXPIRY_SCHEDULER_ID = 'depot-expiry';

/**
 * Keeps one repeating `expire` job on the queue (BullMQ job scheduler), however
 * many workers start: upserting the same scheduler id is idempotent. `everyMs`
 * 0 removes it.
 */
export async function scheduleExpiry(options: { redisUrl: string; queueName: string; prefix: string; everyMs: number }): Promise<void> {
  const connection = createRedis(options.redisUrl, 'worker');
  ignoreErrorEvents(connection, 'scheduling fails its call, which the caller logs');
  const queue = new Queue(options.queueName, { connection, prefix: options.prefix });
  ignoreErrorEvents(queue, 'scheduling fails its call, which the caller logs');
  try {
    if (options.everyMs === 0) {
      await queue.removeJobScheduler(EXPIRY_SCHEDULER_ID);
      return;
    }
    await queue.upsertJobScheduler(
      EXPIRY_SCHEDULER_ID,
      { every: options.everyMs },
      { name: EXPIRE_OPERATION, data: {}, opts: { attempts: 1, removeOnComplete: { count: 50 }, removeOnFail: { count: 50 } } },
    );
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
