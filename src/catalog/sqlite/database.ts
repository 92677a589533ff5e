import { DatabaseSync, StatementSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'node:worker_threads';
import { Semaphore } from '../../support/semaphore';
import { catalogUnavailable, Row, SqlDatabase, SqlSession, SqlValue } from '../sql';
import { startThread, stopThread } from './writer';

/** SQLite's result codes for "another connection holds the lock" (the primary code, without its extended bits). */
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;

/** WAL pages (4 KiB) past which a committing connection checkpoints by itself: 64 MiB, 16 times SQLite's default. */
export const WRITER_CHECKPOINT_PAGES = 16_384;
/** What a WAL file keeps of its size when it starts over. */
const WAL_KEPT_BYTES = 16 * 1024 * 1024;

export interface SqliteOptions {
  /** How long a statement or transaction keeps trying while another process holds the database's write lock. */
  busyMs?: number;
}

/**
 * The catalog on SQLite (`node:sqlite`, built into Node 24), on the main
 * thread. Its calls are synchronous, so nothing here may hold the event loop
 * long enough to cost a job its lock (half of `queue.lockDurationMs`): every
 * transaction is a handful of indexed statements (tens of microseconds, see
 * docs/BENCHMARKS.md), the database is in WAL mode (readers never wait for
 * the writer) with `synchronous=NORMAL` (no fsync per commit: a process that
 * dies loses nothing; a power cut may lose the last commits, which a reindex
 * restores from the manifests, audit entries excepted), and SQLite itself
 * never waits for a lock (`busy_timeout` 0): another process's write lock
 * (a second worker, `depot reindex`) is waited for here, asynchronously,
 * with the transaction run again from its start.
 */
export class SqliteDatabase implements SqlDatabase {
  readonly dialect = 'sqlite';
  readonly parallelWrites = 1;
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  /** One unit of work at a time on the connection: a transaction's statements are never interleaved with another's. */
  private readonly turn = new Semaphore(1);
  private readonly busyMs: number;
  private closed = false;
  /** The checkpoint thread (checkpoint-thread.ts) of a connection opened for writing. */
  private checkpointer?: Worker;

  constructor(
    readonly file: string,
    private readonly location: string,
    options: SqliteOptions = {},
  ) {
    this.busyMs = options.busyMs ?? 10_000;
    try {
      this.db = new DatabaseSync(file);
      this.db.exec('PRAGMA busy_timeout = 0');
      // Per connection, not kept in the file: every connection commits without an fsync of its own (see above).
      this.db.exec('PRAGMA synchronous = NORMAL');
      // Checkpoints are the checkpoint thread's (checkpoint-thread.ts); a connection runs one itself only past this.
      this.db.exec(`PRAGMA wal_autocheckpoint = ${WRITER_CHECKPOINT_PAGES}`);
      // …and a WAL grown that far is cut back when it starts over, not kept at its largest.
      this.db.exec(`PRAGMA journal_size_limit = ${WAL_KEPT_BYTES}`);
    } catch (error) {
      throw catalogUnavailable(location, `cannot open ${file}: ${(error as Error).message}`, error);
    }
  }

  /** WAL, kept in the file, and checkpoints beside the writes; a writer's business, done when the catalog is opened for writing. */
  async prepareForWriting(): Promise<void> {
    await this.exclusive(() => {
      this.db.exec('PRAGMA journal_mode = WAL');
    });
    if (this.checkpointer) return;
    this.checkpointer = startThread('checkpoint-thread', { file: this.file, location: this.location });
    this.checkpointer.unref();
    // Without it the connection goes on, and checkpoints by itself past WRITER_CHECKPOINT_PAGES.
    this.checkpointer.on('error', () => undefined);
  }

  all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    return this.exclusive(() => this.allNow(sql, params));
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.exclusive(() => this.runNow(sql, params));
  }

  transaction<T>(work: (tx: SqlSession) => Promise<T>): Promise<T> {
    const tx: SqlSession = {
      all: (sql, params = []) => Promise.resolve(this.allNow(sql, params)),
      run: (sql, params = []) => Promise.resolve(this.runNow(sql, params)),
    };
    return this.exclusive(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(tx);
        this.db.exec('COMMIT');
        return result;
      } catch (error) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // The checkpointer first: this connection, the last to close, then checkpoints what is left and removes the WAL.
    await this.stopCheckpointer();
    const release = await this.turn.acquire();
    try {
      this.closed = true;
      this.statements.clear();
      this.db.close();
    } finally {
      release();
    }
  }

  private async stopCheckpointer(): Promise<void> {
    const thread = this.checkpointer;
    this.checkpointer = undefined;
    if (thread) await stopThread(thread);
  }

  /**
   * Runs `unit` alone on the connection. Should another process hold the lock,
   * the whole unit is tried again after a pause (1 ms, doubling to 50 ms),
   * for up to `busyMs`; then, or on any other failure of SQLite's, the catalog
   * is `unavailable`.
   */
  private async exclusive<T>(unit: () => T | Promise<T>): Promise<T> {
    const release = await this.turn.acquire();
    try {
      const started = Date.now();
      for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
        if (this.closed) throw catalogUnavailable(this.location, 'closed');
        try {
          return await unit();
        } catch (error) {
          if (!isSqliteError(error)) throw error;
          if (isBusy(error) && Date.now() - started < this.busyMs) {
            await sleep(pause);
            continue;
          }
          throw catalogUnavailable(this.location, isBusy(error) ? `locked by another process for ${this.busyMs} ms` : error.message, error);
        }
      }
    } finally {
      release();
    }
  }

  private statement(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private allNow(sql: string, params: readonly SqlValue[]): Row[] {
    return this.statement(sql).all(...params) as Row[];
  }

  private runNow(sql: string, params: readonly SqlValue[]): number {
    return Number(this.statement(sql).run(...params).changes);
  }
}

interface SqliteError extends Error {
  errcode: number;
}

function isSqliteError(error: unknown): error is SqliteError {
  return error instanceof Error && typeof (error as Partial<SqliteError>).errcode === 'number';
}

function isBusy(error: SqliteError): boolean {
  const primary = error.errcode & 0xff;
  return primary === SQLITE_BUSY || primary === SQLITE_LOCKED;
}
