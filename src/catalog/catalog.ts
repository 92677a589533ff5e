import type { ErrorCode, Manifest, Metadata, StorageRef } from '../contract';

/**
 * The catalog (CONTRACT §8): a queryable record of every archive and of every
 * operation on it — the design's LoggingMechanism ("what data was stored,
 * when, and where"). The manifests beside the archives stay the truth; the
 * catalog is rebuilt from them at any time (`depot reindex`). One interface,
 * two databases: SQLite for one host (`sqlite/`), PostgreSQL for many workers
 * on many hosts (`postgres/`); both run the same SQL (`sql-catalog.ts`).
 */

/** Who did it: the audit trail's `actor`. `http:<token name>` for the task API (§9: `token-<index>` for an unnamed token). */
export type Actor = 'queue' | 'cli' | 'expiry' | 'fixity' | `http:${string}`;

/** What the audit trail records (§8). */
export const AUDIT_OPERATIONS = ['store', 'retrieve', 'delete', 'expire', 'erase', 'verify'] as const;
export type AuditOperation = (typeof AUDIT_OPERATIONS)[number];

/** The result of an archive's last fixity check. */
export type VerifyStatus = 'ok' | 'corrupt' | 'missing';

/** A catalog entry as `depot list --json`, `GET /v1/archives` and `ArchivingManager.find` show it. */
export interface CatalogEntry {
  ref: StorageRef;
  taskId: string;
  name: string;
  size: number;
  sha256: string;
  storedAt: string;
  metadata: Metadata;
  retainUntil?: string;
  deleteAfter?: string;
  deletedAt?: string;
  lastVerifiedAt?: string;
  verifyStatus: VerifyStatus | null;
}

/** An audit trail entry (`depot audit --json`, `GET /v1/audit`). */
export interface AuditEntry {
  at: string;
  operation: AuditOperation;
  taskId: string | null;
  ref: StorageRef;
  /** `ok`, or the error code the operation ended with. */
  outcome: 'ok' | ErrorCode;
  actor: string;
}

/**
 * An audit event to record. `eventKey` makes the write idempotent: a rerun of
 * the same operation (a task run again after its worker died) records it once.
 */
export interface AuditEvent {
  operation: AuditOperation;
  taskId: string | null;
  ref: StorageRef;
  outcome: 'ok' | ErrorCode;
  actor: string;
  eventKey: string;
  /** Defaults to now. */
  at?: Date;
}

/** What a store knows before it publishes: the pending entry (§8: "a pending entry before it publishes"). */
export interface PendingArchive {
  ref: StorageRef;
  taskId: string;
  name: string;
  metadata: Metadata;
  retainUntil?: string;
  deleteAfter?: string;
}

export interface Page<T> {
  items: T[];
  /** Opaque; null on the last page. */
  next: string | null;
}

export interface ArchiveQuery {
  driver?: string;
  /** Every pair must match: a value equal to it, or a list holding it. */
  metadata?: ReadonlyArray<readonly [string, string]>;
  /** Only deleted archives (true) or only archives still there (false, the default). */
  deleted?: boolean;
  limit?: number;
  cursor?: string | null;
}

export interface AuditQuery {
  taskId?: string;
  driver?: string;
  key?: string;
  /** ISO 8601: entries at or after this moment. */
  since?: string;
  limit?: number;
  cursor?: string | null;
}

/** An entry with the position it was read at, for reading on after it. */
export interface Positioned {
  entry: CatalogEntry;
  position: string;
}

/** Figures for /metrics, per driver, read from the catalog (so every process sees the same). */
export interface CatalogStats {
  archives: Array<{ driver: string; archives: number; bytes: number }>;
  /** Archives still there by the result of their last verification. */
  verified: Array<{ driver: string; status: VerifyStatus; archives: number }>;
  /** Since the catalog was created: deletions by reason, verifications by outcome. */
  counters: Array<{ name: CounterName; driver: string; value: number }>;
}

export const COUNTER_NAMES = ['deleted', 'expired', 'erased', 'verified_ok', 'verified_corrupt', 'verified_missing'] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];

/** One manifest's effect on the catalog during a reindex. */
export type ReindexOutcome = 'added' | 'updated' | 'unchanged';

/** The catalog's operations. Every write is idempotent; every method may reject with `unavailable` (origin `catalog`). */
export interface Catalog {
  /** Where it is, with credentials masked: `sqlite:/srv/depot/data/catalog.sqlite`, `postgres://depot:***@db/depot`. */
  readonly location: string;
  /** Rows the catalog's queries have read since it was opened (tests count what an operation reads). */
  readonly rowsRead: number;

  // --- writes of operations, each before its job completes ---
  /** Before a store publishes: the entry, pending. Does nothing when the ref is catalogued already. */
  recordPending(pending: PendingArchive): Promise<void>;
  /** After a store published (or found its own archive there): the entry, complete, and its audit event — one transaction. */
  recordStored(driver: string, manifest: Manifest, event: AuditEvent): Promise<void>;
  /** An archive gone (deleted, expired, erased, or found missing by a delete): marked deleted, with its audit event. */
  recordDeleted(event: AuditEvent): Promise<void>;
  /** An audit event that changes no entry (a retrieve; a refused delete). */
  recordAudit(event: AuditEvent): Promise<void>;
  /** A fixity check's result on the entry, and its audit event. */
  recordVerification(status: VerifyStatus, event: AuditEvent): Promise<void>;
  /** A pending entry whose archive is not there (its store failed before publishing, or failed over): removed. */
  dropPending(ref: StorageRef): Promise<void>;

  // --- reads ---
  get(ref: StorageRef): Promise<CatalogEntry | null>;
  /** Complete entries only, in the order they were first catalogued. */
  findArchives(query: ArchiveQuery): Promise<Page<CatalogEntry>>;
  findAudit(query: AuditQuery): Promise<Page<AuditEntry>>;
  /** Entries past their deleteAfter and not deleted, soonest first, after `after` (a position this returned). */
  due(now: Date, limit: number, after?: string): Promise<Positioned[]>;
  /** Entries not verified since `before` (or stored before it, when never verified), oldest verification first. */
  verificationDue(before: Date, limit: number, options?: { driver?: string; after?: string }): Promise<Positioned[]>;
  /** Pending entries matching the query's metadata (all when none), for settling them against their backends. */
  pending(query: { metadata?: ArchiveQuery['metadata']; recordedBefore?: Date; limit: number; after?: string }): Promise<Positioned[]>;
  stats(): Promise<CatalogStats>;

  // --- the reindex (§8) and other state kept in the catalog ---
  /** A named JSON value kept in the catalog (the reindex's progress); null when never set. */
  state<T>(name: string): Promise<T | null>;
  /** Sets a named value from its current one, in one transaction; `update` may run more than once and must only compute. */
  updateState<T>(name: string, update: (current: T | null) => T): Promise<T>;
  /** Upserts a batch of manifests from one driver as seen by reindex generation `generation`. */
  reindexBatch(driver: string, manifests: Manifest[], generation: number): Promise<ReindexOutcome[]>;
  /** Entries of `driver` (complete or pending) not seen by generation `generation` and last written before `before`. */
  unseen(driver: string, generation: number, before: Date, limit: number, after?: string): Promise<Array<Positioned & { pending: boolean }>>;
  /** Marks an entry whose archive the backend no longer has (drift found by a reindex): verifyStatus `missing`, no audit event. */
  markMissing(ref: StorageRef): Promise<void>;
  /** Refreshes the query planner's statistics after many rows changed at once (a reindex): a planner that believes the tables empty picks scans. */
  optimize(): Promise<void>;

  close(): Promise<void>;
}
