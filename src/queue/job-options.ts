import type { JobsOptions } from 'bullmq';

/**
 * What a producer asks of BullMQ for each task: a few whole-task retries on top
 * of the worker's own per-driver retries (the two levels of CONTRACT §3), and
 * finished jobs kept bounded but long enough to read their results.
 */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 10_000, jitter: 0.5 },
  removeOnComplete: { count: 10_000, age: 7 * 24 * 3600 },
  removeOnFail: { count: 50_000, age: 30 * 24 * 3600 },
};
