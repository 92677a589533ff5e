import { DepotError } from '../contract';

/** What the catalog's SQL passes and reads: text, numbers and NULL (times are ISO text and epoch milliseconds). */
export type SqlValue = string | number | null;
export type Row = Record<string, SqlValue>;

/** Statements with `?` placeholders, the same text on both databases (PostgreSQL's driver numbers them). */
export interface SqlSession {
  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  /** Rows changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

export type Dialect = 'sqlite' | 'postgres';

/**
 * One catalog database. `transaction` runs `work` as one transaction: on
 * SQLite the connection is the process's one writer and `work` must await
 * nothing but its session (no other task runs on the connection meanwhile);
 * a transaction that meets another process's lock is run again from the
 * start, so `work` must not act outside the database.
 */
export interface SqlDatabase extends SqlSession {
  readonly dialect: Dialect;
  /** Write transactions worth running at once: 1 on SQLite (one writer); on PostgreSQL fewer than its connections, so that writes gather. */
  readonly parallelWrites: number;
  transaction<T>(work: (tx: SqlSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A failure to reach or use the catalog: retried in place, never failed over (CONTRACT §8). */
export function catalogUnavailable(location: string, message: string, cause?: unknown): DepotError {
  return new DepotError('unavailable', `catalog at ${location}: ${message}`, { origin: 'catalog', cause });
}

/** `(?, ?, ?), (?, ?, ?)`: placeholders for `rows` rows of `columns` values. */
export function valuesList(rows: number, columns: number): string {
  const row = `(${Array.from({ length: columns }, () => '?').join(', ')})`;
  return Array.from({ length: rows }, () => row).join(', ');
}

/** `?, ?, ?` for an IN list. */
export function placeholders(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}
