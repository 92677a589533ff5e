import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DepotError, ErrorCode } from '../../contract';
import { catalogUnavailable } from '../sql';

/** What the writer thread is started with. */
export interface WriterSetup {
  file: string;
  location: string;
}

export interface WriterCall {
  id: number;
  method: string;
  args: unknown[];
}

export interface WriterReply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: { code: ErrorCode; message: string; retryable?: boolean; field?: string };
}

/**
 * The SQLite catalog's reindex batches, off the main thread: a batch of 500
 * manifests holds SQLite for tens of milliseconds, long enough to delay a
 * worker's lock renewals and the progress of its other tasks. The
 * operations' writes stay on the main thread's connection (a few
 * statements, gathered per turn of the event loop and committed together,
 * sql-catalog.ts): a hop to a thread cost more than the write itself
 * (docs/BENCHMARKS.md, "The catalog"). WAL lets the two connections write
 * one after the other and read meanwhile.
 *
 * The thread is started on the first batch, and again after it died (a call
 * it held fails `unavailable`, origin catalog, and is retried like any).
 * It holds the process open only while a call is waiting.
 */
export class SqliteWriter {
  private worker?: Worker;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: DepotError) => void }>();
  private next = 0;
  private closed = false;

  constructor(private readonly setup: WriterSetup) {}

  call<T = void>(method: string, args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(catalogUnavailable(this.setup.location, 'closed'));
    const worker = this.thread();
    const id = ++this.next;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.ref();
      worker.postMessage({ id, method, args } satisfies WriterCall);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await stopThread(worker);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = startThread('writer-thread', this.setup);
    worker.unref();
    worker.on('message', (replies: WriterReply[]) => {
      for (const reply of replies) {
        const waiter = this.waiting.get(reply.id);
        if (!waiter) continue;
        this.waiting.delete(reply.id);
        if (reply.ok) waiter.resolve(reply.value);
        else {
          const e = reply.error ?? { code: 'internal' as const, message: 'no reason given' };
          waiter.reject(new DepotError(e.code, e.message, { origin: 'catalog', retryable: e.retryable }));
        }
      }
      if (!this.waiting.size) worker.unref();
    });
    const fail = (why: string) => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, waiter] of this.waiting) {
        this.waiting.delete(id);
        waiter.reject(catalogUnavailable(this.setup.location, why));
      }
    };
    worker.on('error', (error: Error) => fail(`writer thread failed: ${error.message}`));
    worker.on('exit', (code) => fail(`writer thread exited (${code})`));
    this.worker = worker;
    return worker;
  }
}

/**
 * A thread of this folder (`writer-thread`, `checkpoint-thread`): the .js from
 * the build; run from the source (tests, DEPOT_FROM_SOURCE), the .ts through
 * tsx, as bin/depot does.
 */
export function startThread(name: 'writer-thread' | 'checkpoint-thread', setup: WriterSetup): Worker {
  if (__filename.endsWith('.js')) return new Worker(path.join(__dirname, `${name}.js`), { workerData: setup });
  const entry = path.join(__dirname, `${name}.ts`);
  return new Worker(`require('tsx/cjs/api').register(); require(${JSON.stringify(entry)});`, { eval: true, workerData: setup });
}

/** Asks a thread of this folder to close its connection and end; ended by force after 5 s. */
export async function stopThread(thread: Worker): Promise<void> {
  const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
  thread.postMessage({ close: true });
  const timer = setTimeout(() => void thread.terminate(), 5_000);
  await exited;
  clearTimeout(timer);
}
