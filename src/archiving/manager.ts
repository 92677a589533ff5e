import { EventEmitter } from 'node:events';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Job, JobsOptions, Queue, QueueEvents } from 'bullmq';
import {
  CheckResult,
  DeleteResult,
  DepotError,
  ErrorCode,
  isErrorCode,
  Metadata,
  newTaskId,
  Operation,
  parseTask,
  RetrieveResult,
  RetrieveTask,
  Source,
  StorageRef,
  StoreResult,
  StoreTask,
  TaskByOperation,
} from '../contract';
import { finishedTaskData } from '../contract/finished-task';
import type { Catalog } from '../catalog/catalog';
import { catalogLocation, parseCatalogUrl } from '../catalog/location';
import { DeferredCatalog, openCatalog } from '../catalog/open';
import { ListedArchive, listedArchive, metadataPairs } from '../catalog/views';
import { createRedis, RedisClient, RedisTarget, waitForRedis } from '../queue/connection';
import { Provenance, withProvenance } from '../queue/bullmq-internals';
import { DEFAULT_JOB_OPTIONS } from '../queue/job-options';
import { DEFAULT_PREFIX, DEFAULT_QUEUE, jobIdFor } from '../queue/names';
import { ignoreErrorEvents } from '../support/ignore';

export type ManagerOptions = ManagerSettings &
  (
    | {
        /** A single server: `redis://[user:password@]host:port[/db]`. */
        redisUrl: string;
        redis?: undefined;
      }
    | {
        /** A `redis://` URL, or a Sentinel or Cluster topology (CONTRACT §10; config `redis` as loadConfig gives it). */
        redis: RedisTarget;
        redisUrl?: undefined;
      }
  );

interface ManagerSettings {
  queueName?: string;
  prefix?: string;
  /** Merged over DEFAULT_JOB_OPTIONS for every task. */
  jobOptions?: JobsOptions;
  /** Who queues the tasks, for the audit trail (CONTRACT §8): `cli`, `http:<token name>`; unset, the worker records `queue`. */
  actor?: string;
  /**
   * The catalog `find` reads (CONTRACT §8): a Catalog, or its URL — `sqlite:` with an
   * absolute path, or `postgres://…` (config `catalog.url`; the manager never creates one).
   */
  catalog?: Catalog | string;
}

/** What `find` looks for: every metadata pair must match (a list value matches when it holds the value). */
export interface FindQuery {
  driver?: string;
  metadata?: Metadata;
  /** Deleted archives only. */
  deleted?: boolean;
  /** Entries read from the catalog at a time (default 100, at most 1000). */
  pageSize?: number;
}

export interface TaskHandle<R> {
  taskId: string;
  jobId: string;
  /** The taskId was queued before (with the same task): this call queued nothing. */
  existed: boolean;
  /** The task's result; rejects with a DepotError carrying the contract's code when it failed. */
  result(timeoutMs?: number): Promise<R>;
}

export type StoreOptions = Omit<StoreTask, 'source' | 'taskId'> & { taskId?: string };

/** A task's progress, as the storage worker reports it (CONTRACT §4). */
export interface ProgressEvent {
  jobId: string;
  bytes: number;
  totalBytes?: number;
}

/** A task that finished with its result. */
export interface CompletedEvent {
  jobId: string;
  result: unknown;
}

/** A task that failed for good (not an attempt that will be retried), with the contract's error. */
export interface FailedEvent {
  jobId: string;
  error: { code: ErrorCode; message: string };
}

/**
 * ArchivingManager's events and their listeners, as BullMQ types its own
 * (`WorkerListener`, `QueueEventsListener`): `on`, `once`, `off` and `emit`
 * take only these names, each with its payload. Events of every task on the
 * queue arrive once `listen()` (or a `result()`) has started listening.
 */
export interface ArchivingManagerListener {
  completed: (event: CompletedEvent) => void;
  failed: (event: FailedEvent) => void;
  progress: (event: ProgressEvent) => void;
}

/**
 * ArchivingManager: the producer side. Validates tasks before they are queued
 * (a bad one fails here, not on a worker), gives each a UUIDv7 taskId from
 * which its jobId is made (so re-adding the same task is a no-op, and another
 * task under a taken taskId is a `conflict`), and reports results and events.
 * Fails fast when Redis is down.
 */
export class ArchivingManager extends EventEmitter {
  private readonly connection: RedisClient;
  private readonly redis: RedisTarget;
  private readonly queue: Queue;
  private events?: QueueEvents;
  private eventsConnection?: RedisClient;
  private catalog?: Catalog;
  /** A catalog this manager opened from a URL, and closes. */
  private ownCatalog?: DeferredCatalog;

  constructor(private readonly options: ManagerOptions) {
    super();
    this.redis = options.redis ?? options.redisUrl;
    this.connection = createRedis(this.redis, 'producer');
    // A producer must not crash on an unhandled 'error' while Redis is away; calls reject instead.
    ignoreErrorEvents(this.connection, 'a producer learns of Redis failures from the call that fails');
    this.queue = new Queue(options.queueName ?? DEFAULT_QUEUE, {
      connection: this.connection,
      prefix: options.prefix ?? DEFAULT_PREFIX,
      defaultJobOptions: { ...DEFAULT_JOB_OPTIONS, ...options.jobOptions },
    });
    ignoreErrorEvents(this.queue, 'a producer learns of Redis failures from the call that fails');
  }

  store(source: Source, options: StoreOptions): Promise<TaskHandle<StoreResult>> {
    return this.enqueue('store', { ...options, source });
  }

  retrieve(ref: StorageRef, target: RetrieveTask['target'], options: { taskId?: string; callbackUrl?: string } = {}): Promise<TaskHandle<RetrieveResult>> {
    return this.enqueue('retrieve', { ...options, ref, target });
  }

  delete(ref: StorageRef, options: { taskId?: string; callbackUrl?: string } = {}): Promise<TaskHandle<DeleteResult>> {
    return this.enqueue('delete', { ...options, ref });
  }

  check(driver: string, options: { taskId?: string } = {}): Promise<TaskHandle<CheckResult>> {
    return this.enqueue('check', { ...options, driver });
  }

  /**
   * Validates and queues any task; the typed methods above are the usual way in.
   * `provenance` overrides the manager's actor for this task (the task API's token; `depot erase`'s deletes).
   */
  async enqueue<R>(operation: Operation, data: Record<string, unknown>, jobOptions: JobsOptions = {}, provenance?: Provenance): Promise<TaskHandle<R>> {
    const taskId = typeof data.taskId === 'string' ? data.taskId : newTaskId();
    const task: TaskByOperation[Operation] = parseTask(operation, { ...data, taskId });
    const jobId = jobIdFor(taskId);
    const who = provenance ?? (this.options.actor !== undefined ? { actor: this.options.actor } : undefined);
    const { added, stored } = await this.add(operation, task, who ? withProvenance({ ...jobOptions, jobId }, who) : { ...jobOptions, jobId });
    // BullMQ's add with a taken jobId changes nothing and hands back a Job holding *our* data: only the stored job tells.
    // A completed job keeps its task without credentials and inline bytes (finishedTaskData): the same task compares equal to that too.
    const sent: unknown = JSON.parse(JSON.stringify(task));
    if (stored.name !== operation || !(isDeepStrictEqual(stored.data, sent) || isDeepStrictEqual(stored.data, finishedTaskData(sent)))) {
      throw new DepotError('conflict', `task ${taskId} already exists with other content (a ${stored.name} task); choose another taskId`, { field: 'taskId' });
    }
    // Our add created the job only if the stored one carries its creation time (two identical adds
    // within one millisecond both count as new: harmless, they made one job).
    const existed = stored.timestamp !== added.timestamp;
    return { taskId, jobId, existed, result: (timeoutMs) => this.waitFor<R>(stored, timeoutMs) };
  }

  /** Adds the job and reads back the one Redis holds under its jobId (ours, or one that was there before). */
  private async add(operation: Operation, task: unknown, options: JobsOptions & { jobId: string }): Promise<{ added: Job; stored: Job }> {
    try {
      await waitForRedis(this.connection, 5_000, true);
      // Twice at most: a job that was there may finish and be removed between the add and the read.
      for (let tries = 1; ; tries++) {
        const added = await this.queue.add(operation, task, options);
        const stored = await this.queue.getJob(options.jobId);
        if (stored) return { added, stored };
        if (tries === 2) throw new Error(`job ${options.jobId} vanished as it was queued`);
      }
    } catch (error) {
      throw new DepotError('unavailable', `cannot queue the task: ${(error as Error).message}`, { cause: error });
    }
  }

  private async waitFor<R>(job: Job, timeoutMs?: number): Promise<R> {
    const events = await this.queueEvents();
    try {
      return (await job.waitUntilFinished(events, timeoutMs)) as R;
    } catch (error) {
      throw failureFromReason((error as Error).message);
    }
  }

  /**
   * QueueEvents on first use only: a producer that never waits holds one connection.
   * It reads the event stream from its current end, fixed here before any wait
   * checks whether its job has already finished: with BullMQ's default ('$',
   * resolved only when the first XREAD reaches Redis) a task that finished in
   * between was neither finished at the check nor seen as an event, and its
   * waiter hung.
   */
  private async queueEvents(): Promise<QueueEvents> {
    if (!this.events) {
      const lastEventId = await this.lastEventId();
      if (this.events) return this.waitReady(this.events);
      this.eventsConnection = createRedis(this.redis, 'worker');
      ignoreErrorEvents(this.eventsConnection, 'the events listener reconnects by itself; waiting results time out');
      this.events = new QueueEvents(this.queue.name, { connection: this.eventsConnection, prefix: this.queue.opts.prefix, lastEventId });
      ignoreErrorEvents(this.events, 'the events listener reconnects by itself; waiting results time out');
      this.events.on('completed', ({ jobId, returnvalue }) => this.emit('completed', { jobId, result: returnvalue as unknown }));
      this.events.on('failed', ({ jobId, failedReason }) => this.emit('failed', { jobId, error: failureFromReason(failedReason).toJSON() }));
      this.events.on('progress', ({ jobId, data }) => {
        if (typeof data !== 'object' || data === null) return;
        // The storage worker reports progress as { bytes, totalBytes? } (CONTRACT §4).
        const event: ProgressEvent = { jobId, ...(data as Omit<ProgressEvent, 'jobId'>) };
        this.emit('progress', event);
      });
    }
    return this.waitReady(this.events);
  }

  private async waitReady(events: QueueEvents): Promise<QueueEvents> {
    await events.waitUntilReady();
    return events;
  }

  /** The id of the newest event on the queue's stream ('0-0' when it is empty). */
  private async lastEventId(): Promise<string> {
    try {
      await waitForRedis(this.connection, 5_000, true);
      const [newest] = await this.connection.xrevrange(this.queue.keys.events, '+', '-', 'COUNT', 1);
      return newest?.[0] ?? '0-0';
    } catch (error) {
      throw new DepotError('unavailable', `cannot listen for task events: ${(error as Error).message}`, { cause: error });
    }
  }

  override on<U extends keyof ArchivingManagerListener>(event: U, listener: ArchivingManagerListener[U]): this {
    return super.on(event, listener);
  }

  override once<U extends keyof ArchivingManagerListener>(event: U, listener: ArchivingManagerListener[U]): this {
    return super.once(event, listener);
  }

  override off<U extends keyof ArchivingManagerListener>(event: U, listener: ArchivingManagerListener[U]): this {
    return super.off(event, listener);
  }

  override emit<U extends keyof ArchivingManagerListener>(event: U, ...args: Parameters<ArchivingManagerListener[U]>): boolean {
    return super.emit(event, ...args);
  }

  /**
   * The archives in the catalog that match, as `depot list --json` shows them,
   * read a page at a time as the iteration goes on (never all at once):
   * `for await (const archive of manager.find({ metadata: { userId: '34' } }))`.
   */
  async *find(query: FindQuery = {}): AsyncGenerator<ListedArchive, void, undefined> {
    const catalog = this.catalogToRead();
    const metadata = metadataPairs(query.metadata ?? {});
    for (let cursor: string | null = null; ;) {
      const page = await catalog.findArchives({ driver: query.driver, metadata, deleted: query.deleted === true, limit: query.pageSize ?? 100, cursor });
      for (const entry of page.items) yield listedArchive(entry);
      if (!(cursor = page.next)) return;
    }
  }

  private catalogToRead(): Catalog {
    if (this.catalog) return this.catalog;
    const given = this.options.catalog;
    if (given === undefined)
      throw new DepotError('misconfigured', 'this ArchivingManager has no catalog: give the option catalog (a Catalog, or config catalog.url)', {
        field: 'catalog',
      });
    if (typeof given !== 'string') return (this.catalog = given);
    const target = parseCatalogUrl(given, '/');
    if (!target || (target.kind === 'sqlite' && !path.isAbsolute(given.slice('sqlite:'.length)))) {
      throw new DepotError('misconfigured', 'must be sqlite:<absolute path> or a postgres:// URL (a relative path would depend on the current directory)', {
        field: 'catalog',
      });
    }
    const settings = { target, location: catalogLocation(target) };
    this.ownCatalog = new DeferredCatalog(settings.location, () => openCatalog(settings, 'read'));
    return (this.catalog = this.ownCatalog);
  }

  /** Workers connected to the queue now. */
  workerCount(): Promise<number> {
    return this.queue.getWorkersCount();
  }

  /** Starts listening for `completed`, `failed` and `progress` of every task on the queue. */
  async listen(): Promise<void> {
    await this.queueEvents();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.queue.close(), this.events?.close(), this.ownCatalog?.close()]);
    this.connection.disconnect();
    this.eventsConnection?.disconnect();
  }
}

/** `code: message`, as failedReason carries it, back into a DepotError. */
export function failureFromReason(reason: string): DepotError {
  const match = /^([a-z_]+): ([\s\S]*)$/.exec(reason);
  if (match && isErrorCode(match[1])) return new DepotError(match[1], match[2]);
  return new DepotError('internal', reason);
}
