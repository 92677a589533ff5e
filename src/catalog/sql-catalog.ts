import { DepotError, Manifest, Metadata, StorageRef } from '../contract';
import type {
  ArchiveQuery,
  AuditEntry,
  AuditEvent,
  AuditOperation,
  AuditQuery,
  Catalog,
  CatalogEntry,
  CatalogStats,
  CounterName,
  Page,
  PendingArchive,
  Positioned,
  ReindexOutcome,
  VerifyStatus,
} from './catalog';
import { decodeCursor, encodeCursor } from './cursor';
import { sameMetadata } from '../storage/manifest';
import { placeholders, Row, SqlDatabase, SqlSession, SqlValue, valuesList } from './sql';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

/** Rows of metadata inserted per statement (3 values each): well inside both databases' limits on parameters. */
const META_ROWS_PER_STATEMENT = 2000;
/** Operations' writes committed in one transaction at most (group commit). */
const WRITES_PER_COMMIT = 64;
/** Keys looked up per statement in a reindex batch. */
const KEYS_PER_STATEMENT = 500;

const LIVE = `a.deleted_ms IS NULL AND a.state = 'stored'`;

const ARCHIVE_COLUMNS = [
  'driver',
  'key',
  'task_id',
  'name',
  'state',
  'size',
  'sha256',
  'stored_at',
  'stored_ms',
  'metadata',
  'retain_until',
  'retain_until_ms',
  'delete_after',
  'delete_after_ms',
  'checked_ms',
  'seen_gen',
  'recorded_ms',
] as const;

const INSERT_ARCHIVE = `INSERT INTO depot_archives (${ARCHIVE_COLUMNS.join(', ')})`;
/** A store's pending entry: added once; an earlier attempt's entry stays as it is. */
const ON_CONFLICT_PENDING = `ON CONFLICT (driver, key) DO NOTHING RETURNING id`;
/** A store's complete entry: what the manifest says, over the pending entry (or a deleted one) of the same ref. */
const ON_CONFLICT_STORED = `ON CONFLICT (driver, key) DO UPDATE SET
    task_id = excluded.task_id, name = excluded.name, state = 'stored', size = excluded.size, sha256 = excluded.sha256,
    stored_at = excluded.stored_at, stored_ms = excluded.stored_ms, metadata = excluded.metadata,
    retain_until = excluded.retain_until, retain_until_ms = excluded.retain_until_ms,
    delete_after = excluded.delete_after, delete_after_ms = excluded.delete_after_ms,
    deleted_at = NULL, deleted_ms = NULL,
    checked_ms = CASE WHEN depot_archives.last_verified_at IS NULL THEN excluded.checked_ms ELSE depot_archives.checked_ms END,
    recorded_ms = excluded.recorded_ms
  RETURNING id`;
const ARCHIVE_VALUES = `VALUES (${placeholders(ARCHIVE_COLUMNS.length)})`;
const INSERT_PENDING = `${INSERT_ARCHIVE} ${ARCHIVE_VALUES} ${ON_CONFLICT_PENDING}`;
const UPSERT_STORED = `${INSERT_ARCHIVE} ${ARCHIVE_VALUES} ${ON_CONFLICT_STORED}`;
const AUDIT_COLUMNS = ['at', 'at_ms', 'operation', 'task_id', 'driver', 'key', 'outcome', 'actor', 'event_key'] as const;
const INSERT_AUDIT = `INSERT INTO depot_audit (${AUDIT_COLUMNS.join(', ')}) VALUES (${placeholders(AUDIT_COLUMNS.length)})
  ON CONFLICT (event_key) DO NOTHING`;

/*
 * PostgreSQL: the pending entries of every store waiting to be written are
 * one statement, and their complete entries (with their audit rows) one
 * statement (data-modifying WITH, which SQLite does not have), their rows
 * passed as one JSON array: one round trip, one plan and, when nothing else
 * waits, one commit for all of them, without BEGIN and COMMIT around it.
 * Each statement on its own cost the server its CPU per store on the same
 * cores as the worker (docs/BENCHMARKS.md, "The catalog"). The complete
 * entries' metadata replace exactly the rows that differ (rows deleted and
 * added in one statement must not overlap).
 */
const BIGINT_COLUMNS: ReadonlySet<string> = new Set([
  'size',
  'stored_ms',
  'retain_until_ms',
  'delete_after_ms',
  'checked_ms',
  'seen_gen',
  'recorded_ms',
  'at_ms',
]);
/** The archive columns, then `meta`, then the audit columns prefixed `audit_`, as json_to_recordset reads them. */
const INPUT_COLUMNS = [
  ...ARCHIVE_COLUMNS.map((c) => `${c} ${BIGINT_COLUMNS.has(c) ? 'BIGINT' : 'TEXT'}`),
  'meta JSON',
  ...AUDIT_COLUMNS.map((c) => `audit_${c} ${BIGINT_COLUMNS.has(c) ? 'BIGINT' : 'TEXT'}`),
];
const INPUT = `input AS (SELECT * FROM json_to_recordset(?::json) AS i(${INPUT_COLUMNS.join(', ')}))`;
const INSERT_ARCHIVES_FROM_INPUT = `${INSERT_ARCHIVE} SELECT ${ARCHIVE_COLUMNS.join(', ')} FROM input`;
const INPUT_META = `SELECT archive.id, m.k, m.v FROM archive JOIN input USING (driver, key), json_to_recordset(input.meta) AS m(k TEXT, v TEXT)`;
const PG_RECORD_PENDING = `WITH ${INPUT},
  archive AS (${INSERT_ARCHIVES_FROM_INPUT} ${ON_CONFLICT_PENDING}, driver, key),
  meta AS (${INPUT_META})
  INSERT INTO depot_archive_meta (k, v, archive_id) SELECT k, v, id FROM meta ON CONFLICT DO NOTHING`;
const PG_RECORD_STORED = `WITH ${INPUT},
  archive AS (${INSERT_ARCHIVES_FROM_INPUT} ${ON_CONFLICT_STORED}, driver, key),
  meta AS (${INPUT_META}),
  gone AS (DELETE FROM depot_archive_meta d USING archive WHERE d.archive_id = archive.id AND (d.archive_id, d.k, d.v) NOT IN (SELECT id, k, v FROM meta)),
  added AS (INSERT INTO depot_archive_meta (k, v, archive_id) SELECT k, v, id FROM meta ON CONFLICT DO NOTHING)
  INSERT INTO depot_audit (${AUDIT_COLUMNS.join(', ')}) SELECT ${AUDIT_COLUMNS.map((c) => `audit_${c}`).join(', ')} FROM input
  ON CONFLICT (event_key) DO NOTHING`;

/** A row for a PG_RECORD_* statement, and the archive it is for. */
export interface InputRow {
  statement: string;
  ref: string;
  input: Record<string, unknown>;
}

function inputRow(statement: string, archive: readonly SqlValue[], metadata: Metadata, event?: AuditEvent): InputRow {
  const input: Record<string, unknown> = { meta: metaRows(metadata).map(([k, v]) => ({ k, v })) };
  ARCHIVE_COLUMNS.forEach((column, i) => (input[column] = archive[i]));
  if (event) auditValues(event).forEach((value, i) => (input[`audit_${AUDIT_COLUMNS[i]}`] = value));
  return { statement, ref: JSON.stringify([archive[0], archive[1]]), input };
}

/** Runs a PG_RECORD_* statement for its rows. */
async function runRows(tx: SqlSession, rows: InputRow[]): Promise<void> {
  await tx.run(rows[0].statement, [JSON.stringify(rows.map((row) => row.input))]);
}

/**
 * A batch of writes as the statements that do them, in order: the rows of
 * consecutive PG_RECORD_* writes together, one statement per kind, as long
 * as no archive comes twice and no other write comes between (that one
 * closes the statements so far, so that nothing changes order with it).
 */
export function statementsOf(batch: readonly PendingWrite[]): Array<(tx: SqlSession) => Promise<void>> {
  const statements: Array<(tx: SqlSession) => Promise<void>> = [];
  let open = new Map<string, InputRow[]>();
  let refs = new Set<string>();
  for (const write of batch) {
    const row = write.row;
    if (!row || refs.has(row.ref)) {
      open = new Map();
      refs = new Set();
    }
    if (!row) {
      statements.push(write.work);
      continue;
    }
    refs.add(row.ref);
    const rows = open.get(row.statement);
    if (rows) rows.push(row);
    else {
      const started = [row];
      open.set(row.statement, started);
      statements.push((tx) => runRows(tx, started));
    }
  }
  return statements;
}

/** An operation's write waiting for its commit. */
export interface PendingWrite {
  work: (tx: SqlSession) => Promise<void>;
  /** PostgreSQL: a row of a PG_RECORD_* statement, which takes the rows of every write of its kind waiting with it. */
  row?: InputRow;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** The counter an audit event adds to, when it is recorded for the first time. */
function counterOf(operation: AuditOperation, outcome: string): CounterName | undefined {
  if (operation === 'delete' || operation === 'expire' || operation === 'erase') {
    if (outcome !== 'ok') return undefined;
    return operation === 'delete' ? 'deleted' : operation === 'expire' ? 'expired' : 'erased';
  }
  if (operation === 'verify') return outcome === 'ok' ? 'verified_ok' : outcome === 'not_found' ? 'verified_missing' : 'verified_corrupt';
  return undefined;
}

/** The epoch milliseconds of an ISO 8601 text from a task or manifest (validated where it came in). */
function ms(text: string | undefined): number | null {
  if (text === undefined) return null;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : at;
}

/** The audit row's values, in INSERT_AUDIT's order. */
function auditValues(event: AuditEvent): SqlValue[] {
  const at = event.at ?? new Date();
  return [at.toISOString(), at.getTime(), event.operation, event.taskId, event.ref.driver, event.ref.key, event.outcome, event.actor, event.eventKey];
}

/** Each name and value once; every value of a list its own row. */
function metaRows(metadata: Metadata): Array<[string, string]> {
  const rows = new Map<string, [string, string]>();
  for (const [k, value] of Object.entries(metadata)) {
    for (const v of typeof value === 'string' ? [value] : value) rows.set(JSON.stringify([k, v]), [k, v]);
  }
  return [...rows.values()];
}

function text(row: Row, column: string): string {
  return String(row[column]);
}

function optionalText(row: Row, column: string): string | undefined {
  const value = row[column];
  return value === null || value === undefined ? undefined : String(value);
}

function entryOf(row: Row): CatalogEntry {
  const retainUntil = optionalText(row, 'retain_until');
  const deleteAfter = optionalText(row, 'delete_after');
  const deletedAt = optionalText(row, 'deleted_at');
  const lastVerifiedAt = optionalText(row, 'last_verified_at');
  return {
    ref: { driver: text(row, 'driver'), key: text(row, 'key') },
    taskId: text(row, 'task_id'),
    name: text(row, 'name'),
    size: Number(row.size ?? 0),
    sha256: optionalText(row, 'sha256') ?? '',
    storedAt: optionalText(row, 'stored_at') ?? '',
    metadata: JSON.parse(text(row, 'metadata')) as Metadata,
    ...(retainUntil !== undefined ? { retainUntil } : {}),
    ...(deleteAfter !== undefined ? { deleteAfter } : {}),
    ...(deletedAt !== undefined ? { deletedAt } : {}),
    ...(lastVerifiedAt !== undefined ? { lastVerifiedAt } : {}),
    verifyStatus: (optionalText(row, 'verify_status') as VerifyStatus | undefined) ?? null,
  };
}

function limitOf(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
    throw new DepotError('invalid_task', `must be a whole number from 1 to ${MAX_PAGE}`, { field: 'limit' });
  return limit;
}

/**
 * The Catalog on SQL, one text for SQLite and PostgreSQL: upserts (`ON
 * CONFLICT`), partial indexes, row values and `RETURNING` mean the same on
 * both. Each write is one short transaction.
 */
export class SqlCatalog implements Catalog {
  private read = 0;
  private readonly writes: PendingWrite[] = [];
  /** Transactions committing writes now; at most the database's `parallelWrites`. */
  private committing = 0;

  constructor(
    private readonly db: SqlDatabase,
    readonly location: string,
    /** Where reindex batches go instead, when they run elsewhere (SQLite: its writer thread, sqlite/writer.ts). */
    private readonly writer?: { call<T = void>(method: string, args: unknown[]): Promise<T>; close(): Promise<void> },
  ) {}

  get rowsRead(): number {
    return this.read;
  }

  private async all(session: SqlSession, sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    const rows = await session.all(sql, params);
    this.read += rows.length;
    return rows;
  }

  // --- writes ---

  async recordPending(pending: PendingArchive): Promise<void> {
    const values: SqlValue[] = [
      pending.ref.driver,
      pending.ref.key,
      pending.taskId,
      pending.name,
      'pending',
      null,
      null,
      null,
      null,
      JSON.stringify(pending.metadata),
      pending.retainUntil ?? null,
      ms(pending.retainUntil),
      pending.deleteAfter ?? null,
      ms(pending.deleteAfter),
      null,
      0,
      Date.now(),
    ];
    if (this.db.dialect === 'postgres') return this.writeRow(inputRow(PG_RECORD_PENDING, values, pending.metadata));
    await this.write(async (tx) => {
      const inserted = await this.all(tx, INSERT_PENDING, values);
      // Catalogued already (an earlier attempt of the task): nothing to add.
      if (inserted.length) await this.insertMeta(tx, [[Number(inserted[0].id), pending.metadata]]);
    });
  }

  async recordStored(driver: string, manifest: Manifest, event: AuditEvent): Promise<void> {
    const values = this.storedValues(driver, manifest, ms(manifest.storedAt), 0, Date.now());
    // A store's event moves no counter (counterOf), so the audit row is all its event adds.
    if (this.db.dialect === 'postgres' && !counterOf(event.operation, event.outcome)) {
      return this.writeRow(inputRow(PG_RECORD_STORED, values, manifest.metadata, event));
    }
    await this.write(async (tx) => {
      const [before] = await this.all(tx, `SELECT id, metadata FROM depot_archives WHERE driver = ? AND key = ?`, [driver, manifest.key]);
      const [row] = await this.all(tx, UPSERT_STORED, values);
      const id = Number(row.id);
      const previous = before ? (JSON.parse(text(before, 'metadata')) as Metadata) : undefined;
      if (!previous || !sameMetadata(previous, manifest.metadata)) {
        if (previous) await tx.run(`DELETE FROM depot_archive_meta WHERE archive_id = ?`, [id]);
        await this.insertMeta(tx, [[id, manifest.metadata]]);
      }
      await this.insertAudit(tx, event);
    });
  }

  async recordDeleted(event: AuditEvent): Promise<void> {
    const at = event.at ?? new Date();
    await this.write(async (tx) => {
      await this.insertAudit(tx, { ...event, at });
      await tx.run(`UPDATE depot_archives SET deleted_at = ?, deleted_ms = ? WHERE driver = ? AND key = ? AND deleted_ms IS NULL`, [
        at.toISOString(),
        at.getTime(),
        event.ref.driver,
        event.ref.key,
      ]);
    });
  }

  async recordAudit(event: AuditEvent): Promise<void> {
    await this.write((tx) => this.insertAudit(tx, event).then(() => undefined));
  }

  async recordVerification(status: VerifyStatus, event: AuditEvent): Promise<void> {
    const at = event.at ?? new Date();
    await this.write(async (tx) => {
      if (!(await this.insertAudit(tx, { ...event, at }))) return;
      await tx.run(`UPDATE depot_archives SET last_verified_at = ?, verify_status = ?, checked_ms = ? WHERE driver = ? AND key = ?`, [
        at.toISOString(),
        status,
        at.getTime(),
        event.ref.driver,
        event.ref.key,
      ]);
    });
  }

  async dropPending(ref: StorageRef): Promise<void> {
    await this.db.transaction(async (tx) => {
      const rows = await this.all(tx, `SELECT id FROM depot_archives WHERE driver = ? AND key = ? AND state = 'pending'`, [ref.driver, ref.key]);
      if (!rows.length) return;
      await tx.run(`DELETE FROM depot_archive_meta WHERE archive_id = ?`, [Number(rows[0].id)]);
      await tx.run(`DELETE FROM depot_archives WHERE id = ?`, [Number(rows[0].id)]);
    });
  }

  async optimize(): Promise<void> {
    if (this.db.dialect === 'postgres') await this.db.run('ANALYZE depot_archives, depot_archive_meta, depot_audit');
    else await this.db.run('PRAGMA optimize');
  }

  async markMissing(ref: StorageRef): Promise<void> {
    await this.db.run(`UPDATE depot_archives SET verify_status = 'missing' WHERE driver = ? AND key = ? AND state = 'stored' AND deleted_ms IS NULL`, [
      ref.driver,
      ref.key,
    ]);
  }

  /**
   * Group commit of the operations' writes: a write that arrives while fewer
   * than the database's `parallelWrites` transactions are committing starts
   * one at the end of this turn of the event loop; writes that arrive until
   * then, or while none can start (concurrent tasks), are committed together,
   * in one transaction, up to WRITES_PER_COMMIT. Each write is idempotent, so
   * a batch that fails is tried again write by write, and only the write that
   * fails on its own rejects. On PostgreSQL this saves a commit (a WAL flush)
   * and its round trips per write under load, and the rows of a batch's
   * stores are one statement of each kind (statementsOf); a batch that is one
   * statement is committed by itself, without BEGIN and COMMIT.
   */
  private write(work: (tx: SqlSession) => Promise<void>, row?: InputRow): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.writes.push({ work, row, resolve, reject });
      if (this.committing < this.db.parallelWrites) void this.commitWrites();
    });
  }

  private writeRow(row: InputRow): Promise<void> {
    return this.write((tx) => runRows(tx, [row]), row);
  }

  private async commitWrites(): Promise<void> {
    this.committing++;
    try {
      // All writes that arrive in this turn of the event loop (concurrent tasks') join this one, for one commit
      // (on PostgreSQL one statement per kind) instead of many; on SQLite, whose calls hold the thread, each
      // commit would otherwise keep the next write waiting behind it anyway.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.writes.length) {
        const batch = this.writes.splice(0, WRITES_PER_COMMIT);
        const statements = statementsOf(batch);
        try {
          if (statements.length === 1 && batch[0].row) await statements[0](this.db);
          else {
            await this.db.transaction(async (tx) => {
              for (const statement of statements) await statement(tx);
            });
          }
          for (const write of batch) write.resolve();
        } catch (error) {
          if (batch.length === 1) {
            batch[0].reject(error);
            continue;
          }
          for (const write of batch) await this.db.transaction(write.work).then(write.resolve, write.reject);
        }
      }
    } finally {
      this.committing--;
    }
  }

  /** The audit row, once per event key; true when it was new (then, and only then, its counter moves). */
  private async insertAudit(tx: SqlSession, event: AuditEvent): Promise<boolean> {
    const added = await tx.run(INSERT_AUDIT, auditValues(event));
    const counter = counterOf(event.operation, event.outcome);
    if (added && counter) {
      await tx.run(
        `INSERT INTO depot_counters (name, driver, value) VALUES (?, ?, 1) ON CONFLICT (name, driver) DO UPDATE SET value = depot_counters.value + 1`,
        [counter, event.ref.driver],
      );
    }
    return added > 0;
  }

  private async insertMeta(tx: SqlSession, entries: Array<[number, Metadata]>): Promise<void> {
    const rows = entries.flatMap(([id, metadata]) => metaRows(metadata).map(([k, v]): SqlValue[] => [k, v, id]));
    for (let i = 0; i < rows.length; i += META_ROWS_PER_STATEMENT) {
      const chunk = rows.slice(i, i + META_ROWS_PER_STATEMENT);
      await tx.run(`INSERT INTO depot_archive_meta (k, v, archive_id) VALUES ${valuesList(chunk.length, 3)} ON CONFLICT DO NOTHING`, chunk.flat());
    }
  }

  private storedValues(driver: string, manifest: Manifest, storedMs: number | null, generation: number, now: number): SqlValue[] {
    return [
      driver,
      manifest.key,
      manifest.taskId,
      manifest.name,
      'stored',
      manifest.size,
      manifest.sha256,
      manifest.storedAt,
      storedMs,
      JSON.stringify(manifest.metadata),
      manifest.retainUntil ?? null,
      ms(manifest.retainUntil),
      manifest.deleteAfter ?? null,
      ms(manifest.deleteAfter),
      storedMs ?? now,
      generation,
      now,
    ];
  }

  // --- reads ---

  async get(ref: StorageRef): Promise<CatalogEntry | null> {
    const rows = await this.all(this.db, `SELECT * FROM depot_archives WHERE driver = ? AND key = ? AND state = 'stored'`, [ref.driver, ref.key]);
    return rows.length ? entryOf(rows[0]) : null;
  }

  async findArchives(query: ArchiveQuery): Promise<Page<CatalogEntry>> {
    const limit = limitOf(query.limit);
    const [after] = query.cursor ? decodeCursor(query.cursor, 1) : [0];
    const deleted = query.deleted ? `a.deleted_ms IS NOT NULL AND a.state = 'stored'` : LIVE;
    const rows = await this.matching({ sql: deleted }, query.metadata ?? [], query.driver, after, limit + 1);
    const items = rows.slice(0, limit).map(entryOf);
    return { items, next: rows.length > limit ? encodeCursor([Number(rows[limit - 1].id)]) : null };
  }

  /**
   * Rows of depot_archives that meet `condition`, the driver and every
   * metadata pair, after row id `after`, in id order. With metadata, the
   * first pair's index range drives the query and the others are probed per
   * row; without, the table (or its driver's index) is read in id order.
   */
  private async matching(
    condition: { sql: string; params?: SqlValue[] },
    metadata: NonNullable<ArchiveQuery['metadata']>,
    driver: string | undefined,
    after: number,
    limit: number,
  ): Promise<Row[]> {
    const where: string[] = [condition.sql];
    const params: SqlValue[] = [...(condition.params ?? [])];
    if (driver !== undefined) {
      where.push('a.driver = ?');
      params.push(driver);
    }
    if (!metadata.length) {
      where.push('a.id > ?');
      return this.all(this.db, `SELECT a.* FROM depot_archives a WHERE ${where.join(' AND ')} ORDER BY a.id LIMIT ?`, [...params, after, limit]);
    }
    const [[k0, v0], ...rest] = metadata;
    for (const [k, v] of rest) {
      where.push(`EXISTS (SELECT 1 FROM depot_archive_meta m WHERE m.k = ? AND m.v = ? AND m.archive_id = a.id)`);
      params.push(k, v);
    }
    return this.all(
      this.db,
      `SELECT a.* FROM depot_archive_meta m0 JOIN depot_archives a ON a.id = m0.archive_id
       WHERE m0.k = ? AND m0.v = ? AND m0.archive_id > ? AND ${where.join(' AND ')}
       ORDER BY m0.archive_id LIMIT ?`,
      [k0, v0, after, ...params, limit],
    );
  }

  async findAudit(query: AuditQuery): Promise<Page<AuditEntry>> {
    const limit = limitOf(query.limit);
    const [after] = query.cursor ? decodeCursor(query.cursor, 1) : [0];
    const where = ['id > ?'];
    const params: SqlValue[] = [after];
    for (const [column, value] of [
      ['task_id', query.taskId],
      ['driver', query.driver],
      ['key', query.key],
    ] as const) {
      if (value === undefined) continue;
      where.push(`${column} = ?`);
      params.push(value);
    }
    if (query.since !== undefined) {
      const since = Date.parse(query.since);
      if (Number.isNaN(since)) throw new DepotError('invalid_task', 'must be an ISO 8601 date or date-time', { field: 'since' });
      where.push('at_ms >= ?');
      params.push(since);
    }
    const rows = await this.all(this.db, `SELECT * FROM depot_audit WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`, [...params, limit + 1]);
    const items = rows.slice(0, limit).map((row): AuditEntry => ({
      at: text(row, 'at'),
      operation: text(row, 'operation') as AuditOperation,
      taskId: optionalText(row, 'task_id') ?? null,
      ref: { driver: text(row, 'driver'), key: text(row, 'key') },
      outcome: text(row, 'outcome') as AuditEntry['outcome'],
      actor: text(row, 'actor'),
    }));
    return { items, next: rows.length > limit ? encodeCursor([Number(rows[limit - 1].id)]) : null };
  }

  async due(now: Date, limit: number, after?: string): Promise<Positioned[]> {
    const [afterMs, afterId] = after ? decodeCursor(after, 2, 'after') : [Number.MIN_SAFE_INTEGER, 0];
    const rows = await this.all(
      this.db,
      `SELECT a.* FROM depot_archives a
       WHERE a.delete_after_ms IS NOT NULL AND ${LIVE} AND a.delete_after_ms <= ? AND (a.delete_after_ms, a.id) > (?, ?)
       ORDER BY a.delete_after_ms, a.id LIMIT ?`,
      [now.getTime(), afterMs, afterId, limit],
    );
    return rows.map((row) => ({ entry: entryOf(row), position: encodeCursor([Number(row.delete_after_ms), Number(row.id)]) }));
  }

  async verificationDue(before: Date, limit: number, options: { driver?: string; after?: string } = {}): Promise<Positioned[]> {
    const [afterMs, afterId] = options.after ? decodeCursor(options.after, 2, 'after') : [Number.MIN_SAFE_INTEGER, 0];
    const driver = options.driver !== undefined ? 'AND a.driver = ?' : '';
    const rows = await this.all(
      this.db,
      `SELECT a.* FROM depot_archives a
       WHERE ${LIVE} AND a.checked_ms < ? AND (a.checked_ms, a.id) > (?, ?) ${driver}
       ORDER BY a.checked_ms, a.id LIMIT ?`,
      [before.getTime(), afterMs, afterId, ...(options.driver !== undefined ? [options.driver] : []), limit],
    );
    return rows.map((row) => ({ entry: entryOf(row), position: encodeCursor([Number(row.checked_ms), Number(row.id)]) }));
  }

  async pending(query: { metadata?: ArchiveQuery['metadata']; recordedBefore?: Date; limit: number; after?: string }): Promise<Positioned[]> {
    const [after] = query.after ? decodeCursor(query.after, 1, 'after') : [0];
    const condition = query.recordedBefore
      ? { sql: `a.state = 'pending' AND a.recorded_ms < ?`, params: [query.recordedBefore.getTime()] }
      : { sql: `a.state = 'pending'` };
    const rows = await this.matching(condition, query.metadata ?? [], undefined, after, query.limit);
    return rows.map((row) => ({ entry: entryOf(row), position: encodeCursor([Number(row.id)]) }));
  }

  async stats(): Promise<CatalogStats> {
    const archives = await this.all(
      this.db,
      `SELECT a.driver AS driver, COUNT(*) AS archives, COALESCE(SUM(a.size), 0) AS bytes FROM depot_archives a WHERE ${LIVE} GROUP BY a.driver`,
    );
    const verified = await this.all(
      this.db,
      `SELECT a.driver AS driver, a.verify_status AS status, COUNT(*) AS archives FROM depot_archives a
       WHERE a.verify_status IS NOT NULL AND ${LIVE} GROUP BY a.driver, a.verify_status`,
    );
    const counters = await this.all(this.db, `SELECT name, driver, value FROM depot_counters`);
    return {
      archives: archives.map((r) => ({ driver: text(r, 'driver'), archives: Number(r.archives), bytes: Number(r.bytes) })),
      verified: verified.map((r) => ({ driver: text(r, 'driver'), status: text(r, 'status') as VerifyStatus, archives: Number(r.archives) })),
      counters: counters.map((r) => ({ name: text(r, 'name') as CounterName, driver: text(r, 'driver'), value: Number(r.value) })),
    };
  }

  // --- state and the reindex ---

  async state<T>(name: string): Promise<T | null> {
    const rows = await this.all(this.db, `SELECT value FROM depot_state WHERE name = ?`, [name]);
    return rows.length ? (JSON.parse(text(rows[0], 'value')) as T) : null;
  }

  async updateState<T>(name: string, update: (current: T | null) => T): Promise<T> {
    return this.db.transaction(async (tx) => {
      const lock = this.db.dialect === 'postgres' ? ' FOR UPDATE' : '';
      const rows = await this.all(tx, `SELECT value FROM depot_state WHERE name = ?${lock}`, [name]);
      const next = update(rows.length ? (JSON.parse(text(rows[0], 'value')) as T) : null);
      await tx.run(`INSERT INTO depot_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [name, JSON.stringify(next)]);
      return next;
    });
  }

  async reindexBatch(driver: string, manifests: Manifest[], generation: number): Promise<ReindexOutcome[]> {
    // A batch holds SQLite for tens of milliseconds: in the writer thread, not on the worker's main thread.
    if (this.writer) return this.writer.call<ReindexOutcome[]>('reindexBatch', [driver, manifests, generation]);
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      const known = new Map<string, Row>();
      for (let i = 0; i < manifests.length; i += KEYS_PER_STATEMENT) {
        const keys = manifests.slice(i, i + KEYS_PER_STATEMENT).map((m) => m.key);
        const rows = await this.all(tx, `SELECT * FROM depot_archives WHERE driver = ? AND key IN (${placeholders(keys.length)})`, [driver, ...keys]);
        for (const row of rows) known.set(text(row, 'key'), row);
      }
      const outcomes: ReindexOutcome[] = [];
      const added: Manifest[] = [];
      const unchanged: string[] = [];
      for (const manifest of manifests) {
        const row = known.get(manifest.key);
        if (!row) {
          added.push(manifest);
          outcomes.push('added');
        } else if (describesManifest(row, manifest)) {
          unchanged.push(manifest.key);
          outcomes.push('unchanged');
        } else {
          // The manifest is the truth: the entry becomes what it says (a pending entry complete, a deleted one back).
          await tx.run(
            `UPDATE depot_archives SET task_id = ?, name = ?, state = 'stored', size = ?, sha256 = ?, stored_at = ?, stored_ms = ?, metadata = ?,
               retain_until = ?, retain_until_ms = ?, delete_after = ?, delete_after_ms = ?, deleted_at = NULL, deleted_ms = NULL,
               checked_ms = COALESCE(checked_ms, ?), seen_gen = ?, recorded_ms = ?
             WHERE id = ?`,
            [
              manifest.taskId,
              manifest.name,
              manifest.size,
              manifest.sha256,
              manifest.storedAt,
              ms(manifest.storedAt),
              JSON.stringify(manifest.metadata),
              manifest.retainUntil ?? null,
              ms(manifest.retainUntil),
              manifest.deleteAfter ?? null,
              ms(manifest.deleteAfter),
              ms(manifest.storedAt) ?? now,
              generation,
              now,
              Number(row.id),
            ],
          );
          const id = Number(row.id);
          if (!sameMetadata(JSON.parse(text(row, 'metadata')) as Metadata, manifest.metadata)) {
            await tx.run(`DELETE FROM depot_archive_meta WHERE archive_id = ?`, [id]);
            await this.insertMeta(tx, [[id, manifest.metadata]]);
          }
          outcomes.push('updated');
        }
      }
      for (let i = 0; i < unchanged.length; i += KEYS_PER_STATEMENT) {
        const keys = unchanged.slice(i, i + KEYS_PER_STATEMENT);
        await tx.run(`UPDATE depot_archives SET seen_gen = ? WHERE driver = ? AND key IN (${placeholders(keys.length)})`, [generation, driver, ...keys]);
      }
      const perStatement = Math.floor(KEYS_PER_STATEMENT / 2);
      for (let i = 0; i < added.length; i += perStatement) {
        const chunk = added.slice(i, i + perStatement);
        const rows = await this.all(
          tx,
          `INSERT INTO depot_archives (${ARCHIVE_COLUMNS.join(', ')}) VALUES ${valuesList(chunk.length, ARCHIVE_COLUMNS.length)} RETURNING id, key`,
          chunk.flatMap((m) => this.storedValues(driver, m, ms(m.storedAt), generation, now)),
        );
        const ids = new Map(rows.map((r) => [text(r, 'key'), Number(r.id)]));
        await this.insertMeta(
          tx,
          chunk.map((m): [number, Metadata] => [ids.get(m.key) ?? 0, m.metadata]),
        );
      }
      return outcomes;
    });
  }

  async unseen(driver: string, generation: number, before: Date, limit: number, after?: string): Promise<Array<Positioned & { pending: boolean }>> {
    const [afterId] = after ? decodeCursor(after, 1, 'after') : [0];
    const rows = await this.all(
      this.db,
      `SELECT a.* FROM depot_archives a
       WHERE a.driver = ? AND a.id > ? AND a.seen_gen < ? AND a.recorded_ms < ? AND a.deleted_ms IS NULL
       ORDER BY a.id LIMIT ?`,
      [driver, afterId, generation, before.getTime(), limit],
    );
    return rows.map((row) => ({ entry: entryOf(row), position: encodeCursor([Number(row.id)]), pending: row.state === 'pending' }));
  }

  async close(): Promise<void> {
    await this.writer?.close();
    await this.db.close();
  }
}

/** Whether a complete, undeleted entry says what the manifest says. */
function describesManifest(row: Row, manifest: Manifest): boolean {
  return (
    row.state === 'stored' &&
    row.deleted_ms === null &&
    row.task_id === manifest.taskId &&
    row.name === manifest.name &&
    Number(row.size) === manifest.size &&
    row.sha256 === manifest.sha256 &&
    row.stored_at === manifest.storedAt &&
    (row.retain_until ?? undefined) === manifest.retainUntil &&
    (row.delete_after ?? undefined) === manifest.deleteAfter &&
    sameMetadata(JSON.parse(text(row, 'metadata')) as Metadata, manifest.metadata)
  );
}
