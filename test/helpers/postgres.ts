import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * A PostgreSQL database of the test's own on the machine's server
 * (127.0.0.1:5432, trust auth; DEPOT_TEST_POSTGRES names another server's
 * maintenance database): created with a random name, dropped afterwards.
 * No other database is touched.
 */
export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

const ADMIN_URL = process.env.DEPOT_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(prefix = 'depot_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.href,
    drop: () =>
      admin(async (client) => {
        await client.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [name]);
        await client.query(`DROP DATABASE IF EXISTS ${name}`);
      }),
  };
}

/** Rows of a query on a test database, for tests that look at the tables themselves. */
export async function queryDatabase(url: string, sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}
