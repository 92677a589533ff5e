import { parentPort, workerData } from 'node:worker_threads';
import { DepotError, isErrorCode } from '../../contract';
import { SqlCatalog } from '../sql-catalog';
import { SqliteDatabase } from './database';
import { startThread, WriterCall, WriterReply, WriterSetup } from './writer';

/**
 * The SQLite catalog's writer thread (see writer.ts): one connection that
 * takes the operations' writes and the reindex's batches. Calls that arrive together — from the
 * worker's concurrent tasks — are committed together: each turn of this
 * thread's event loop hands everything that has arrived to the catalog at
 * once, whose group commit puts it in one transaction.
 */
const setup = workerData as WriterSetup;
const db = new SqliteDatabase(setup.file, setup.location);
const catalog = new SqlCatalog(db, setup.location);
const port = parentPort;
let arrived: WriterCall[] = [];
let scheduled = false;

const WRITES = new Set<string>(['recordPending', 'recordStored', 'recordDeleted', 'recordAudit', 'recordVerification', 'reindexBatch']);

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

// Checkpoints run beside the writes, not in their way (checkpoint-thread.ts). Not needed to end the thread.
const checkpointer = startThread('checkpoint-thread', setup);
checkpointer.unref();
checkpointer.on('error', () => undefined); // without it the writer keeps going, and checkpoints by itself past its limit

function stopCheckpointer(): Promise<void> {
  const exited = new Promise<void>((resolve) => checkpointer.once('exit', () => resolve()));
  checkpointer.postMessage({ close: true });
  const timer = setTimeout(() => void checkpointer.terminate(), 5_000);
  return exited.finally(() => clearTimeout(timer));
}

port?.on('message', (message: WriterCall | { close: true }) => {
  if ('close' in message) {
    // The checkpointer first: the writer's connection, the last to close, then checkpoints what is left and removes the WAL.
    void stopCheckpointer()
      .then(() => catalog.close())
      .then(() => port.close());
    return;
  }
  arrived.push(message);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
});
