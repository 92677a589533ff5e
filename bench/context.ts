import path from 'node:path';
import { DepotWorkerConfig, startBareWorker, startDepotWorker, WorkerProcess, writeDepotConfig } from './processes';
import { Scratch } from './scratch';

/** What every benchmark gets from bench/run.ts. */
export interface BenchContext {
  redisUrl: string;
  scratch: Scratch;
  log(line: string): void;
  /** Extra node flags for depot workers (e.g. --cpu-prof while investigating). */
  nodeArgs: string[];
}

let queues = 0;

/** A queue name used by one run only, so runs never see each other's jobs. */
export function freshQueue(prefix: string): string {
  queues += 1;
  return `bench-${prefix}-${process.pid}-${queues}`;
}

export interface DepotRun {
  workers: WorkerProcess[];
  queue: string;
  /** The driver root, where archives end up. */
  root: string;
  /** Where the run's source files may lie (paths.allowed). */
  sources: string;
  dir: string;
  /** The YAML config the workers read (and `depot serve`, when it has an `http` section). */
  configFile: string;
  /** Starts one more worker process on the same config (e.g. after a crash). */
  startWorker(extraEnv?: NodeJS.ProcessEnv): Promise<WorkerProcess>;
}

/** A fresh run directory and queue, with `count` depot worker processes on them. */
export async function startDepotRun(
  ctx: BenchContext,
  prefix: string,
  options: Partial<DepotWorkerConfig> & { count?: number; sources?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<DepotRun> {
  const dirs = await ctx.scratch.layout(prefix, ['archive', 'sources']);
  const queue = freshQueue(prefix);
  const sources = options.sources ?? dirs.sources;
  const configFile = await writeDepotConfig(dirs.base, {
    redisUrl: ctx.redisUrl,
    queue,
    root: dirs.archive,
    allowedPath: sources,
    concurrency: options.concurrency ?? 16,
    lockDurationMs: options.lockDurationMs,
    stalledIntervalMs: options.stalledIntervalMs,
    driver: options.driver,
    http: options.http,
  });
  const workers: WorkerProcess[] = [];
  const startWorker = async (extraEnv: NodeJS.ProcessEnv = {}) => {
    const worker = await startDepotWorker(configFile, path.join(dirs.base, `worker-${workers.length}.log`), ctx.nodeArgs, { ...options.env, ...extraEnv });
    workers.push(worker);
    return worker;
  };
  for (let i = 0; i < (options.count ?? 1); i++) await startWorker();
  return { workers, queue, root: dirs.archive, sources, dir: dirs.base, configFile, startWorker };
}

export async function startBareRun(ctx: BenchContext, prefix: string, concurrency: number): Promise<{ worker: WorkerProcess; queue: string }> {
  const dirs = await ctx.scratch.layout(prefix, ['files']);
  const queue = freshQueue(prefix);
  const worker = await startBareWorker(ctx.redisUrl, queue, dirs.files, concurrency, path.join(dirs.base, 'worker.log'));
  return { worker, queue };
}

export async function stopAll(workers: WorkerProcess[]): Promise<void> {
  await Promise.all(workers.map((w) => w.stop()));
}
