/** CONTRACT §1. */
export const DEFAULT_QUEUE = 'depot';
export const DEFAULT_PREFIX = 'bull';
export const CALLBACK_QUEUE = 'depot-callbacks';
/** The states `depot status` and /metrics count, on the task queue and on the webhook queue. */
export const TASK_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;
export const DELIVERY_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed'] as const;

/** What every taskId's jobId starts with; no key of BullMQ's own (`wait`, `meta`, a scheduler's job ids: bullmq-internals.ts) does. */
export const JOB_ID_PREFIX = 'task-';

/**
 * The BullMQ jobId of a taskId: the same prefix for every taskId. A jobId is a
 * Redis key below the queue's, so a bare taskId such as `meta` or `wait` would
 * be written over the queue's own keys; and one prefix keeps the mapping
 * one-to-one (`5` and `task-5` are two jobs), which a prefix for some taskIds
 * only would not. taskIds never contain ':', so a jobId never reaches into
 * another job's keys (its lock: bullmq-internals.ts) either, and never looks like an integer.
 */
export function jobIdFor(taskId: string): string {
  return `${JOB_ID_PREFIX}${taskId}`;
}
