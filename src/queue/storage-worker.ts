import { hostname } from 'node:os';
import { DelayedError, Job, Queue, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import { DriversOpen } from '../archiving/breakers';
import type { TaskContext } from '../archiving/task-runner';
import { isRetried, OPERATIONS } from '../contract';
import { handleError } from '../support/error-handler';
import type { Logger } from '../support/logging';
import type { NotificationService, TaskEvent, TaskNotification } from '../support/notifications';
import { redactor } from '../support/redaction';
import { createRedis, RedisTarget, waitForRedis } from './connection';
import { dropFinishedData, dropRecentFinishedData } from './finished-jobs';
import { InlineResults } from './inline-results';
import { DEFAULT_INLINE_RESULT_SECONDS, DEFAULT_RETENTION, keepJobs, Retention } from './job-options';
import { restartWorker } from './orphaned-jobs';
import { provenanceOf } from './bullmq-internals';
import { ignoreErrorEvents, ignoreFailure } from '../support/ignore';

/** Runs one task; the queue plumbing knows only this much of the storage logic. */
export type TaskProcessor = (operation: string, data: unknown, ctx: TaskContext) => Promise<unknown>;

export interface StorageWorkerOptions {
  redis: RedisTarget;
  queueName: string;
  prefix: string;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** How long a stop waits for running tasks before handing them back to the queue. */
  shutdownGraceMs: number;
  /**
   * Worker name shown by `depot status` and bull-board. Named `<host>:<pid>`, a
   * worker first hands back the jobs of dead workers of its host (orphaned-jobs.ts).
   */
  name?: string;
  /** Webhooks for task events (CONTRACT §4); none without it. */
  notifications?: NotificationService;
  /** A task BullMQ failed without running it (the stall limit): its catalog record (TaskRunner.abandoned). */
  onAbandoned?: (operation: string, data: unknown, job: Pick<TaskContext, 'jobId' | 'createdAt' | 'actor' | 'auditAs'>) => Promise<void>;
  /** Finished jobs kept (config `queue.keepCompleted`, `queue.keepFailed`), for every job that does not set its own. */
  retention?: { completed: Retention; failed: Retention };
  /** How long an inline retrieve's job, with the archive's bytes, is kept once completed (config `queue.inlineResultSeconds`). */
  inlineResultMs?: number;
}

const PROGRESS_EVERY_MS = 250;
/** How often a job may stall (its worker died running it) before BullMQ fails it; a hand-back counts as one. */
export const MAX_STALLED_COUNT = 2;
type TaskProgress = Parameters<TaskContext['progress']>[0];

export interface StorageWorker {
  worker: Worker;
  /** Stops fetching, waits up to the grace period, hands back what still runs, closes connections. */
  close(): Promise<void>;
}

/**
 * The BullMQ Worker of queue `depot`: every failure leaves as `<code>: <message>`,
 * and a failure the contract's table says is not retried (`isRetried`,
 * src/contract/error-policy.ts) as UnrecoverableError, whatever the job's own
 * options say.
 */
export function startStorageWorker(processor: TaskProcessor, options: StorageWorkerOptions, logger: Logger): StorageWorker {
  let stopping = false;
  const connection = createRedis(options.redis, 'worker');
  // Maintenance of finished jobs, on the worker's own (non-blocking) connection.
  const queue = new Queue(options.queueName, { connection, prefix: options.prefix });
  ignoreErrorEvents(queue, "the worker's own connection reports Redis outages (logged once in a while)");
  const inlineResultMs = options.inlineResultMs ?? DEFAULT_INLINE_RESULT_SECONDS * 1000;
  const inlineResults = new InlineResults(queue, connection, inlineResultMs);
  const retention = options.retention ?? DEFAULT_RETENTION;

  /** A webhook for a task event (CONTRACT §4); producers' tasks only: the hourly expiry job is depot's own business. */
  const notify = (job: Job, event: TaskEvent, extra: Partial<TaskNotification> & { attempt: number }) =>
    ((OPERATIONS as readonly string[]).includes(job.name) ? options.notifications : undefined)?.notify(fieldOf(job, 'callbackUrl'), {
      event,
      taskId: taskIdOf(job),
      jobId: job.id ?? '',
      operation: job.name,
      timestamp: new Date().toISOString(),
      ...extra,
    });

  const run = async (job: Job, token?: string, signal?: AbortSignal): Promise<unknown> => {
    const abort = signal ?? new AbortController().signal;
    const progress = throttledProgress(job);
    const attempt = job.attemptsMade + 1;
    const provenance = provenanceOf(job);
    const ctx: TaskContext = {
      jobId: job.id ?? '',
      createdAt: job.timestamp,
      signal: abort,
      progress: progress.report,
      keepTaskId: (taskId) => job.updateData({ ...(job.data as object), taskId }),
      // Who queued it, for the audit trail: what the producer put beside the task (ArchivingManager, the task API, the CLI).
      actor: provenance.actor,
      auditAs: job.name === 'delete' ? provenance.operation : undefined,
      // Moved to active before (attemptsStarted counts this run too), failed before, or handed back after its worker died.
      rerun: job.attemptsStarted > 1 || job.attemptsMade > 0 || job.stalledCounter > 0,
      failingOver: (from, to, error) => {
        notify(job, 'task.failover', { attempt, from, to, error: { code: error.code, message: redactor.redact(error.message) } })?.catch((e: Error) =>
          logger.warn(`webhook task.failover not queued: ${redactor.redact(e.message)}`, { jobId: job.id }),
        );
      },
    };
    let result: unknown;
    try {
      result = redactor.redactValue(await processor(job.name, job.data, ctx));
    } catch (error) {
      if (stopping && abort.aborted && token) {
        // Handed back, not failed: another worker (or this one restarted) runs it again.
        await job.moveToWait(token);
        logger.info(`job ${job.id} handed back to the queue on shutdown`, { jobId: job.id });
        throw new WaitingError();
      }
      if (error instanceof DriversOpen && token) {
        // Every driver of the store has its breaker open (CONTRACT §10): the task waits for the cool-down, no attempt spent.
        await job.moveToDelayed(error.retryAt, token);
        logger.info(`job ${job.id} waits until ${new Date(error.retryAt).toISOString()}: ${error.message}`, { jobId: job.id });
        throw new DelayedError();
      }
      const failure = handleError(error);
      // Retried by BullMQ or not: the contract's table (ERROR_POLICY) with the thrower's word, as the worker's own retries.
      const retried = isRetried(failure);
      const reason = `${failure.code}: ${redactor.redact(failure.message)}`;
      logger.warn(`job ${job.id} (${job.name}) failed: ${reason}`, { jobId: job.id, operation: job.name, code: failure.code, attempt: job.attemptsMade + 1 });
      // Only the last attempt's failure is the task's.
      if (!retried || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
        await notify(job, 'task.failed', { attempt, error: { code: failure.code, message: redactor.redact(failure.message) } })?.catch((e: Error) =>
          logger.warn(`webhook task.failed not queued: ${redactor.redact(e.message)}`, { jobId: job.id }),
        );
      }
      throw retried ? new Error(reason) : new UnrecoverableError(reason);
    } finally {
      progress.stop();
    }
    // Queued before the job completes: a crash in between reruns the task (idempotent) and queues it again.
    try {
      await notify(job, 'task.completed', { attempt, result });
    } catch (error) {
      throw new Error(`unavailable: the task's webhook could not be queued: ${redactor.redact((error as Error).message)}`, { cause: error });
    }
    // Noted before the job completes, so that no crash leaves its bytes in Redis for the whole retention.
    if (job.name === 'retrieve' && hasInlineBytes(result)) {
      await inlineResults
        .note(job.id ?? '')
        .catch((error: Error) => logger.warn(`inline result of job ${job.id} not noted for removal: ${redactor.redact(error.message)}`, { jobId: job.id }));
    }
    return result;
  };

  const worker = new Worker(options.queueName, run, {
    connection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
    maxStalledCount: MAX_STALLED_COUNT,
    removeOnComplete: keepJobs(retention.completed),
    removeOnFail: keepJobs(retention.failed),
    name: options.name,
    // Started below, once the jobs of dead predecessors are back in the queue.
    autorun: false,
  });
  let lastConnectionError = 0;
  worker.on('error', (error) => {
    // Redis outages repeat this every reconnect; one line per ten seconds is enough.
    if (Date.now() - lastConnectionError < 10_000) return;
    lastConnectionError = Date.now();
    logger.error(`queue connection: ${redactor.redact(error.message)}`);
  });

  // Completed: what only running the task needed (credentials, inline bytes) leaves the job's data.
  worker.on('completed', (job) => {
    dropFinishedData(job).catch((error: Error) =>
      logger.warn(`job ${job.id}: data not reduced after completion: ${redactor.redact(error.message)}`, { jobId: job.id }),
    );
  });
  // A job that stalled more often than MAX_STALLED_COUNT (its worker died each time) is failed by BullMQ
  // when a worker next takes it, without running it: the processor above never sees that failure.
  worker.on('failed', (job) => {
    if (!job?.deferredFailure) return;
    // Its record in the catalog too (CONTRACT §10): settled and audited as any failed run's.
    const provenance = provenanceOf(job);
    options
      .onAbandoned?.(job.name, job.data, {
        jobId: job.id ?? '',
        createdAt: job.timestamp,
        actor: provenance.actor,
        auditAs: job.name === 'delete' ? provenance.operation : undefined,
      })
      .catch((e: Error) => logger.warn(`job ${job.id}: the task failed by the stall limit not recorded: ${redactor.redact(e.message)}`, { jobId: job.id }));
    notify(job, 'task.failed', {
      attempt: job.attemptsMade,
      error: { code: 'internal', message: redactor.redact(job.failedReason || job.deferredFailure) },
    })?.catch((e: Error) => logger.warn(`webhook task.failed not queued: ${redactor.redact(e.message)}`, { jobId: job.id }));
  });

  const sweeper = setInterval(
    () => void inlineResults.sweep().catch((error: Error) => logger.warn(`inline results not removed: ${redactor.redact(error.message)}`)),
    Math.max(250, Math.min(5_000, inlineResultMs / 2)),
  );
  sweeper.unref();

  void handBackOrphans(options, logger).finally(() => {
    if (stopping) return;
    worker.run().catch((error: Error) => logger.error(`storage worker: ${redactor.redact(error.message)}`));
    // Beside the work, not before it: with Redis away this waits for it.
    dropRecentFinishedData(queue).catch((error: Error) => logger.warn(`completed jobs not reduced at start: ${redactor.redact(error.message)}`));
  });

  const close = async () => {
    if (stopping) return;
    stopping = true;
    const grace = setTimeout(() => {
      logger.warn(`tasks still running after ${options.shutdownGraceMs} ms; handing them back to the queue`);
      worker.cancelAllJobs('shutdown');
    }, options.shutdownGraceMs);
    clearInterval(sweeper);
    try {
      await worker.close();
    } finally {
      clearTimeout(grace);
      // Not awaited: it shares the connection, which goes now whatever Redis does.
      void ignoreFailure(queue.close(), 'closing: it shares the connection, which goes now whatever Redis does');
      connection.disconnect();
    }
  };
  return { worker, close };
}

/** One field of the job's data, which any producer may have made anything (null, an array, a string). */
function fieldOf(job: Job, field: 'taskId' | 'callbackUrl'): unknown {
  const data: unknown = job.data;
  return typeof data === 'object' && data !== null && Object.hasOwn(data, field) ? (data as Record<string, unknown>)[field] : undefined;
}

/** A retrieve's result with the archive's bytes in it (`target: { inline: true }`). */
function hasInlineBytes(result: unknown): boolean {
  return typeof result === 'object' && result !== null && typeof (result as { base64?: unknown }).base64 === 'string';
}

function taskIdOf(job: Job): string {
  const taskId = fieldOf(job, 'taskId');
  return typeof taskId === 'string' ? taskId : (job.id ?? '');
}

/**
 * Best effort, on a connection of its own that fails fast: when Redis is away
 * the worker starts anyway, and BullMQ's stalled-job check recovers those jobs later.
 */
async function handBackOrphans(options: StorageWorkerOptions, logger: Logger): Promise<void> {
  const host = hostname();
  if (options.name !== `${host}:${process.pid}`) return;
  const connection = createRedis(options.redis, 'producer');
  ignoreErrorEvents(connection, 'the hand-back at start is best effort: stalled-job recovery covers what it misses');
  const queue = new Queue(options.queueName, { connection, prefix: options.prefix });
  ignoreErrorEvents(queue, 'the hand-back at start is best effort: stalled-job recovery covers what it misses');
  try {
    await waitForRedis(connection, 5_000, true);
    const handedBack = await restartWorker(queue, connection, { host, selfPid: process.pid, maxStalledCount: MAX_STALLED_COUNT });
    for (const { jobId, worker } of handedBack)
      logger.info(`job ${jobId} of worker ${worker}, which no longer runs, handed back to the queue`, { jobId, worker });
  } catch (error) {
    logger.warn(`jobs of dead workers not handed back at start: ${redactor.redact((error as Error).message)}`);
  } finally {
    await ignoreFailure(queue.close(), 'closing: a queue whose Redis is gone has nothing left to flush');
    connection.disconnect();
  }
}

/**
 * Progress goes to Redis at most every 250 ms, and not at all for a task that
 * finishes sooner: each update is a round trip and an event, which would cost
 * small archives more than their bytes. The latest figure is sent when its
 * 250 ms are up even if no byte follows, so a stalled transfer shows how far
 * it got. Once a task has reported, its 100% is reported too, so progress bars
 * end full.
 */
function throttledProgress(job: Job): { report: TaskContext['progress']; stop(): void } {
  let last = Date.now();
  let reported = false;
  let sentBytes = -1;
  let pending: TaskProgress | undefined;
  let timer: NodeJS.Timeout | undefined;
  const send = (progress: TaskProgress) => {
    last = Date.now();
    sentBytes = progress.bytes;
    reported = true;
    pending = undefined;
    void ignoreFailure(job.updateProgress({ ...progress }), 'progress is a hint: a lost update is followed by the next or by the result');
  };
  const stop = () => {
    clearTimeout(timer);
    timer = undefined;
    pending = undefined;
  };
  const report = (progress: TaskProgress) => {
    if (progress.bytes === sentBytes) return;
    const done = progress.totalBytes !== undefined && progress.bytes >= progress.totalBytes;
    const wait = PROGRESS_EVERY_MS - (Date.now() - last);
    if ((done && reported) || wait <= 0) {
      stop();
      send(progress);
      return;
    }
    pending = progress;
    timer ??= setTimeout(() => {
      timer = undefined;
      if (pending) send(pending);
    }, wait);
  };
  return { report, stop };
}
