import type { Queue } from 'bullmq';
import { schedulerJobId, schedulerJobIdPrefix } from './bullmq-internals';
import { MAINTENANCE_SCHEDULER_IDS } from './expiry-schedule';
import { TASK_STATES } from './names';

type TaskState = (typeof TASK_STATES)[number];

/**
 * The task queue's job counts by state, without depot's own maintenance jobs:
 * the expiry and fixity schedulers always keep their next run on the queue
 * (delayed, or waiting once due), plus the run in progress, so counted as
 * tasks `delayed` would never drop below 1. Finished runs (at most 50 each
 * way, see expiry-schedule.ts) stay in `completed` and `failed`.
 */
export async function taskJobCounts(queue: Queue): Promise<Record<string, number>> {
  const [counts, own] = await Promise.all([queue.getJobCounts(...TASK_STATES), maintenanceJobStates(queue)]);
  // The two reads are not atomic: a run that moved between them must not make a count negative.
  for (const state of own) counts[state] = Math.max(0, (counts[state] ?? 0) - 1);
  return counts;
}

/** One state per pending job of the schedulers: each one's next run, found by id, and runs in `active` (a short list). */
async function maintenanceJobStates(queue: Queue): Promise<TaskState[]> {
  const active = await queue.getRanges(['active'], 0, -1);
  const perScheduler = await Promise.all(
    MAINTENANCE_SCHEDULER_IDS.map(async (id): Promise<TaskState[]> => {
      const prefix = schedulerJobIdPrefix(id);
      const scheduler = await queue.getJobScheduler(id);
      const next = scheduler?.next ? schedulerJobId(id, scheduler.next) : undefined;
      const states: TaskState[] = active.filter((jobId) => jobId.startsWith(prefix) && jobId !== next).map(() => 'active');
      if (next) {
        const state = await queue.getJobState(next);
        if (isPending(state)) states.push(state);
      }
      return states;
    }),
  );
  return perScheduler.flat();
}

/** Waiting, active, delayed or prioritized: the states that make the queue's depth. */
function isPending(state: string): state is TaskState {
  return (TASK_STATES as readonly string[]).includes(state) && state !== 'completed' && state !== 'failed';
}
