import path from 'node:path';
import { BenchContext, startDepotRun, stopAll } from './context';
import { depotStore } from './large';
import { Producer } from './producer';
import { writeRandomFile } from './scratch';
import { GiB, MiB } from './stats';

export interface MemoryResult {
  /** VmHWM in bytes of a fresh worker per run: idle after start, and after each load. */
  idle: number[];
  oneGiB: number[];
  fourGiB: number[];
  concurrent: number[];
  concurrentStores: number;
  concurrentBytes: number;
}

/** One fresh worker process (peak RSS only grows), one load, its VmHWM. */
async function peakFor(ctx: BenchContext, sources: string, load: (producer: Producer) => Promise<void>): Promise<{ idle: number; peak: number }> {
  const run = await startDepotRun(ctx, 'memory', { sources, concurrency: 16 });
  const producer = new Producer(ctx.redisUrl, run.queue);
  try {
    await producer.listen();
    const idle = run.workers[0].peakRss();
    await load(producer);
    return { idle, peak: run.workers[0].peakRss() };
  } finally {
    await producer.close();
    await stopAll(run.workers);
    // The archives are not needed any more: a few big files, so deleting them now is harmless.
    await ctx.scratch.remove(run.dir);
  }
}

/** Measurement 2: worker peak memory storing 1 GiB, 4 GiB, and 16 concurrent 100 MiB archives. */
export async function workerMemory(ctx: BenchContext, runs: number, concurrentStores = 16, concurrentBytes = 100 * MiB): Promise<MemoryResult> {
  const sources = await ctx.scratch.dir('memory-sources');
  const files = { one: path.join(sources, 'one.bin'), four: path.join(sources, 'four.bin'), part: path.join(sources, 'part.bin') };
  ctx.log('  writing 1 GiB, 4 GiB and 100 MiB of random bytes');
  writeRandomFile(files.one, GiB);
  writeRandomFile(files.four, 4 * GiB);
  writeRandomFile(files.part, concurrentBytes);
  const result: MemoryResult = { idle: [], oneGiB: [], fourGiB: [], concurrent: [], concurrentStores, concurrentBytes };
  const mib = (bytes: number) => (bytes / MiB).toFixed(0);
  try {
    for (let i = 0; i < runs; i++) {
      const one = await peakFor(ctx, sources, async (p) => void (await depotStore(p, files.one)));
      const four = await peakFor(ctx, sources, async (p) => void (await depotStore(p, files.four)));
      const many = await peakFor(ctx, sources, async (p) => {
        const stores = await Promise.all(Array.from({ length: concurrentStores }, () => p.store({ path: files.part }, 'part.bin')));
        await Promise.all(stores.map((s) => s.done));
      });
      result.idle.push(one.idle, four.idle, many.idle);
      result.oneGiB.push(one.peak);
      result.fourGiB.push(four.peak);
      result.concurrent.push(many.peak);
      ctx.log(
        `  memory run ${i + 1}: idle ${mib(one.idle)} MiB, 1 GiB ${mib(one.peak)} MiB, 4 GiB ${mib(four.peak)} MiB, ${concurrentStores}×${mib(concurrentBytes)} MiB ${mib(many.peak)} MiB`,
      );
    }
    return result;
  } finally {
    await ctx.scratch.remove(sources);
  }
}
