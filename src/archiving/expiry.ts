import { assertFilled } from '../catalog/reindex';
import type { StorageAPI } from '../storage/api';
import { errorBody, handleError } from '../support/error-handler';
import type { Logger } from '../support/logging';
import type { ArchiveRecord, Doer } from './archive-record';

export interface ExpiryReport {
  driver: string;
  /** Archives whose deleteAfter had passed and that are now gone. */
  deleted: number;
  /** Past deleteAfter but still under retention: kept, and tried again next time. */
  retained: number;
  failed: number;
}

/** Due entries read per catalog query. */
const DUE_PAGE = 200;
/** Pending entries older than this are settled by each run (their stores have long ended, or died). */
const PENDING_AGE_MS = 15 * 60_000;
const PENDING_PER_RUN = 1000;

const EXPIRY: Doer = { actor: 'expiry', jobId: 'expiry' };

/**
 * Automatic deletion (GDPR, CONTRACT §8): the catalog names the archives
 * whose `deleteAfter` has passed — an index range, so a run reads what is
 * due and nothing else, however many archives are stored — and each is
 * deleted unless its retention still holds. Each deletion goes through
 * ArchiveStore (the manifest's retention is checked again, on the backend:
 * it is the truth) and is recorded (`expire`, actor `expiry`) before the run
 * ends. Refused while the catalog has not yet been filled from the manifests.
 */
export async function deleteExpired(
  storage: StorageAPI,
  record: ArchiveRecord,
  options: { now?: Date; logger: Logger; signal?: AbortSignal },
): Promise<ExpiryReport[]> {
  const now = options.now ?? new Date();
  const catalog = record.catalog;
  await assertFilled(catalog, 'automatic deletion');
  const configured = storage.driverNames();
  const reports = new Map(configured.map((driver): [string, ExpiryReport] => [driver, { driver, deleted: 0, retained: 0, failed: 0 }]));
  const doer = { ...EXPIRY, signal: options.signal };

  for (let after: string | undefined; ;) {
    const due = await catalog.due(now, DUE_PAGE, after);
    if (!due.length) break;
    after = due[due.length - 1].position;
    for (const { entry } of due) {
      options.signal?.throwIfAborted();
      const report = reports.get(entry.ref.driver);
      if (!report) {
        options.logger.warn(`expiry: ${entry.ref.driver}:${entry.ref.key} is due, but no driver ${entry.ref.driver} is configured`, { ...entry.ref });
        continue;
      }
      if (entry.retainUntil && Date.parse(entry.retainUntil) > now.getTime()) {
        report.retained++;
        continue;
      }
      try {
        await storage.getArchiveStore(entry.ref.driver).delete(entry.ref.key, { taskId: entry.taskId, now });
        await record.deleted(entry.ref, entry.taskId, 'expire', 'ok', doer);
        report.deleted++;
      } catch (error) {
        const failure = handleError(error);
        if (failure.code === 'not_found') {
          // Gone already (behind depot's back, or a run that died before recording it): the catalog learns so.
          await record.deleted(entry.ref, entry.taskId, 'expire', 'not_found', doer);
          report.deleted++;
        } else if (failure.code === 'retention') {
          // The manifest (the truth) holds a retention the catalog lacked.
          await record.refused(entry.ref, entry.taskId, 'expire', 'retention', doer);
          report.retained++;
        } else {
          if (failure.origin === 'catalog') throw failure;
          report.failed++;
          options.logger.warn(`expiry: deleting ${entry.ref.driver}:${entry.ref.key} failed`, { ...entry.ref, error: errorBody(error) });
        }
      }
    }
  }
  await settlePending(storage, record, now, options.logger);
  for (const report of reports.values())
    if (report.deleted || report.retained || report.failed) options.logger.info(`expiry on ${report.driver}`, { ...report });
  return [...reports.values()];
}

/** Pending entries whose stores ended long ago without completing them: settled by what the backend holds. */
async function settlePending(storage: StorageAPI, record: ArchiveRecord, now: Date, logger: Logger): Promise<void> {
  const stale = await record.catalog.pending({ recordedBefore: new Date(now.getTime() - PENDING_AGE_MS), limit: PENDING_PER_RUN });
  const configured = new Set(storage.driverNames());
  for (const { entry } of stale) {
    if (configured.has(entry.ref.driver)) await record.settle(storage.getArchiveStore(entry.ref.driver), entry.ref.key, EXPIRY);
  }
  if (stale.length) logger.info(`expiry: ${stale.length} pending catalog entries settled`);
}
