import type { Queue, QueueEvents } from 'bullmq';
import { EXPIRE_OPERATION, FIXITY_OPERATION, OPERATIONS } from '../contract';
import { ignoreFailure } from '../support/ignore';

/** Upper bounds (seconds) of the task duration histogram. */
export const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

/**
 * The `operation` label values: depot's operations, its own `expire` and `verify`, and
 * `other` for every job name producers may invent, so that no producer can
 * grow the number of series.
 */
export const OPERATION_LABELS = [...OPERATIONS, EXPIRE_OPERATION, FIXITY_OPERATION, 'other'] as const;
export const OUTCOMES = ['completed', 'failed'] as const;
type OperationLabel = (typeof OPERATION_LABELS)[number];
type Outcome = (typeof OUTCOMES)[number];

export function operationLabel(jobName: string): OperationLabel {
  return (OPERATION_LABELS as readonly string[]).includes(jobName) ? (jobName as OperationLabel) : 'other';
}

export interface Histogram {
  buckets: number[];
  sum: number;
  count: number;
}

export interface Failover {
  from: string;
  to: string;
  count: number;
}

/**
 * What /metrics counts since this process started, from the queue's events:
 * finished tasks by operation and outcome, their durations, bytes stored and
 * retrieved per driver, failovers and store retries. Each finished job is
 * read once (its name, result and timings are not in the event). Every
 * operation × outcome starts at 0, so rates work from the first scrape.
 */
export class TaskCounters {
  private readonly finished = new Map<string, number>();
  readonly durations = new Map<OperationLabel, Histogram>();
  readonly bytesStored = new Map<string, number>();
  readonly bytesRetrieved = new Map<string, number>();
  /** By `from`→`to` hop. */
  readonly failovers = new Map<string, Failover>();
  retries = 0;

  constructor(
    private readonly queue: Queue,
    events: QueueEvents,
  ) {
    for (const operation of OPERATION_LABELS) {
      for (const outcome of OUTCOMES) this.finished.set(finishedKey(operation, outcome), 0);
      this.durations.set(operation, { buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 });
    }
    events.on('completed', ({ jobId }) => void this.count(jobId, 'completed'));
    events.on('failed', ({ jobId }) => void this.count(jobId, 'failed'));
  }

  /** Tasks finished with `outcome`, by operation label. */
  finishedCount(operation: OperationLabel, outcome: Outcome): number {
    return this.finished.get(finishedKey(operation, outcome)) ?? 0;
  }

  private async count(jobId: string, outcome: Outcome): Promise<void> {
    const job = await ignoreFailure(this.queue.getJob(jobId), 'a job that cannot be read now is not counted; Redis errors show on /health');
    if (!job) return; // removed already (removeOnComplete with a small count)
    // A failed attempt that will be retried is not a finished task.
    if (outcome === 'failed' && job.finishedOn === undefined) return;
    const operation = operationLabel(job.name);
    add(this.finished, finishedKey(operation, outcome), 1);
    if (job.processedOn !== undefined && job.finishedOn !== undefined) observe(this.durations, operation, (job.finishedOn - job.processedOn) / 1000);
    if (outcome !== 'completed') return;
    const result = job.returnvalue as { ref?: { driver?: string }; size?: number; attempts?: number; driversTried?: unknown } | null;
    const driver = result?.ref?.driver;
    if (driver && typeof result?.size === 'number') {
      if (operation === 'store') add(this.bytesStored, driver, result.size);
      if (operation === 'retrieve') add(this.bytesRetrieved, driver, result.size);
    }
    if (operation !== 'store') return;
    const tried = Array.isArray(result?.driversTried) ? result.driversTried.filter((d): d is string => typeof d === 'string') : [];
    // Each consecutive pair of drivers tried is one hop from the driver given up to the next.
    for (let i = 1; i < tried.length; i++) this.failedOver(tried[i - 1], tried[i]);
    // One attempt per driver tried is not a retry: failovers are counted apart.
    const drivers = Math.max(tried.length, 1);
    if (typeof result?.attempts === 'number' && result.attempts > drivers) this.retries += result.attempts - drivers;
  }

  private failedOver(from: string, to: string): void {
    const key = `${from}\u0000${to}`;
    const hop = this.failovers.get(key) ?? { from, to, count: 0 };
    hop.count += 1;
    this.failovers.set(key, hop);
  }
}

function finishedKey(operation: OperationLabel, outcome: Outcome): string {
  return `${operation}\u0000${outcome}`;
}

function add(map: Map<string, number>, key: string, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}

function observe(map: Map<OperationLabel, Histogram>, key: OperationLabel, seconds: number): void {
  const h = map.get(key) ?? { buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
  DURATION_BUCKETS.forEach((bound, i) => {
    if (seconds <= bound) h.buckets[i] += 1;
  });
  h.sum += seconds;
  h.count += 1;
  map.set(key, h);
}
