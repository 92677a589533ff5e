import { randomBytes } from 'node:crypto';
import { BenchContext, startBareRun, startDepotRun, stopAll } from './context';
import { Producer } from './producer';
import { WorkerProcess } from './processes';
import { median, percentile, rotated } from './stats';

/** One 4 KiB archive, sent inline (a `base64` source) with every small store. */
const SMALL = { base64: randomBytes(4096).toString('base64') };

/** Queue `count` small stores while the queue is paused, release them at once, return the drain rate. */
async function drain(ctx: BenchContext, queue: string, count: number): Promise<number> {
  const producer = new Producer(ctx.redisUrl, queue);
  try {
    await producer.queue.pause();
    const ids = await producer.storeMany(count, SMALL);
    await producer.queue.resume();
    await producer.waitFinished(ids, 120_000);
    return await producer.drainRate(ids);
  } finally {
    await producer.close();
  }
}

export async function depotDrain(ctx: BenchContext, count: number, workers: number, concurrency: number): Promise<number> {
  const run = await startDepotRun(ctx, 'small', { count: workers, concurrency });
  try {
    return await drain(ctx, run.queue, count);
  } finally {
    await stopAll(run.workers);
  }
}

export async function bareDrain(ctx: BenchContext, count: number, concurrency: number): Promise<number> {
  const run = await startBareRun(ctx, 'bare', concurrency);
  try {
    return await drain(ctx, run.queue, count);
  } finally {
    await run.worker.stop();
  }
}

export interface SmallResult {
  count: number;
  concurrency: number;
  depot: number[];
  bare: number[];
}

/** Measurement 3: depot and the bare worker alternately drain the same load. */
export async function smallArchives(ctx: BenchContext, runs: number, count: number, concurrency: number): Promise<SmallResult> {
  const result: SmallResult = { count, concurrency, depot: [], bare: [] };
  for (let i = 0; i < runs; i++) {
    for (const who of rotated(['depot', 'bare'] as const, i)) {
      if (who === 'depot') result.depot.push(await depotDrain(ctx, count, 1, concurrency));
      else result.bare.push(await bareDrain(ctx, count, concurrency));
    }
    ctx.log(`  small run ${i + 1}: depot ${result.depot[i].toFixed(0)}/s, bare ${result.bare[i].toFixed(0)}/s`);
  }
  return result;
}

export interface ScalingResult {
  count: number;
  concurrency: number;
  one: number[];
  two: number[];
}

/** Measurement 5: one and two depot worker processes alternately on the small-archive load. */
export async function scaling(ctx: BenchContext, runs: number, count: number, concurrency: number): Promise<ScalingResult> {
  const result: ScalingResult = { count, concurrency, one: [], two: [] };
  for (let i = 0; i < runs; i++) {
    for (const workers of rotated([1, 2], i)) {
      const rate = await depotDrain(ctx, count, workers, concurrency);
      (workers === 1 ? result.one : result.two).push(rate);
    }
    ctx.log(`  scaling run ${i + 1}: 1 worker ${result.one[i].toFixed(0)}/s, 2 workers ${result.two[i].toFixed(0)}/s`);
  }
  return result;
}

export interface LatencyRun {
  depot: { p50: number; p99: number };
  bare: { p50: number; p99: number };
}

/** enqueue → completion seen by the producer, in ms. */
async function oneStore(producer: Producer): Promise<number> {
  const start = performance.now();
  const { done } = await producer.store(SMALL, 'latency.bin');
  return (await done) - start;
}

/** Measurement 4: one 4 KiB store at a time, alternately to depot and to the bare worker. */
export async function latency(ctx: BenchContext, runs: number, perRun: number): Promise<LatencyRun[]> {
  const depot = await startDepotRun(ctx, 'latency', { concurrency: 16 });
  const bare = await startBareRun(ctx, 'latency-bare', 16);
  const workers: WorkerProcess[] = [...depot.workers, bare.worker];
  const toDepot = new Producer(ctx.redisUrl, depot.queue);
  const toBare = new Producer(ctx.redisUrl, bare.queue);
  try {
    await toDepot.listen();
    await toBare.listen();
    for (let i = 0; i < 100; i++) {
      await oneStore(toDepot); // warm-up: JIT, connections, first directories
      await oneStore(toBare);
    }
    const results: LatencyRun[] = [];
    for (let r = 0; r < runs; r++) {
      const a: number[] = [];
      const b: number[] = [];
      for (let i = 0; i < perRun; i++) {
        // Alternately first: one store may warm the machine (caches, CPU frequency) for the next.
        if (i % 2 === 0) {
          a.push(await oneStore(toDepot));
          b.push(await oneStore(toBare));
        } else {
          b.push(await oneStore(toBare));
          a.push(await oneStore(toDepot));
        }
      }
      results.push({ depot: { p50: median(a), p99: percentile(a, 99) }, bare: { p50: median(b), p99: percentile(b, 99) } });
      ctx.log(`  latency run ${r + 1}: depot p50 ${median(a).toFixed(2)} ms, bare p50 ${median(b).toFixed(2)} ms`);
    }
    return results;
  } finally {
    await toDepot.close();
    await toBare.close();
    await stopAll(workers);
  }
}
