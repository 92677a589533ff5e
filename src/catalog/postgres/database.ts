import pg from 'pg';
import { DepotError } from '../../contract';
import { redactor } from '../../support/redaction';
import { ignoreFailure } from '../../support/ignore';
import { catalogUnavailable, Row, SqlDatabase, SqlSession, SqlValue } from '../sql';

/** PostgreSQL's type ids whose values the catalog reads as numbers: bigint (counts, sizes, milliseconds) and numeric (sums). */
const INT8 = 20;
const NUMERIC = 1700;

/** SQLSTATE classes that mean "not reachable now, try again": connection exceptions, resources, operator intervention, and lost races. */
const TRANSIENT_CLASSES = ['08', '53', '57', '58'];
const TRANSIENT_STATES = ['40001', '40P01', '55P03', '3D000'];

/**
 * Write transactions at once (of the pool's connections; the others serve
 * reads). Writes that arrive meanwhile wait and then go together, the stores'
 * rows as one statement of each kind (sql-catalog.ts): with 2, 16 concurrent
 * small stores cost the server ≈ 250 µs of CPU each and the worker ≈ 130;
 * with all 4 connections writing, mostly one row per statement, ≈ 800 and
 * ≈ 250 (docs/BENCHMARKS.md, "The catalog").
 */
const WRITE_CONNECTIONS = 2;
/** Statement texts named (prepared once per connection) at most; any further text is sent unnamed. */
const MAX_NAMED_STATEMENTS = 100;

/** bigint and numeric as numbers (sizes and milliseconds stay far below 2^53); every other type as pg reads it. */
const typeParser = ((id: number, format?: 'text' | 'binary'): ((value: string) => unknown) => {
  if (id === INT8 || id === NUMERIC) return (value: string) => Number(value);
  return (format === 'binary' ? pg.types.getTypeParser(id, 'binary') : pg.types.getTypeParser(id, 'text')) as (value: string) => unknown;
}) as typeof pg.types.getTypeParser;

export interface PostgresOptions {
  /** Connections this process keeps (default 4). */
  maxConnections?: number;
  /** How long to wait for a connection (default 5 s). */
  connectTimeoutMs?: number;
  /** Bound on every statement (default 30 s). */
  statementTimeoutMs?: number;
}

/**
 * The catalog on PostgreSQL (`pg`), shared by every worker and `depot serve`
 * on any number of hosts. Placeholders are written `?`, as for SQLite, and
 * numbered here.
 */
export class PostgresDatabase implements SqlDatabase {
  readonly dialect = 'postgres';
  readonly parallelWrites: number;
  private readonly pool: pg.Pool;
  private readonly numbered = new Map<string, { text: string; name?: string }>();

  constructor(
    url: string,
    private readonly location: string,
    options: PostgresOptions = {},
  ) {
    const connections = options.maxConnections ?? 4;
    this.parallelWrites = Math.min(WRITE_CONNECTIONS, connections);
    this.pool = new pg.Pool({
      connectionString: url,
      max: connections,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      idleTimeoutMillis: 30_000,
      application_name: 'depot',
      types: { getTypeParser: typeParser },
    });
    // An idle connection that the server drops emits here; the next query takes another.
    this.pool.on('error', () => undefined);
  }

  all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    return this.guard(async () => (await this.pool.query(this.query(sql, params))).rows as Row[]);
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.guard(async () => (await this.pool.query(this.query(sql, params))).rowCount ?? 0);
  }

  transaction<T>(work: (tx: SqlSession) => Promise<T>): Promise<T> {
    return this.guard(async () => {
      const client = await this.pool.connect();
      let broken = false;
      // A connection that the server or the network drops while it is checked out emits 'error' here, outside any
      // query (pg-pool only listens on idle ones): without a listener that would end the process. The query under
      // way fails by itself; the connection is not handed back.
      const onError = () => {
        broken = true;
      };
      client.on('error', onError);
      try {
        const tx: SqlSession = {
          all: async (sql, params = []) => (await client.query(this.query(sql, params))).rows as Row[],
          run: async (sql, params = []) => (await client.query(this.query(sql, params))).rowCount ?? 0,
        };
        await client.query('BEGIN');
        try {
          const result = await work(tx);
          await client.query('COMMIT');
          return result;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {
            broken = true;
          });
          throw error;
        }
      } finally {
        client.off('error', onError);
        // A connection whose rollback failed, or that broke, is not handed to the next transaction.
        client.release(broken);
      }
    });
  }

  async close(): Promise<void> {
    await ignoreFailure(this.pool.end(), 'closing: connections the server already dropped need no goodbye');
  }

  /**
   * The statement as pg sends it: `?` → `$1`, `$2`, … (the catalog's SQL has
   * no `?` inside literals), and a write named, so that each connection has
   * the server parse and plan it once instead of on every store. Reads stay
   * unnamed: a plan kept across a later migration could no longer match a
   * `SELECT *`; a write returns an id at most.
   */
  private query(sql: string, params: readonly SqlValue[]): pg.QueryConfig<SqlValue[]> {
    let statement = this.numbered.get(sql);
    if (statement === undefined) {
      let n = 0;
      const text = sql.replace(/\?/g, () => `$${++n}`);
      const write = /^\s*(INSERT|UPDATE|DELETE|WITH)\b/i.test(sql) && this.numbered.size < MAX_NAMED_STATEMENTS;
      statement = write ? { text, name: `depot_${this.numbered.size + 1}` } : { text };
      this.numbered.set(sql, statement);
    }
    return { ...statement, values: params as SqlValue[] };
  }

  /** PostgreSQL's and the network's failures as the contract's: `unavailable` (origin catalog) for what may pass, `internal` for the rest. */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof DepotError) throw error;
      const state = (error as { code?: unknown }).code;
      const message = redactor.redact((error as Error).message);
      if (typeof state === 'string' && /^[0-9A-Z]{5}$/.test(state) && !TRANSIENT_CLASSES.includes(state.slice(0, 2)) && !TRANSIENT_STATES.includes(state)) {
        throw new DepotError('internal', `catalog at ${this.location}: ${message} (SQLSTATE ${state})`, { origin: 'catalog', cause: error });
      }
      throw catalogUnavailable(this.location, message, error);
    }
  }
}
