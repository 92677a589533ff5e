import type { Metadata } from '../contract';
import type { CatalogEntry, VerifyStatus } from './catalog';

/**
 * An archive as `depot list --json`, `GET /v1/archives` and
 * `ArchivingManager.find` show it (CONTRACT §8): the optional fields only when
 * they are set, `verifyStatus` only once the archive has been verified.
 */
export type ListedArchive = Omit<CatalogEntry, 'taskId' | 'lastVerifiedAt' | 'verifyStatus'> & { verifyStatus?: VerifyStatus };

export function listedArchive(entry: CatalogEntry): ListedArchive {
  return {
    ref: entry.ref,
    name: entry.name,
    size: entry.size,
    sha256: entry.sha256,
    storedAt: entry.storedAt,
    metadata: entry.metadata,
    ...(entry.retainUntil !== undefined ? { retainUntil: entry.retainUntil } : {}),
    ...(entry.deleteAfter !== undefined ? { deleteAfter: entry.deleteAfter } : {}),
    ...(entry.deletedAt !== undefined ? { deletedAt: entry.deletedAt } : {}),
    ...(entry.verifyStatus !== null ? { verifyStatus: entry.verifyStatus } : {}),
  };
}

/** `{ userId: '34', userIds: ['1', '2'] }` as the pairs a query must all match. */
export function metadataPairs(metadata: Metadata): Array<[string, string]> {
  return Object.entries(metadata).flatMap(([k, v]) => (typeof v === 'string' ? [[k, v] as [string, string]] : v.map((x): [string, string] => [k, x])));
}
