import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { BenchContext, DepotRun, startDepotRun, stopAll } from './context';
import { Producer } from './producer';
import { writeRandomFile } from './scratch';
import { MiB, rotated } from './stats';

const STAGING_DIR = '.depot-tmp';

export interface CrashSettings {
  lockDurationMs: number;
  stalledIntervalMs: number;
  /**
   * The new worker runs on the same host under its default name (`<host>:<pid>`), so
   * it hands back the dead worker's jobs as it starts (src/queue/orphaned-jobs.ts).
   * Off: it is named as if it ran elsewhere (DEPOT_WORKER_NAME), and only BullMQ's
   * stalled-job check recovers the task, once the lock has expired.
   */
  sameHost: boolean;
}

export interface CrashResult extends CrashSettings {
  seconds: number[];
}

async function stagedBytes(root: string): Promise<number> {
  const dir = path.join(root, STAGING_DIR);
  let total = 0;
  for (const name of await readdir(dir).catch(() => [])) {
    if (name.endsWith('.part'))
      total += await stat(path.join(dir, name)).then(
        (s) => s.size,
        () => 0,
      );
  }
  return total;
}

async function crashOnce(ctx: BenchContext, run: DepotRun, source: string, bytes: number, settings: CrashSettings): Promise<number> {
  const producer = new Producer(ctx.redisUrl, run.queue);
  try {
    await producer.listen();
    const victim = run.workers[run.workers.length - 1];
    const { done } = await producer.store({ path: source }, 'crash.bin');
    const deadline = Date.now() + 60_000;
    while ((await stagedBytes(run.root)) < bytes / 2) {
      if (Date.now() > deadline) throw new Error('the crash store never got half-way');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    victim.crash();
    const killedAt = performance.now();
    await victim.exited;
    const restarted = run.startWorker(settings.sameHost ? {} : { DEPOT_WORKER_NAME: `bench-elsewhere-${victim.pid}` });
    const completedAt = await done;
    await restarted;
    return (completedAt - killedAt) / 1000;
  } finally {
    await producer.close();
  }
}

/** Measurement 6: kill -9 in the middle of a store, a new worker started at once; seconds from the kill to the task's completion. */
export async function crashRecovery(ctx: BenchContext, runs: number, variants: CrashSettings[], bytes = 200 * MiB): Promise<CrashResult[]> {
  const sources = await ctx.scratch.dir('crash-sources');
  const source = path.join(sources, 'crash.bin');
  writeRandomFile(source, bytes);
  const results: CrashResult[] = variants.map((v) => ({ ...v, seconds: [] }));
  try {
    // Variants alternate run by run, so drifting machine load hits them alike.
    for (let i = 0; i < runs; i++) {
      for (const result of rotated(results, i)) {
        const run = await startDepotRun(ctx, 'crash', { sources, lockDurationMs: result.lockDurationMs, stalledIntervalMs: result.stalledIntervalMs });
        try {
          result.seconds.push(await crashOnce(ctx, run, source, bytes, result));
        } finally {
          await stopAll(run.workers);
          await ctx.scratch.remove(run.dir);
        }
        const label = `${result.lockDurationMs}/${result.stalledIntervalMs}${result.sameHost ? ', same host' : ', elsewhere'}`;
        ctx.log(`  crash run ${i + 1} (${label}): ${result.seconds[i].toFixed(2)} s`);
      }
    }
    return results;
  } finally {
    await ctx.scratch.remove(sources);
  }
}

export interface StallResult extends CrashSettings {
  stalled: number;
  jobs: number;
}

/**
 * What shorter locks risk: jobs taken for stalled while their worker is alive
 * but busy. Counts BullMQ 'stalled' events during a heavy load (16 concurrent
 * 100 MiB stores, twice) with the given settings.
 */
export async function stallsUnderLoad(ctx: BenchContext, settings: CrashSettings, stores = 16, bytes = 100 * MiB): Promise<StallResult> {
  const sources = await ctx.scratch.dir('stall-sources');
  const source = path.join(sources, 'load.bin');
  writeRandomFile(source, bytes);
  const run = await startDepotRun(ctx, 'stall', { sources, lockDurationMs: settings.lockDurationMs, stalledIntervalMs: settings.stalledIntervalMs });
  const producer = new Producer(ctx.redisUrl, run.queue);
  let stalled = 0;
  try {
    await producer.listen();
    producer.onStalled(() => stalled++);
    for (let round = 0; round < 2; round++) {
      const handles = await Promise.all(Array.from({ length: stores }, () => producer.store({ path: source }, 'load.bin')));
      await Promise.all(handles.map((h) => h.done));
    }
    return { ...settings, stalled, jobs: 2 * stores };
  } finally {
    await producer.close();
    await stopAll(run.workers);
    await ctx.scratch.remove(run.dir);
    await ctx.scratch.remove(sources);
  }
}
