import type { AuditEvent, AuditOperation, Catalog } from '../catalog/catalog';
import type { ErrorCode, Manifest, StorageRef, StoreTask } from '../contract';
import type { ArchiveStore } from '../storage/archive-store';
import { errorBody, retryOperation } from '../support/error-handler';
import type { Logger } from '../support/logging';

/** Who runs an operation, for its audit event: the actor, and the job (a rerun of the same job records nothing twice). */
export interface Doer {
  actor: string;
  jobId: string;
  signal?: AbortSignal;
}

/**
 * The catalog's side of every operation the runner performs (CONTRACT §8),
 * written before the operation's job completes. Each write is retried in
 * place (`queue.attempts` tries, `queue.backoffMs` backoff) and then fails
 * the task `unavailable` with origin `catalog`: never a failover, never a
 * success without its record.
 *
 * Crash ordering of a store: the pending entry is written before the driver
 * publishes, the complete entry and its audit event after, then the job
 * completes. A worker killed between publishing and cataloguing leaves a
 * pending entry and a published archive; the rerun finds its key taken by
 * its own archive (ArchiveStore settles it) and catalogues it then, once —
 * the audit event's key is the ref.
 */
export class ArchiveRecord {
  constructor(
    readonly catalog: Catalog,
    private readonly retry: { attempts: number; backoffMs: number },
    private readonly logger: Logger,
  ) {}

  /** Before a store publishes on `ref.driver`. */
  pending(ref: StorageRef, taskId: string, task: StoreTask, doer: Doer): Promise<void> {
    return this.write(`pending entry of ${ref.driver}:${ref.key}`, doer, () =>
      this.catalog.recordPending({
        ref,
        taskId,
        name: task.name,
        metadata: task.metadata ?? {},
        retainUntil: task.retainUntil,
        deleteAfter: task.deleteAfter,
      }),
    );
  }

  /** After a store published (or found its own archive in place). */
  stored(driver: string, manifest: Manifest, doer: Doer): Promise<void> {
    const ref = { driver, key: manifest.key };
    return this.write(`entry of ${driver}:${manifest.key}`, doer, () =>
      this.catalog.recordStored(driver, manifest, { ...this.event('store', ref, manifest.taskId, 'ok', doer), eventKey: `store:${driver}:${manifest.key}` }),
    );
  }

  /** A retrieve that read the archive to its end (or failed for good with `outcome`). */
  retrieved(ref: StorageRef, taskId: string, outcome: 'ok' | ErrorCode, doer: Doer): Promise<void> {
    return this.write(`retrieve of ${ref.driver}:${ref.key}`, doer, () => this.catalog.recordAudit(this.event('retrieve', ref, taskId, outcome, doer)));
  }

  /** An archive gone by `operation` (a delete, an erasure, an expiry), or found gone (`not_found`): the entry is marked deleted. */
  deleted(ref: StorageRef, taskId: string | null, operation: 'delete' | 'erase' | 'expire', outcome: 'ok' | 'not_found', doer: Doer): Promise<void> {
    return this.write(`deletion of ${ref.driver}:${ref.key}`, doer, () => this.catalog.recordDeleted(this.event(operation, ref, taskId, outcome, doer)));
  }

  /** A delete refused for good (`retention`): audited, the entry unchanged. */
  refused(ref: StorageRef, taskId: string | null, operation: 'delete' | 'erase' | 'expire', code: ErrorCode, doer: Doer): Promise<void> {
    return this.write(`refused ${operation} of ${ref.driver}:${ref.key}`, doer, () => this.catalog.recordAudit(this.event(operation, ref, taskId, code, doer)));
  }

  /** An operation that ended failed for a reason that changes no entry (a task failed by the stall limit: `internal`). */
  failed(operation: AuditOperation, ref: StorageRef, taskId: string | null, code: ErrorCode, doer: Doer): Promise<void> {
    return this.write(`failed ${operation} of ${ref.driver}:${ref.key}`, doer, () => this.catalog.recordAudit(this.event(operation, ref, taskId, code, doer)));
  }

  /**
   * A pending entry of a store that ended elsewhere or not at all: the
   * backend decides. Its manifest there (published before a failure) makes
   * the entry complete — that copy exists and must be found, by an erasure
   * too; none drops it. Best effort: a backend that does not answer (the
   * reason the store went elsewhere, perhaps) leaves the entry pending for
   * the next settling (automatic deletion's run, `depot erase`, a reindex).
   */
  async settle(store: ArchiveStore, key: string, doer: Doer): Promise<void> {
    const ref = { driver: store.name, key };
    try {
      const manifest = await store.stat(key);
      if (manifest)
        await this.catalog.recordStored(store.name, manifest, {
          // The store was a queued task's, whoever settles it now.
          ...this.event('store', ref, manifest.taskId, 'ok', { ...doer, actor: 'queue' }),
          eventKey: `store:${ref.driver}:${key}`,
        });
      else await this.catalog.dropPending(ref);
    } catch (error) {
      this.logger.warn(`pending catalog entry of ${ref.driver}:${key} left for later: ${errorBody(error).message}`, { driver: ref.driver, key });
    }
  }

  private event(operation: AuditOperation, ref: StorageRef, taskId: string | null, outcome: 'ok' | ErrorCode, doer: Doer): AuditEvent {
    return { operation, ref, taskId, outcome, actor: doer.actor, eventKey: `${operation}:${doer.jobId}:${ref.driver}:${ref.key}` };
  }

  private write(what: string, doer: Doer, operation: () => Promise<void>): Promise<void> {
    return retryOperation(operation, {
      attempts: this.retry.attempts,
      backoffMs: this.retry.backoffMs,
      signal: doer.signal,
      onRetry: (error, attempt, delayMs) =>
        this.logger.warn(`catalog: ${what} not written, retrying in ${delayMs} ms: ${error.message}`, { jobId: doer.jobId, attempt, code: error.code }),
    });
  }
}
