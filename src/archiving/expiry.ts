import type { StorageAPI } from '../storage/api';
import { errorBody } from '../support/error-handler';
import type { Logger } from '../support/logging';

export interface ExpiryReport {
  driver: string;
  /** Archives whose deleteAfter had passed and that are now gone. */
  deleted: number;
  /** Past deleteAfter but still under retention: kept, and tried again next time. */
  retained: number;
  failed: number;
}

/**
 * Automatic deletion (GDPR): every archive whose `deleteAfter` has passed is
 * deleted, unless its retention still holds. Each deletion is an ordinary
 * delete, so it is audited like one.
 */
export async function deleteExpired(storage: StorageAPI, options: { now?: Date; logger: Logger; signal?: AbortSignal }): Promise<ExpiryReport[]> {
  const now = options.now ?? new Date();
  const reports: ExpiryReport[] = [];
  for (const driver of storage.driverNames()) {
    const store = storage.getArchiveStore(driver);
    const report: ExpiryReport = { driver, deleted: 0, retained: 0, failed: 0 };
    reports.push(report);
    if (!store.driver.capabilities.list) continue;
    for await (const manifest of store.list('')) {
      options.signal?.throwIfAborted();
      if (!manifest.deleteAfter || Date.parse(manifest.deleteAfter) > now.getTime()) continue;
      if (manifest.retainUntil && Date.parse(manifest.retainUntil) > now.getTime()) {
        report.retained++;
        continue;
      }
      try {
        await store.delete(manifest.key, { taskId: manifest.taskId, now });
        report.deleted++;
      } catch (error) {
        report.failed++;
        options.logger.warn(`expiry: deleting ${driver}:${manifest.key} failed`, { driver, key: manifest.key, error: errorBody(error) });
      }
    }
    if (report.deleted || report.retained || report.failed) options.logger.info(`expiry on ${driver}`, { ...report });
  }
  return reports;
}
