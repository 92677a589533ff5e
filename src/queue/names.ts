/** CONTRACT §1. */
export const DEFAULT_QUEUE = 'depot';
export const DEFAULT_PREFIX = 'bull';
export const CALLBACK_QUEUE = 'depot-callbacks';
/** The states `depot status` and /metrics count, on the task queue and on the webhook queue. */
export const TASK_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;
export const DELIVERY_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed'] as const;

/**
 * A BullMQ jobId for a taskId: taskIds never contain ':', but a jobId must not
 * look like an integer (BullMQ's own ids are), so such taskIds get a prefix.
 */
export function jobIdFor(taskId: string): string {
  return /^\d+$/.test(taskId) ? `task-${taskId}` : taskId;
}
