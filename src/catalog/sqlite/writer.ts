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
 * The SQLite catalog's writes, off the main thread (docs/BENCHMARKS.md,
 * "The catalog"): a store's two catalog transactions cost the main thread
 * ~0.25 ms of synchronous SQLite work (a commit writes a WAL frame for every
 * index page it touched), a quarter of a worker's CPU on small archives. In
 * a thread of its own that work runs beside the worker's, and the
 * transactions of concurrent tasks are committed together; the main thread
 * only passes messages. Reads stay on the main thread's connection: they are
 * short index lookups, and WAL lets them run while the thread writes.
 *
 * The thread is started on the first write, and again after it died (a call
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
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ close: true });
    const timer = setTimeout(() => void worker.terminate(), 5_000);
    await exited;
    clearTimeout(timer);
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
