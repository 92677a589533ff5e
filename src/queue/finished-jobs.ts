import { isDeepStrictEqual } from 'node:util';
import type { Job, Queue } from 'bullmq';
import { finishedTaskData } from '../contract/finished-task';

/** Completed jobs a starting worker looks at: those a worker that died may have completed without dropping their data. */
const RECENT = 100;

/**
 * Drops from a completed job's data what only running it needed: producers'
 * credentials and inline bytes (`finishedTaskData`). Called once the job has
 * completed, never before: a run after a crash needs all of it. A job removed
 * meanwhile has nothing left to drop.
 */
export async function dropFinishedData(job: Job): Promise<boolean> {
  const finished = finishedTaskData(job.data);
  if (isDeepStrictEqual(finished, job.data)) return false;
  try {
    await job.updateData(finished);
    return true;
  } catch (error) {
    if (/missing key/i.test((error as Error).message)) return false;
    throw error;
  }
}

/**
 * A worker that died between completing a job and dropping its data left them
 * there: a starting worker drops them from the most recently completed jobs.
 */
export async function dropRecentFinishedData(queue: Queue): Promise<number> {
  let dropped = 0;
  for (const job of await queue.getJobs(['completed'], 0, RECENT - 1)) {
    if (job && (await dropFinishedData(job))) dropped++;
  }
  return dropped;
}
