import { parentPort, workerData } from 'node:worker_threads';
import { DepotError, isErrorCode } from '../../contract';
import { SqlCatalog } from '../sql-catalog';
import { SqliteDatabase } from './database';
import { WriterCall, WriterReply, WriterSetup } from './writer';

/**
 * The SQLite catalog's writer thread (see writer.ts): one connection that
 * takes the reindex's batches, each tens of milliseconds of SQLite work that
 * would otherwise hold the worker's event loop. Calls that arrive together
 * are started together.
 */
const setup = workerData as WriterSetup;
const db = new SqliteDatabase(setup.file, setup.location);
const catalog = new SqlCatalog(db, setup.location);
const port = parentPort;
let arrived: WriterCall[] = [];
let scheduled = false;

const WRITES = new Set<string>(['reindexBatch']);

function run(call: WriterCall): Promise<unknown> {
  if (!WRITES.has(call.method)) return Promise.reject(new Error(`not a write: ${call.method}`));
  const method = (catalog as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[call.method];
  return method.apply(catalog, call.args);
}

function reply(call: WriterCall, outcome: PromiseSettledResult<unknown>): WriterReply {
  if (outcome.status === 'fulfilled') return { id: call.id, ok: true, value: outcome.value };
  const error: unknown = outcome.reason;
  const depot = error instanceof DepotError ? error : undefined;
  return {
    id: call.id,
    ok: false,
    error: {
      code: depot && isErrorCode(depot.code) ? depot.code : 'internal',
      message: error instanceof Error ? error.message : String(error),
      retryable: depot?.retryable,
      field: depot?.field,
    },
  };
}

function flush(): void {
  scheduled = false;
  const calls = arrived;
  arrived = [];
  // Started together, so that the catalog's group commit sees them all before its first transaction begins.
  void Promise.allSettled(calls.map(run)).then((outcomes) => port?.postMessage(outcomes.map((outcome, i) => reply(calls[i], outcome))));
}

port?.on('message', (message: WriterCall | { close: true }) => {
  if ('close' in message) {
    void catalog.close().then(() => port.close());
    return;
  }
  arrived.push(message);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
});
