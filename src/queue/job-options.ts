import type { JobsOptions, KeepJobs } from 'bullmq';

/** How many finished jobs Redis keeps, and for how long (config `queue.keepCompleted`, `queue.keepFailed`). */
export interface Retention {
  count: number;
  ageSeconds: number;
}

/**
 * The one place of the retention defaults. Redis memory grows with the jobs
 * kept, so they are bounded; long enough for producers to read results (with
 * none kept, `waitUntilFinished` can miss a job that finished).
 */
export const DEFAULT_RETENTION: { completed: Retention; failed: Retention } = {
  completed: { count: 10_000, ageSeconds: 7 * 24 * 3600 },
  failed: { count: 50_000, ageSeconds: 30 * 24 * 3600 },
};

/** How long an inline retrieve's job, which holds the archive's bytes, is kept once completed (config `queue.inlineResultSeconds`). */
export const DEFAULT_INLINE_RESULT_SECONDS = 60;

/** BullMQ's form of a retention. */
export function keepJobs(retention: Retention): KeepJobs {
  return { count: retention.count, age: retention.ageSeconds };
}

/**
 * What a producer asks of BullMQ for each task: a few whole-task retries on top
 * of the worker's own per-driver retries (the two levels of CONTRACT §3).
 * Retention is not among them: the workers apply their config's to every job
 * that does not set its own, so it is configured in one place.
 */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 10_000, jitter: 0.5 },
};
