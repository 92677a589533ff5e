import {
  archiveKey,
  CheckResult,
  CheckTask,
  DeleteResult,
  DeleteTask,
  DepotError,
  ErrorCode,
  EXPIRE_OPERATION,
  FIXITY_OPERATION,
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
import type { Catalog } from '../catalog/catalog';
import { errorBody, handleError, retryOperation, switchToAlternative } from '../support/error-handler';
import { ignoreFailure } from '../support/ignore';
import type { Logger } from '../support/logging';
import { ArchiveRecord, Doer } from './archive-record';
import { AttemptOutcome, BreakerOpen, CircuitBreakers, NO_BREAKERS } from './breakers';
import { deleteExpired, ExpiryReport } from './expiry';
import { FixityReport, verifyArchives } from './fixity';
import type { NotificationService } from '../support/notifications';
import { describeUrl, openSource, SourcePolicy } from './sources';
import { readInline, RetrievedArchive, writeToPath } from './targets';

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
  /** Who queued the task, for the audit trail (CONTRACT §8): `queue` unless the producer said (`cli`, `http:<token name>`). */
  actor?: string;
  /** `erase`: a delete on behalf of an erasure request (`depot erase`), audited as such. */
  auditAs?: 'erase';
  /** This job ran before (a retry, or its worker died while running it): an earlier run may have done part of its work. */
  rerun?: boolean;
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
  /** config `fixity` (CONTRACT §8): the scheduled `verify` run. */
  fixity: { intervalMs: number; bytesPerSecond: number; cycleDays: number };
}

export type TaskResult = StoreResult | RetrieveResult | DeleteResult | CheckResult | { expired: ExpiryReport[] } | FixityReport;

/**
 * AsyncTask.processTask: validates a task and runs it against its driver(s):
 * retries with backoff on one driver (`retryOperation`), then fails over to
 * the alternatives (`switchToAlternative`), as the contract's ERROR_POLICY says.
 */
export class TaskRunner {
  private readonly record: ArchiveRecord;

  constructor(
    private readonly storage: StorageAPI,
    private readonly settings: RunnerSettings,
    private readonly logger: Logger,
    catalog: Catalog,
    /** Webhooks (`archive.corrupt` from the fixity run); none without. */
    private readonly notifications?: NotificationService,
    /** The drivers' circuit breakers (CONTRACT §10); none without. */
    private readonly breakers: CircuitBreakers = NO_BREAKERS,
  ) {
    this.record = new ArchiveRecord(catalog, settings, logger);
  }

  async processTask(operation: string, data: unknown, ctx: TaskContext): Promise<TaskResult> {
    if (operation === EXPIRE_OPERATION) return this.expire(data, ctx);
    if (operation === FIXITY_OPERATION) return this.verify(data, ctx);
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
    const doer = this.doer(ctx);
    let attempts = 0;
    const stored = switchToAlternative(
      drivers,
      async (driver, admission) => {
        driversTried.push(driver);
        // Before anything is published there (CONTRACT §8); the catalog's own retries, never a failover.
        await this.record.pending({ driver, key }, taskId, task, doer);
        const { manifest } = await retryOperation(
          async (attempt) => {
            // A retry asks the breaker again: once it has opened (this store's failures may have opened it), the store moves on.
            const probe = attempt === 1 ? admission.probe : await this.admitAgain(driver);
            attempts++;
            try {
              const result = await this.storeOnce(driver, key, taskId, task, ctx);
              await this.breakers.record(driver, 'success', probe);
              return result;
            } catch (error) {
              await this.breakers.record(driver, attemptOutcome(error, ctx.signal), probe);
              throw error;
            }
          },
          {
            attempts: this.settings.attempts,
            backoffMs: this.settings.backoffMs,
            signal: ctx.signal,
            onRetry: (error, attempt, delayMs) =>
              this.logger.warn(`store on ${driver} failed, retrying in ${delayMs} ms`, { taskId, jobId: ctx.jobId, attempt, error: error.toJSON() }),
          },
        );
        await this.record.stored(driver, manifest, doer);
        return {
          taskId,
          ref: { driver, key },
          name: manifest.name,
          size: manifest.size,
          sha256: manifest.sha256,
          storedAt: manifest.storedAt,
          metadata: manifest.metadata,
          driversTried,
          // A primary skipped for its open breaker is not among driversTried, but the store did fail over.
          failedOver: driver !== primary,
          attempts,
        };
      },
      {
        signal: ctx.signal,
        breakers: this.breakers,
        onSwitch: (from, to, failure) => {
          this.logger.warn(`failing over from ${from} to ${to}`, { taskId, jobId: ctx.jobId, error: failure.toJSON() });
          ctx.failingOver?.(from, to, failure);
        },
      },
    );
    // The pending entries of drivers the store left (or, when it failed, all it tried) are settled by what those
    // backends hold — beside the task, not before its end: a backend it left may take its whole timeout to answer.
    const settle = (ended: string | undefined) => {
      const left = driversTried.filter((driver) => driver !== ended);
      if (!left.length || ctx.signal.aborted) return;
      void ignoreFailure(
        Promise.all(left.map((driver) => this.record.settle(this.storage.getArchiveStore(driver), key, { ...doer, signal: undefined }))),
        'settling is best effort: a pending entry left now is settled by the next expiry run, depot erase or a reindex',
      );
    };
    try {
      const result = await stored;
      settle(result.ref.driver);
      return result;
    } catch (error) {
      settle(undefined);
      throw error;
    }
  }

  /** Whether a retry on `driver` may go ahead, and as its probe; BreakerOpen once its breaker has opened. */
  private async admitAgain(driver: string): Promise<boolean> {
    const admission = await this.breakers.admit(driver);
    if (!admission.admitted) throw new BreakerOpen(driver, admission.retryAt);
    return admission.probe;
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
      // A download's Content-Length is the server's word, not a length known in advance.
      sourceSize: 'url' in task.source ? undefined : source.totalBytes,
      metadata: task.metadata,
      retainUntil: task.retainUntil,
      deleteAfter: task.deleteAfter,
      signal: ctx.signal,
      onBytes: (bytes) => ctx.progress({ bytes, totalBytes }),
      file: source.file,
    });
  }

  private async retrieve(task: RetrieveTask, ctx: TaskContext): Promise<RetrieveResult> {
    const store = this.storageFor(task.ref.driver, 'ref.driver');
    const taskId = task.taskId ?? newTaskId();
    const doer = this.doer(ctx);
    let result: RetrieveResult;
    try {
      result = await this.retrying(ctx, async () => {
        const release = await this.storage.transferSlot(task.ref.driver, ctx.signal);
        try {
          return await this.retrieveOnce(store, task, taskId, ctx);
        } finally {
          release();
        }
      });
    } catch (error) {
      await this.auditFailure(error, (code) => this.record.retrieved(task.ref, taskId, code, doer));
      throw error;
    }
    // Read to its end and verified: in the audit trail before the job completes (CONTRACT §8).
    await this.record.retrieved(task.ref, taskId, 'ok', doer);
    return result;
  }

  private async retrieveOnce(store: ArchiveStore, task: RetrieveTask, taskId: string, ctx: TaskContext): Promise<RetrieveResult> {
    if ('path' in task.target) {
      const options = { signal: ctx.signal, taskId };
      const archive: RetrievedArchive = {
        open: () => store.retrieve(task.ref.key, options),
        writeInto: (file) => store.retrieveInto(task.ref.key, file, { ...options, onBytes: (bytes, totalBytes) => ctx.progress({ bytes, totalBytes }) }),
      };
      const { path, manifest } = await writeToPath(archive, task.target.path, this.settings.allowedPaths);
      return { taskId, ref: task.ref, size: manifest.size, sha256: manifest.sha256, path };
    }
    // The size is known from the manifest only once the retrieve has started.
    const known: { totalBytes?: number } = {};
    const { manifest, stream } = await store.retrieve(task.ref.key, {
      signal: ctx.signal,
      taskId,
      onBytes: (bytes) => ctx.progress({ bytes, totalBytes: known.totalBytes }),
    });
    known.totalBytes = manifest.size;
    return { taskId, ref: task.ref, size: manifest.size, sha256: manifest.sha256, base64: await readInline(stream, manifest.size, this.settings.inlineBytes) };
  }

  private async delete(task: DeleteTask, ctx: TaskContext): Promise<DeleteResult> {
    const store = this.storageFor(task.ref.driver, 'ref.driver');
    const taskId = task.taskId ?? newTaskId();
    const doer = this.doer(ctx);
    const operation = ctx.auditAs ?? 'delete';
    let tries = 0;
    try {
      await this.retrying(ctx, () => (tries++, store.delete(task.ref.key, { taskId })));
    } catch (error) {
      // Gone after an earlier try of this task — whose delete may have landed before its answer was lost (a timeout,
      // a worker killed): the delete asked for is done, and the producer is told so rather than not_found.
      if (error instanceof DepotError && error.code === 'not_found' && (tries > 1 || ctx.rerun)) {
        await this.record.deleted(task.ref, taskId, operation, 'ok', doer);
        return { taskId, ref: task.ref, deleted: true };
      }
      // Gone already on the first try: deleted behind depot's back. The catalog learns it is gone; the task fails not_found.
      await this.auditFailure(error, (code) =>
        code === 'not_found'
          ? this.record.deleted(task.ref, taskId, operation, 'not_found', doer)
          : this.record.refused(task.ref, taskId, operation, code, doer),
      );
      throw error;
    }
    await this.record.deleted(task.ref, taskId, operation, 'ok', doer);
    return { taskId, ref: task.ref, deleted: true };
  }

  /**
   * A task BullMQ failed without running it: its workers died while running
   * it more often than the stall limit allows (CONTRACT §10). What its runs
   * left in the catalog is settled as a failed run's would be, and the
   * failure is audited (`internal`, as its `task.failed` says), so the record
   * of the task does not end with a pending entry or nothing. A store whose
   * archive a run did publish is catalogued complete instead (the backend
   * decides, as ever). Best effort: a catalog or backend that does not answer
   * leaves the pending entries to the next settling (expiry run, erase, reindex).
   */
  async abandoned(operation: string, data: unknown, ctx: Pick<TaskContext, 'jobId' | 'createdAt' | 'actor' | 'auditAs'>): Promise<void> {
    if (!isOperation(operation) || operation === 'check') return;
    const doer: Doer = { actor: ctx.actor ?? 'queue', jobId: ctx.jobId };
    const failed = (what: string) => (error: unknown) => this.logger.warn(`catalog: ${what} not recorded: ${errorBody(error).message}`, { jobId: ctx.jobId });
    let task;
    try {
      task = parseTask(operation, data);
    } catch {
      return; // never ran: nothing of it is in the catalog
    }
    if (operation === 'store') {
      const store = task as StoreTask;
      // The taskId is kept on the job before a run writes anything: without one, no run got as far as the catalog.
      if (!store.taskId) return;
      const key = archiveKey(taskIdTime(store.taskId) ?? new Date(ctx.createdAt), store.taskId, store.name);
      const primary = store.driver ?? this.settings.defaultDriver;
      const drivers = [primary, ...(store.fallbacks ?? this.configuredFallbacks(primary))].filter((d) => this.storage.driverNames().includes(d));
      let published = false;
      for (const driver of drivers) {
        const archiveStore = this.storage.getArchiveStore(driver);
        const manifest = await archiveStore.stat(key).catch(() => null);
        if (manifest) published = true;
        await this.record.settle(archiveStore, key, doer);
      }
      if (!published && drivers.length)
        await this.record.failed('store', { driver: primary, key }, store.taskId, 'internal', doer).catch(failed(`the failed store of ${store.taskId}`));
      return;
    }
    const { ref, taskId } = task as RetrieveTask | DeleteTask;
    const audited = operation === 'retrieve' ? 'retrieve' : (ctx.auditAs ?? 'delete');
    await this.record.failed(audited, ref, taskId ?? null, 'internal', doer).catch(failed(`the failed ${operation} of ${ref.driver}:${ref.key}`));
  }

  /**
   * A retrieve or delete that failed for good with a code about the archive
   * (`not_found`, `integrity`, `retention`) is audited with that code; other
   * failures are the backend's or the task's, not events of the archive. The
   * task fails anyway: an audit write that fails then is logged, not thrown.
   */
  private async auditFailure(error: unknown, write: (code: ErrorCode) => Promise<void>): Promise<void> {
    const failure = handleError(error);
    if (!(['not_found', 'integrity', 'retention'] as ErrorCode[]).includes(failure.code)) return;
    await write(failure.code).catch((e: unknown) => this.logger.warn(`catalog: the failed operation not audited: ${errorBody(e).message}`));
  }

  private doer(ctx: TaskContext): Doer {
    return { actor: ctx.actor ?? 'queue', jobId: ctx.jobId, signal: ctx.signal };
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
    return { expired: await deleteExpired(this.storage, this.record, { logger: this.logger, signal: ctx.signal }) };
  }

  /**
   * The scheduled fixity run (CONTRACT §8; not a contract task): archives not
   * verified within `fixity.cycleDays`, oldest verification first, at
   * `fixity.bytesPerSecond`, until none is left or the run has used nine
   * tenths of its interval (the next run takes up where it stopped).
   */
  private async verify(data: unknown, ctx: TaskContext): Promise<FixityReport> {
    if (typeof data !== 'object' || data === null || Object.keys(data).length > 0) {
      throw new DepotError('invalid_task', 'a verify job takes no data', { field: 'data' });
    }
    const { fixity } = this.settings;
    const { notifications } = this;
    const started = Date.now();
    return verifyArchives(this.storage, this.record.catalog, {
      dueBefore: new Date(started - fixity.cycleDays * 86_400_000),
      bytesPerSecond: fixity.bytesPerSecond,
      deadline: fixity.intervalMs > 0 ? started + fixity.intervalMs * 0.9 : undefined,
      actor: 'fixity',
      logger: this.logger,
      signal: ctx.signal,
      retry: this.settings,
      onCorrupt: notifications ? (notification) => notifications.notifyArchive(notification) : undefined,
    });
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

/**
 * What a store attempt's failure says about its driver's backend (CONTRACT
 * §10): `unavailable` from the backend counts toward its breaker; the
 * catalog's (origin `catalog`), an abort (shutdown), a breaker's own refusal
 * and every other code do not.
 */
export function attemptOutcome(error: unknown, signal: AbortSignal): AttemptOutcome {
  if (signal.aborted) return 'neutral';
  const failure = handleError(error);
  return failure.code === 'unavailable' && failure.origin !== 'catalog' && !(failure instanceof BreakerOpen) ? 'unavailable' : 'neutral';
}
