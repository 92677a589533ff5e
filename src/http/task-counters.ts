import type { Queue, QueueEvents } from 'bullmq';

/** Upper bounds (seconds) of the task duration histogram. */
export const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

interface Histogram {
  buckets: number[];
  sum: number;
  count: number;
}

/**
 * What /metrics counts since this process started, from the queue's events:
 * finished tasks by operation and outcome, their durations, bytes stored and
 * retrieved per driver, failovers and store retries. Each finished job is
 * read once (its name, result and timings are not in the event).
 */
export class TaskCounters {
  readonly finished = new Map<string, number>();
  readonly durations = new Map<string, Histogram>();
  readonly bytesStored = new Map<string, number>();
  readonly bytesRetrieved = new Map<string, number>();
  failovers = 0;
  retries = 0;

  constructor(
    private readonly queue: Queue,
    events: QueueEvents,
  ) {
    events.on('completed', ({ jobId }) => void this.count(jobId, 'completed'));
    events.on('failed', ({ jobId }) => void this.count(jobId, 'failed'));
  }

  private async count(jobId: string, outcome: 'completed' | 'failed'): Promise<void> {
    const job = await this.queue.getJob(jobId).catch(() => undefined);
    if (!job) return; // removed already (removeOnComplete with a small count)
    // A failed attempt that will be retried is not a finished task.
    if (outcome === 'failed' && job.finishedOn === undefined) return;
    const operation = job.name;
    add(this.finished, `${operation}\u0000${outcome}`, 1);
    if (job.processedOn !== undefined && job.finishedOn !== undefined) observe(this.durations, operation, (job.finishedOn - job.processedOn) / 1000);
    if (outcome !== 'completed') return;
    const result = job.returnvalue as { ref?: { driver?: string }; size?: number; failedOver?: boolean; attempts?: number; driversTried?: string[] } | null;
    const driver = result?.ref?.driver;
    if (driver && typeof result?.size === 'number') {
      if (operation === 'store') add(this.bytesStored, driver, result.size);
      if (operation === 'retrieve') add(this.bytesRetrieved, driver, result.size);
    }
    if (result?.failedOver) this.failovers += 1;
    // One attempt per driver tried is not a retry: failovers are counted apart.
    const drivers = Array.isArray(result?.driversTried) ? result.driversTried.length : 1;
    if (operation === 'store' && typeof result?.attempts === 'number' && result.attempts > drivers) this.retries += result.attempts - drivers;
  }
}

function add(map: Map<string, number>, key: string, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}

function observe(map: Map<string, Histogram>, key: string, seconds: number): void {
  const h = map.get(key) ?? { buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
  DURATION_BUCKETS.forEach((bound, i) => {
    if (seconds <= bound) h.buckets[i] += 1;
  });
  h.sum += seconds;
  h.count += 1;
  map.set(key, h);
}
