import { Queue } from 'bullmq';
import { EXPIRE_OPERATION, FIXITY_OPERATION } from '../contract';
import { createRedis, RedisTarget } from './connection';
import { ignoreErrorEvents } from '../support/ignore';

export const EXPIRY_SCHEDULER_ID = 'depot-expiry';
/** The scheduled fixity run (CONTRACT §8): a `verify` job every `fixity.intervalMs`. */
export const FIXITY_SCHEDULER_ID = 'depot-fixity';
/** depot's own repeating jobs on the task queue, which are no tasks (queue-depth.ts leaves them out). */
export const MAINTENANCE_SCHEDULER_IDS = [EXPIRY_SCHEDULER_ID, FIXITY_SCHEDULER_ID] as const;

export interface ScheduleOptions {
  redis: RedisTarget;
  queueName: string;
  prefix: string;
  everyMs: number;
}

/**
 * Keeps one repeating `expire` job on the queue (BullMQ job scheduler), however
 * many workers start: upserting the same scheduler id is idempotent. `everyMs`
 * 0 removes it.
 */
export function scheduleExpiry(options: ScheduleOptions): Promise<void> {
  return schedule(options, EXPIRY_SCHEDULER_ID, EXPIRE_OPERATION);
}

/** The same for the fixity run: one repeating `verify` job (config `fixity.intervalMs`; 0 removes it). */
export function scheduleFixity(options: ScheduleOptions): Promise<void> {
  return schedule(options, FIXITY_SCHEDULER_ID, FIXITY_OPERATION);
}

async function schedule(options: ScheduleOptions, id: string, name: string): Promise<void> {
  const connection = createRedis(options.redis, 'worker');
  ignoreErrorEvents(connection, 'scheduling fails its call, which the caller logs');
  const queue = new Queue(options.queueName, { connection, prefix: options.prefix });
  ignoreErrorEvents(queue, 'scheduling fails its call, which the caller logs');
  try {
    if (options.everyMs === 0) {
      await queue.removeJobScheduler(id);
      return;
    }
    await queue.upsertJobScheduler(
      id,
      { every: options.everyMs },
      { name, data: {}, opts: { attempts: 1, removeOnComplete: { count: 50 }, removeOnFail: { count: 50 } } },
    );
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
