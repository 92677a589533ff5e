/** CONTRACT §1. */
export const DEFAULT_QUEUE = 'depot';
export const DEFAULT_PREFIX = 'bull';
export const CALLBACK_QUEUE = 'depot-callbacks';

/**
 * A BullMQ jobId for a taskId: taskIds never contain ':', but a jobId must not
 * look like an integer (BullMQ's own ids are), so such taskIds get a prefix.
 */
export function jobIdFor(taskId: string): string {
  return /^\d+$/.test(taskId) ? `task-${taskId}` : taskId;
}
