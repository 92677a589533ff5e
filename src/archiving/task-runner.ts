import {
  archiveKey,
  CheckResult,
  CheckTask,
  DeleteResult,
  DeleteTask,
  DepotError,
  EXPIRE_OPERATION,
  isOperation,
  newTaskId,
  Operation,
  parseTask,
  RetrieveResult,
  RetrieveTask,
  StoreResult,
  StoreTask,
  taskIdTime,
} from '../contract';
import type { StorageAPI } from '../storage/api';
import type { ArchiveStore } from '../storage/archive-store';
import { handleError, retryOperation, switchToAlternative } from '../support/error-handler';
import type { Logger } from '../support/logging';
import { deleteExpired, ExpiryReport } from './expiry';
import { describeUrl, openSource, SourcePolicy } from './sources';
import { readInline, writeToPath } from './targets';

/** What the queue tells the runner about the job it runs; the runner knows nothing else of queues. */
export interface TaskContext {
  jobId: string;
  /** When the job was created (ms since epoch): the key's day for producer-chosen taskIds. */
  createdAt: number;
  signal: AbortSignal;
  progress(progress: { bytes: number; totalBytes?: number }): void;
  /** Keeps a generated taskId on the job before any byte is written, so a retry reuses the key. */
  keepTaskId(taskId: string): Promise<void>;
  /** A store gives up on one driver and goes on to the next (for the `task.failover` event). */
  failingOver?(from: string, to: string, error: DepotError): void;
}

export interface RunnerSettings {
  defaultDriver: string;
  failover: Record<string, string[]>;
  /** Tries per driver (the first included) and the first backoff delay. */
  attempts: number;
  backoffMs: number;
  allowedPaths?: string[];
  sources: SourcePolicy;
  inlineBytes: number;
}

export type TaskResult = StoreResult | RetrieveResult | DeleteResult | CheckResult | { expired: ExpiryReport[] };

/**
 * AsyncTask.processTask: validates a task and runs it against its driver(s):
 * retries with backoff on one driver (`retryOperation`), then fails over to
 * the alternatives (`switchToAlternative`), as the contract's ERROR_POLICY says.
 */
export class TaskRunner {
  constructor(
    private readonly storage: StorageAPI,
    private readonly settings: RunnerSettings,
    private readonly logger: Logger,
  ) {}

  async processTask(operation: string, data: unknown, ctx: TaskContext): Promise<TaskResult> {
    if (operation === EXPIRE_OPERATION) return this.expire(data, ctx);
    if (!isOperation(operation)) {
      throw new DepotError('invalid_task', `unknown operation '${operation}' (one of store, retrieve, delete, check)`, { field: 'name' });
    }
    const op: Operation = operation;
    switch (op) {
      case 'store':
        return this.store(parseTask('store', data), ctx);
      case 'retrieve':
        return this.retrieve(parseTask('retrieve', data), ctx);
      case 'delete':
        return this.delete(parseTask('delete', data), ctx);
      case 'check':
        return this.check(parseTask('check', data), ctx);
    }
  }

  private async store(task: StoreTask, ctx: TaskContext): Promise<StoreResult> {
    const primary = task.driver ?? this.settings.defaultDriver;
    const drivers = [primary, ...(task.fallbacks ?? this.configuredFallbacks(primary))];
    // Unknown names fail the task before anything is read or written.
    for (const [i, name] of drivers.entries()) this.storageFor(name, i === 0 ? 'driver' : `fallbacks[${i - 1}]`);
    const taskId = task.taskId ?? newTaskId();
    if (!task.taskId) await ctx.keepTaskId(taskId);
    const key = archiveKey(taskIdTime(taskId) ?? new Date(ctx.createdAt), taskId, task.name);

    const driversTried: string[] = [];
    let attempts = 0;
    return switchToAlternative(
      drivers,
      async (driver) => {
        driversTried.push(driver);
        const { manifest } = await retryOperation(
          async () => {
            attempts++;
            return this.storeOnce(driver, key, taskId, task, ctx);
          },
          {
            attempts: this.settings.attempts,
            backoffMs: this.settings.backoffMs,
            signal: ctx.signal,
            onRetry: (error, attempt, delayMs) =>
              this.logger.warn(`store on ${driver} failed, retrying in ${delayMs} ms`, { taskId, jobId: ctx.jobId, attempt, error: error.toJSON() }),
          },
        );
        return {
          taskId,
          ref: { driver, key },
          name: manifest.name,
          size: manifest.size,
          sha256: manifest.sha256,
          storedAt: manifest.storedAt,
          metadata: manifest.metadata,
          driversTried,
          failedOver: driversTried.length > 1,
          attempts,
        };
      },
      {
        signal: ctx.signal,
        onSwitch: (from, to, failure) => {
          this.logger.warn(`failing over from ${from} to ${to}`, { taskId, jobId: ctx.jobId, error: failure.toJSON() });
          ctx.failingOver?.(from, to, failure);
        },
      },
    );
  }

  private async storeOnce(driver: string, key: string, taskId: string, task: StoreTask, ctx: TaskContext) {
    const release = await this.storage.transferSlot(driver, ctx.signal);
    try {
      return await this.transferToDriver(driver, key, taskId, task, ctx);
    } finally {
      release();
    }
  }

  private async transferToDriver(driver: string, key: string, taskId: string, task: StoreTask, ctx: TaskContext) {
    const source = await openSource(task.source, this.settings.sources, ctx.signal, task.size);
    const totalBytes = source.totalBytes ?? task.size;
    ctx.progress({ bytes: 0, totalBytes });
    this.logger.debug(`storing ${task.name} to ${driver}:${key}`, {
      taskId,
      jobId: ctx.jobId,
      source: 'url' in task.source ? describeUrl(new URL(task.source.url)) : 'path' in task.source ? task.source.path : 'inline',
    });
    return this.storageFor(driver, 'driver').store({
      key,
      taskId,
      name: task.name,
      body: source.stream,
      sha256: task.sha256,
      size: task.size,
      metadata: task.metadata,
      retainUntil: task.retainUntil,
      deleteAfter: task.deleteAfter,
      signal: ctx.signal,
      onBytes: (bytes) => ctx.progress({ bytes, totalBytes }),
    });
  }

  private async retrieve(task: RetrieveTask, ctx: TaskContext): Promise<RetrieveResult> {
    const store = this.storageFor(task.ref.driver, 'ref.driver');
    const taskId = task.taskId ?? newTaskId();
    return this.retrying(ctx, async () => {
      const release = await this.storage.transferSlot(task.ref.driver, ctx.signal);
      try {
        return await this.retrieveOnce(store, task, taskId, ctx);
      } finally {
        release();
      }
    });
  }

  private async retrieveOnce(store: ArchiveStore, task: RetrieveTask, taskId: string, ctx: TaskContext): Promise<RetrieveResult> {
    // The size is known from the manifest only once the retrieve has started.
    const known: { totalBytes?: number } = {};
    const { manifest, stream } = await store.retrieve(task.ref.key, {
      signal: ctx.signal,
      taskId,
      onBytes: (bytes) => ctx.progress({ bytes, totalBytes: known.totalBytes }),
    });
    known.totalBytes = manifest.size;
    const base = { taskId, ref: task.ref, size: manifest.size, sha256: manifest.sha256 };
    if ('path' in task.target) return { ...base, path: await writeToPath(stream, task.target.path, this.settings.allowedPaths) };
    return { ...base, base64: await readInline(stream, manifest.size, this.settings.inlineBytes) };
  }

  private async delete(task: DeleteTask, ctx: TaskContext): Promise<DeleteResult> {
    const store = this.storageFor(task.ref.driver, 'ref.driver');
    const taskId = task.taskId ?? newTaskId();
    await this.retrying(ctx, () => store.delete(task.ref.key, { taskId }));
    return { taskId, ref: task.ref, deleted: true };
  }

  private async check(task: CheckTask, ctx: TaskContext): Promise<CheckResult> {
    const result = await this.storageFor(task.driver, 'driver').check({ signal: ctx.signal });
    return { taskId: task.taskId ?? newTaskId(), ...result };
  }

  /** The scheduled automatic deletion run (not a contract task; see docs/CONTRACT.md). */
  private async expire(data: unknown, ctx: TaskContext): Promise<{ expired: ExpiryReport[] }> {
    if (typeof data !== 'object' || data === null || Object.keys(data).length > 0) {
      throw new DepotError('invalid_task', 'an expire job takes no data', { field: 'data' });
    }
    return { expired: await deleteExpired(this.storage, { logger: this.logger, signal: ctx.signal }) };
  }

  private retrying<T>(ctx: TaskContext, operation: () => Promise<T>): Promise<T> {
    return retryOperation(operation, { attempts: this.settings.attempts, backoffMs: this.settings.backoffMs, signal: ctx.signal });
  }

  /** config `failover[driver]`; own entries only, so a task's driver `constructor` finds none rather than Object's. */
  private configuredFallbacks(driver: string): string[] {
    return Object.hasOwn(this.settings.failover, driver) ? this.settings.failover[driver] : [];
  }

  private storageFor(driver: string, field: string) {
    try {
      return this.storage.getArchiveStore(driver);
    } catch (error) {
      const failure = handleError(error);
      if (failure.code === 'unknown_driver') throw new DepotError('unknown_driver', `no driver named '${driver}'`, { field });
      throw failure;
    }
  }
}
