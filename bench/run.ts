/**
 * `npm run bench`: measures depot against its peers on this machine, prints a
 * table and writes docs/BENCHMARKS.md. BENCH_QUICK=1 makes a short smoke run
 * (fewer and smaller runs) whose figures are not meant to be kept.
 * `npm run bench -- only=http,nats` runs only the measurements named (see ONLY: s3, ftp, http, nats)
 * and prints their rows, writing nothing. BENCH_NODE_ARGS adds Node flags to
 * depot's processes (e.g. `--cpu-prof --cpu-prof-dir=DIR` while investigating).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedis } from '../test/helpers/redis-server';
import { catalogSectionOf, runCatalogBenchmarks, withCatalogSection } from './catalog';
import { BenchContext } from './context';
import { crashRecovery, CrashSettings, stallsUnderLoad } from './crash';
import { ensureRclone, machineFacts, PROJECT_ROOT, requireTools } from './env';
import { destroyFtpServer, ftpLargeArchive } from './ftp';
import { httpUpload } from './http';
import { largeArchive } from './large';
import { killAllWorkers } from './processes';
import { workerMemory } from './memory';
import { natsLargeArchive } from './nats';
import { BenchResults, ftpRaw, ftpRows, httpRaw, httpRows, markdown, natsRaw, natsRows, Row, rows, s3Raw, s3Rows, textTable } from './report';
import { s3LargeArchive } from './s3';
import { Scratch } from './scratch';
import { latency, scaling, smallArchives } from './small';
import { GiB, MiB } from './stats';

const QUICK = process.env.BENCH_QUICK === '1';

const PLAN = QUICK
  ? {
      largeRuns: 2,
      largeBytes: 256 * MiB,
      memoryRuns: 1,
      smallRuns: 2,
      smallCount: 1000,
      latencyRuns: 2,
      latencyPerRun: 100,
      scalingRuns: 1,
      crashRuns: 1,
      s3Runs: 1,
      s3Bytes: 256 * MiB,
      ftpRuns: 1,
      ftpBytes: 256 * MiB,
      httpRuns: 1,
      httpBytes: 256 * MiB,
      natsRuns: 1,
      natsBytes: 256 * MiB,
    }
  : {
      largeRuns: 5,
      largeBytes: GiB,
      memoryRuns: 3,
      smallRuns: 5,
      smallCount: 5000,
      latencyRuns: 5,
      latencyPerRun: 300,
      scalingRuns: 3,
      crashRuns: 5,
      s3Runs: 3,
      s3Bytes: GiB,
      ftpRuns: 3,
      ftpBytes: GiB,
      httpRuns: 3,
      httpBytes: GiB,
      natsRuns: 2,
      natsBytes: GiB,
    };

/** Worker concurrency for the small-archive loads, depot and bare worker alike. */
const SMALL_CONCURRENCY = 16;

// The config's defaults (queue.lockDurationMs / stalledIntervalMs) come first; the others are explored.
// First the product's case: a worker restarted on the same host (it hands back the dead one's jobs).
const DEFAULT_LOCKS: CrashSettings = { lockDurationMs: 4_000, stalledIntervalMs: 2_000, sameHost: true };
const SHORT_LOCKS: CrashSettings = { lockDurationMs: 2_000, stalledIntervalMs: 1_000, sameHost: false };
const CRASH_VARIANTS: CrashSettings[] = [
  DEFAULT_LOCKS,
  { ...DEFAULT_LOCKS, sameHost: false },
  { lockDurationMs: 10_000, stalledIntervalMs: 5_000, sameHost: false },
  SHORT_LOCKS,
];

/** The measurements `only=` can pick, each with its rows and raw figures. */
const ONLY: Record<string, (ctx: BenchContext) => Promise<{ rows: Row[]; raw: string[] }>> = {
  s3: async (ctx) => {
    const s3 = await s3LargeArchive(ctx, PLAN.s3Runs, PLAN.s3Bytes);
    return { rows: s3Rows(s3), raw: s3Raw(s3) };
  },
  ftp: async (ctx) => {
    const ftp = await ftpLargeArchive(ctx, PLAN.ftpRuns, PLAN.ftpBytes);
    return { rows: ftpRows(ftp), raw: ftpRaw(ftp) };
  },
  http: async (ctx) => {
    const http = await httpUpload(ctx, PLAN.httpRuns, PLAN.httpBytes);
    return { rows: httpRows(http), raw: httpRaw(http) };
  },
  nats: async (ctx) => {
    const nats = await natsLargeArchive(ctx, PLAN.natsRuns, PLAN.natsBytes);
    return { rows: natsRows(nats), raw: natsRaw(nats) };
  },
};

async function main(only?: string[]): Promise<void> {
  const started = Date.now();
  const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  ensureRclone(log);
  requireTools();
  log('building dist/ (npm run build): the worker runs compiled, as in production');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
  const facts = machineFacts();
  const loadBefore = os.loadavg();
  const redis = await startRedis();
  const scratch = new Scratch();
  // Interrupted: no worker, Redis, proftpd or benchmark file is left behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${signal}: stopping the benchmark and removing its files`);
      killAllWorkers();
      void Promise.allSettled([destroyFtpServer(), scratch.close(), redis.stop()]).then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  const ctx: BenchContext = { redisUrl: redis.url, scratch, log, nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean) };
  try {
    if (only) {
      const picked: Row[] = [];
      const raw: string[] = [];
      for (const name of only) {
        log(`only ${name}`);
        const measured = await ONLY[name](ctx);
        picked.push(...measured.rows);
        raw.push(...measured.raw);
      }
      console.log(`\n${textTable(picked)}\n\n${raw.join('\n')}\n`);
      return;
    }
    log(`1. large archive (${PLAN.largeBytes / MiB} MiB): depot, rclone, cp+sync+openssl; retrieve to a path: depot, cp+openssl`);
    const large = await largeArchive(ctx, PLAN.largeRuns, PLAN.largeBytes);
    log(`1. again, with a CPU-bound process keeping the other core busy`);
    const largeBusy = await largeArchive(ctx, PLAN.largeRuns, PLAN.largeBytes, true);
    log('2. worker peak memory');
    const memory = await workerMemory(ctx, PLAN.memoryRuns);
    log(`3. small archives: ${PLAN.smallCount} × 4 KiB, depot and the bare worker`);
    const small = await smallArchives(ctx, PLAN.smallRuns, PLAN.smallCount, SMALL_CONCURRENCY);
    log('4. latency, one 4 KiB store at a time');
    const lat = await latency(ctx, PLAN.latencyRuns, PLAN.latencyPerRun);
    log('5. scaling: one and two worker processes');
    const scale = await scaling(ctx, PLAN.scalingRuns, PLAN.smallCount, SMALL_CONCURRENCY);
    log('6. crash recovery (kill -9 mid-store)');
    const crash = await crashRecovery(ctx, PLAN.crashRuns, CRASH_VARIANTS);
    log(`6. stalled jobs under load with ${SHORT_LOCKS.lockDurationMs}/${SHORT_LOCKS.stalledIntervalMs} ms locks`);
    const stalls = await stallsUnderLoad(ctx, SHORT_LOCKS);
    log(`7. large archive on S3 (${PLAN.s3Bytes / MiB} MiB, one s3rver): depot, lib-storage Upload, rclone`);
    const s3 = await s3LargeArchive(ctx, PLAN.s3Runs, PLAN.s3Bytes);
    log(`7b. large archive on FTPS (${PLAN.ftpBytes / MiB} MiB, one proftpd): depot, basic-ftp uploadFrom, rclone`);
    const ftp = await ftpLargeArchive(ctx, PLAN.ftpRuns, PLAN.ftpBytes);
    log(`8. upload over HTTP (${PLAN.httpBytes / MiB} MiB, curl): depot serve + worker to a stored archive, a Node server that writes and fsyncs`);
    const http = await httpUpload(ctx, PLAN.httpRuns, PLAN.httpBytes);
    log(`9. large archive on NATS (${PLAN.natsBytes / MiB} MiB, one nats-server): depot, @nats-io/obj put`);
    const nats = await natsLargeArchive(ctx, PLAN.natsRuns, PLAN.natsBytes);
    log('removing the benchmark files');
    await scratch.remove();
    const results: BenchResults = {
      facts,
      startedAt: new Date(started),
      minutes: (Date.now() - started) / 60_000,
      loadBefore,
      loadAfter: os.loadavg(),
      large,
      largeBusy,
      memory,
      small,
      latency: lat,
      scaling: scale,
      crash,
      stalls,
      s3,
      ftp,
      http,
      nats,
    };
    console.log(`\n${textTable(rows(results))}\n`);
    const findings = readFileSync(path.join(__dirname, 'findings.md'), 'utf8');
    // A quick run's figures are not kept in the repository.
    const target = QUICK ? path.join(os.tmpdir(), 'depot-BENCHMARKS.quick.md') : path.join(PROJECT_ROOT, 'docs', 'BENCHMARKS.md');
    // The catalog's section (npm run bench -- catalog) is measured apart and kept as it is.
    const catalogSection = QUICK ? '' : catalogSectionOf(readFileSync(target, 'utf8'));
    writeFileSync(target, catalogSection ? withCatalogSection(markdown(results, findings), catalogSection) : markdown(results, findings));
    log(`wrote ${target}`);
  } finally {
    await scratch.remove();
    await redis.stop();
  }
}

/** The measurements named by `only=a,b`, checked against ONLY; undefined without the argument. */
function onlyArgument(arg: string | undefined): string[] | undefined {
  if (!arg?.startsWith('only=')) return undefined;
  const names = arg.slice('only='.length).split(',').filter(Boolean);
  const unknown = names.filter((name) => !Object.hasOwn(ONLY, name));
  if (names.length === 0 || unknown.length > 0)
    throw new Error(`only= takes a list of ${Object.keys(ONLY).join(', ')}; not: ${unknown.join(', ') || '(empty)'}`);
  return names;
}

// `npm run bench -- catalog`: the catalog's benchmarks only (bench/catalog.ts), into their own section.
(process.argv[2] === 'catalog' ? runCatalogBenchmarks() : Promise.resolve().then(() => main(onlyArgument(process.argv[2])))).then(
  () => process.exit(0),
  (error: Error) => {
    console.error(`bench failed: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
