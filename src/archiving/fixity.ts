import type { Catalog, VerifyStatus } from '../catalog/catalog';
import type { StorageRef } from '../contract';
import type { StorageAPI } from '../storage/api';
import { ByteRate } from '../storage/byte-rate';
import { errorBody, retryOperation } from '../support/error-handler';
import type { Logger } from '../support/logging';
import type { ArchiveNotification } from '../support/notifications';

/** What a fixity run found (`depot verify --json`; the scheduled `verify` job's result). */
export interface FixityReport {
  /** Archives read again. */
  verified: number;
  /** Of them, intact. */
  ok: number;
  corrupt: StorageRef[];
  missing: StorageRef[];
}

export interface FixityOptions {
  /** Archives last verified (or, never verified, stored) before this moment are due. */
  dueBefore: Date;
  driver?: string;
  /** At most this many archives (`--sample N`). */
  limit?: number;
  /** Pace of the reads, shared by the whole run (config `fixity.bytesPerSecond`). */
  bytesPerSecond: number;
  /** No archive is started after this moment (a scheduled run ends before the next one is due). */
  deadline?: number;
  /** `fixity` (the schedule) or `cli`. */
  actor: string;
  logger: Logger;
  signal?: AbortSignal;
  /** `archive.corrupt` for each archive found corrupt or missing (webhooks). */
  onCorrupt?: (notification: ArchiveNotification) => Promise<void>;
  /** Tries of each catalog write (config `queue.attempts`, `queue.backoffMs`). */
  retry?: { attempts: number; backoffMs: number };
}

const PAGE = 100;
const OUTCOME = { ok: 'ok', corrupt: 'integrity', missing: 'not_found' } as const;

/**
 * Fixity (CONTRACT §8): archives read again, oldest verification first, their
 * sha256 and size compared with the manifest and with the catalog's record;
 * each result recorded (entry and audit trail: `verify`, outcome `ok`,
 * `integrity` or `not_found`). An archive found corrupt or missing is logged
 * as an error and announced (`archive.corrupt`). An archive the backend
 * cannot be asked about now is left for the next run, unjudged.
 */
export async function verifyArchives(storage: StorageAPI, catalog: Catalog, options: FixityOptions): Promise<FixityReport> {
  const report: FixityReport = { verified: 0, ok: 0, corrupt: [], missing: [] };
  const rate = new ByteRate(options.bytesPerSecond);
  const configured = new Set(storage.driverNames());
  const retry = options.retry ?? { attempts: 3, backoffMs: 1000 };
  let unreachable = 0;
  for (let after: string | undefined; ;) {
    const due = await catalog.verificationDue(options.dueBefore, PAGE, { driver: options.driver, after });
    if (!due.length) break;
    after = due[due.length - 1].position;
    for (const { entry } of due) {
      options.signal?.throwIfAborted();
      if ((options.limit !== undefined && report.verified >= options.limit) || (options.deadline !== undefined && Date.now() >= options.deadline))
        return done();
      if (!configured.has(entry.ref.driver)) continue;
      let status: VerifyStatus;
      let foundSha256: string | null;
      try {
        const found = await storage.getArchiveStore(entry.ref.driver).verify(entry.ref.key, entry, { rate, signal: options.signal });
        status = found.status;
        foundSha256 = found.foundSha256;
        if (found.problem) options.logger.error(`fixity: ${entry.ref.driver}:${entry.ref.key} is ${status}: ${found.problem}`, { ...entry.ref, status });
        else if (status === 'missing')
          options.logger.error(`fixity: ${entry.ref.driver}:${entry.ref.key} is missing: the backend has no archive there`, { ...entry.ref, status });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        unreachable++;
        options.logger.warn(`fixity: ${entry.ref.driver}:${entry.ref.key} not verified now: ${errorBody(error).message}`, { ...entry.ref });
        continue;
      }
      const at = new Date();
      await retryOperation(
        () =>
          catalog.recordVerification(status, {
            operation: 'verify',
            taskId: entry.taskId,
            ref: entry.ref,
            outcome: OUTCOME[status],
            actor: options.actor,
            eventKey: `verify:${entry.ref.driver}:${entry.ref.key}:${at.getTime()}`,
            at,
          }),
        { ...retry, signal: options.signal },
      );
      report.verified++;
      if (status === 'ok') {
        report.ok++;
        continue;
      }
      (status === 'corrupt' ? report.corrupt : report.missing).push(entry.ref);
      await options
        .onCorrupt?.({
          event: 'archive.corrupt',
          ref: entry.ref,
          taskId: entry.taskId,
          expectedSha256: entry.sha256,
          foundSha256,
          verifiedAt: at.toISOString(),
          timestamp: new Date().toISOString(),
        })
        .catch((error: unknown) =>
          options.logger.error(`fixity: archive.corrupt for ${entry.ref.driver}:${entry.ref.key} not queued: ${errorBody(error).message}`),
        );
    }
  }
  return done();

  function done(): FixityReport {
    if (unreachable) options.logger.warn(`fixity: ${unreachable} archives could not be read now; they stay first in line`);
    options.logger.info(`fixity: ${report.verified} verified, ${report.ok} ok, ${report.corrupt.length} corrupt, ${report.missing.length} missing`, {
      verified: report.verified,
      ok: report.ok,
      corrupt: report.corrupt.length,
      missing: report.missing.length,
    });
    return report;
  }
}
