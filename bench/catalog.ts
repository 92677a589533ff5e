/**
 * `npm run bench -- catalog`: the catalog's benchmarks (issue 14, CONTRACT §8),
 * on their own, written into their section of docs/BENCHMARKS.md (the rest of
 * the file is left as it is; a full `npm run bench` keeps this section).
 *
 * - 1,000,000 entries bulk-inserted on each database (the reindex's batch
 *   upsert), then: lookups by userId (p50, p99), an expiry run with 100 due
 *   archives (time, catalog rows and backend calls), the /metrics figures;
 * - the reindex rate from a filesystem driver's manifests;
 * - how long one store's catalog writes hold the event loop (SQLite runs on
 *   the main thread), and a reindex batch's;
 * - 4 KiB stores per second through `depot worker` with the catalog (SQLite,
 *   PostgreSQL) and without it (the same tree with the catalog's writes made
 *   no-ops), side by side.
 *
 * BENCH_QUICK=1: 100,000 entries and short runs, written to the temp folder.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import YAML from 'yaml';
import { runnerSettings } from '../src/archiving/runner-settings';
import { TaskContext, TaskRunner } from '../src/archiving/task-runner';
import type { Catalog } from '../src/catalog/catalog';
import { openCatalog } from '../src/catalog/open';
import { migrate } from '../src/catalog/schema';
import { SqlCatalog } from '../src/catalog/sql-catalog';
import { SqliteDatabase } from '../src/catalog/sqlite/database';
import { reindex, REINDEX_STATE, ReindexState } from '../src/catalog/reindex';
import { validateConfig } from '../src/config/load';
import type { Manifest, Metadata } from '../src/contract';
import { serializeManifest, sidecarName } from '../src/storage/manifest';
import { StorageAPI } from '../src/storage/api';
import { defaultDriverFactory } from '../src/storage/drivers';
import { silentLogger } from '../src/support/logging';
import { Redactor } from '../src/support/redaction';
import { createTestDatabase, TestDatabase } from '../test/helpers/postgres';
import { startRedis } from '../test/helpers/redis-server';
import { taskContext } from '../test/helpers/queue-harness';
import { countingFactory } from '../test/catalog/counting-storage';
import { BenchContext, freshQueue, stopAll } from './context';
import { PROJECT_ROOT } from './env';
import { Producer } from './producer';
import { killAllWorkers, startDepotWorker, WorkerProcess } from './processes';
import { Scratch } from './scratch';
import { fmt, fmtSpread, median, pairedRatios, percentile, rotated } from './stats';

const QUICK = process.env.BENCH_QUICK === '1';
const PLAN = QUICK
  ? { entries: 100_000, lookups: 300, reindexArchives: 2_000, smallRuns: 2, smallCount: 1_000, writes: 5_000 }
  : { entries: 1_000_000, lookups: 1_000, reindexArchives: 20_000, smallRuns: Number(process.env.BENCH_SMALL_RUNS ?? 7), smallCount: 5_000, writes: 20_000 };
/** BENCH_CATALOG_PARTS=databases or =small runs one half (printed, not written). */
const PARTS = (process.env.BENCH_CATALOG_PARTS ?? 'databases,small').split(',');
const USERS = 100_000;
const DUE = 100;
const BATCH = 1_000;
/**
 * The "without" side of the small-store comparison: this tree with every
 * catalog write of the operations made a no-op (ArchiveRecord's one place
 * that writes), so that the two builds differ in the catalog's cost and in
 * nothing else. BENCH_NO_CATALOG_REF measures another tree instead, as it is.
 */
const WITHOUT_CATALOG_REF = process.env.BENCH_NO_CATALOG_REF;
const ARCHIVE_RECORD = 'src/archiving/archive-record.ts';
const RECORD_WRITE = '    return retryOperation(operation, {';

/** ArchiveRecord's writes in the tree at `dir` made no-ops; refuses a tree where the line it replaces is not there. */
function withoutCatalogWrites(dir: string): void {
  const file = path.join(dir, ARCHIVE_RECORD);
  const source = readFileSync(file, 'utf8');
  if (source.split(RECORD_WRITE).length !== 2) throw new Error(`${ARCHIVE_RECORD} no longer has the one line "${RECORD_WRITE.trim()}" the bench replaces`);
  writeFileSync(file, source.replace(RECORD_WRITE, `    return Promise.resolve();\n${RECORD_WRITE}`));
}

const SECTION_START = '<!-- catalog benchmarks: written by npm run bench -- catalog -->';
const SECTION_END = '<!-- end of catalog benchmarks -->';

type Kind = 'sqlite' | 'postgres';

interface DatabaseResult {
  kind: Kind;
  insertSeconds: number;
  lookup: { p50: number; p99: number; max: number; matches: number };
  expiry: { ms: number; deleted: number; rowsRead: number; calls: Record<string, number> };
  statsMs: number;
  storeWrites: { p50: number; p99: number; max: number };
  batchMs: { p50: number; max: number };
  reindexPerSecond: number;
  sizeMiB: number;
}

interface SmallCost {
  count: number;
  without: number[];
  sqlite: number[];
  postgres: number[];
}

const ctxFor = (): TaskContext => taskContext(`bench-${randomBytes(4).toString('hex')}`);

/** A synthetic manifest: ~10 archives per userId, 1000 courses, a tenth of them quiz archives naming 5 users; deleteAfter years ahead, or none. */
function syntheticManifest(i: number, random: () => number): Manifest {
  const day = String(1 + (i % 28)).padStart(2, '0');
  const month = String(1 + (Math.floor(i / 28) % 12)).padStart(2, '0');
  const taskId = `bench-${i.toString(36).padStart(8, '0')}`;
  const user = () => `u${Math.floor(random() * USERS)}`;
  const metadata: Metadata =
    i % 10 === 0 ? { userIds: [user(), user(), user(), user(), user()], courseId: `c${i % 1000}` } : { userId: user(), courseId: `c${i % 1000}` };
  const years = 1 + Math.floor(random() * 10);
  return {
    name: 'exam.zip',
    key: `2025/${month}/${day}/${taskId}/exam.zip`,
    size: 4096 + (i % 100_000),
    sha256: (i.toString(16) + '0'.repeat(64)).slice(0, 64),
    storedAt: '2025-06-01T00:00:00.000Z',
    taskId,
    metadata,
    ...(random() < 0.7 ? { deleteAfter: new Date(Date.now() + years * 365 * 86_400_000).toISOString() } : {}),
  };
}

/** A small deterministic generator, so both databases get the same entries. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function openFresh(kind: Kind, scratch: Scratch, databases: TestDatabase[]): Promise<{ catalog: Catalog; url: string; file?: string }> {
  if (kind === 'sqlite') {
    const file = path.join(await scratch.dir('catalog-db'), 'catalog.sqlite');
    return { catalog: await openCatalog({ target: { kind, file }, location: `sqlite:${file}` }, 'write'), url: `sqlite:${file}`, file };
  }
  const db = await createTestDatabase('depot_bench');
  databases.push(db);
  return { catalog: await openCatalog({ target: { kind, url: db.url }, location: db.url }, 'write'), url: db.url };
}

async function databaseBenchmarks(kind: Kind, scratch: Scratch, databases: TestDatabase[], log: (line: string) => void): Promise<DatabaseResult> {
  const root = path.join(await scratch.dir(`catalog-${kind}`), 'archive');
  const { catalog, url, file } = await openFresh(kind, scratch, databases);
  const config = validateConfig(
    { drivers: { bench: { type: 'filesystem', root } }, queue: { attempts: 3 }, catalog: { url } },
    { env: {}, source: 'bench', baseDir: root, factory: defaultDriverFactory(), redactor: new Redactor() },
  );
  const calls: Record<string, number> = {};
  const storage = new StorageAPI(config, countingFactory(calls), silentLogger());
  const runner = new TaskRunner(storage, runnerSettings(config), silentLogger(), catalog);
  try {
    // The due ones: real archives, stored (and catalogued) by the runner, deleteAfter already past.
    for (let i = 0; i < DUE; i++) {
      await runner.processTask(
        'store',
        { source: { base64: randomBytes(4096).toString('base64') }, name: `due-${i}.zip`, deleteAfter: new Date(Date.now() - 60_000).toISOString() },
        ctxFor(),
      );
    }
    await catalog.updateState<ReindexState>(REINDEX_STATE, (s) => ({ ...(s as ReindexState), filled: true }));

    log(`  ${kind}: bulk-inserting ${PLAN.entries.toLocaleString('en')} entries`);
    const random = seeded(14);
    const batchTimes: number[] = [];
    const insertStarted = performance.now();
    for (let i = 0; i < PLAN.entries; i += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, PLAN.entries - i) }, (_, j) => syntheticManifest(i + j, random));
      const t = performance.now();
      await catalog.reindexBatch('bench', batch, 1);
      batchTimes.push(performance.now() - t);
    }
    // As the reindex does once it has listed a driver.
    await catalog.optimize();
    const insertSeconds = (performance.now() - insertStarted) / 1000;
    log(`  ${kind}: ${(PLAN.entries / insertSeconds).toFixed(0)} entries/s`);

    const lookups: number[] = [];
    let matches = 0;
    const pick = seeded(99);
    for (let i = 0; i < PLAN.lookups; i++) {
      const user = `u${Math.floor(pick() * USERS)}`;
      const t = performance.now();
      const page = await catalog.findArchives({ metadata: [['userId', user]], limit: 100 });
      lookups.push(performance.now() - t);
      matches += page.items.length;
    }

    for (const key of Object.keys(calls)) delete calls[key];
    const rowsBefore = catalog.rowsRead;
    const expireStarted = performance.now();
    const expired = (await runner.processTask('expire', {}, ctxFor())) as { expired: Array<{ deleted: number }> };
    const expiryMs = performance.now() - expireStarted;
    const expiry = { ms: expiryMs, deleted: expired.expired[0].deleted, rowsRead: catalog.rowsRead - rowsBefore, calls: { ...calls } };

    const statsStarted = performance.now();
    await catalog.stats();
    const statsMs = performance.now() - statsStarted;

    // One store's catalog writes (pending, then complete with its audit event) on the full catalog.
    const writes: number[] = [];
    for (let i = 0; i < PLAN.writes; i++) {
      const m = syntheticManifest(PLAN.entries + i, random);
      const ref = { driver: 'bench', key: m.key };
      const t = performance.now();
      await catalog.recordPending({ ref, taskId: m.taskId, name: m.name, metadata: m.metadata, deleteAfter: m.deleteAfter });
      await catalog.recordStored('bench', m, { operation: 'store', taskId: m.taskId, ref, outcome: 'ok', actor: 'queue', eventKey: `store:bench:${m.key}` });
      writes.push(performance.now() - t);
    }
    const reindexPerSecond = await reindexRate(kind, scratch, databases, log);
    const sizeMiB = file ? fileSize(file) : await postgresSize(url);
    return {
      kind,
      insertSeconds,
      lookup: { p50: median(lookups), p99: percentile(lookups, 99), max: Math.max(...lookups), matches: matches / PLAN.lookups },
      expiry,
      statsMs,
      storeWrites: { p50: median(writes), p99: percentile(writes, 99), max: Math.max(...writes) },
      batchMs: { p50: median(batchTimes), max: Math.max(...batchTimes) },
      reindexPerSecond,
      sizeMiB,
    };
  } finally {
    await storage.close();
    await catalog.close();
  }
}

function fileSize(file: string): number {
  const db = new DatabaseSync(file);
  try {
    const row = db.prepare('SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()').get() as { bytes: number };
    return row.bytes / 2 ** 20;
  } finally {
    db.close();
  }
}

async function postgresSize(url: string): Promise<number> {
  const { queryDatabase } = await import('../test/helpers/postgres');
  const [row] = await queryDatabase(url, 'SELECT pg_database_size(current_database()) AS bytes');
  return Number(row.bytes) / 2 ** 20;
}

/** `reindex` from a filesystem driver holding PLAN.reindexArchives archives (written in its layout, manifests beside), into an empty catalog. */
async function reindexRate(kind: Kind, scratch: Scratch, databases: TestDatabase[], log: (line: string) => void): Promise<number> {
  const root = path.join(await scratch.dir(`reindex-${kind}`), 'archive');
  const random = seeded(7);
  for (let i = 0; i < PLAN.reindexArchives; i++) {
    const m = syntheticManifest(i, random);
    const dir = path.join(root, ...m.key.split('/').slice(0, 4));
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, m.name), 'x');
    await writeFile(
      path.join(dir, sidecarName(m.name)),
      serializeManifest({ ...m, size: 1, sha256: '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881' }),
    );
  }
  const { catalog, url } = await openFresh(kind, scratch, databases);
  const config = validateConfig(
    { drivers: { bench: { type: 'filesystem', root } }, catalog: { url } },
    { env: {}, source: 'bench', baseDir: root, factory: defaultDriverFactory(), redactor: new Redactor() },
  );
  const storage = new StorageAPI(config, defaultDriverFactory(), silentLogger());
  try {
    const started = performance.now();
    const report = await reindex(catalog, storage, { holder: 'bench', mode: 'manual', logger: silentLogger() });
    const seconds = (performance.now() - started) / 1000;
    const rate = (report?.drivers[0]?.seen ?? 0) / seconds;
    log(`  ${kind}: reindex ${rate.toFixed(0)} manifests/s`);
    return rate;
  } finally {
    await storage.close();
    await catalog.close();
  }
}

interface ThreadingRun {
  /** Main-thread time busy per store (event-loop utilisation × elapsed / stores). */
  mainMsPerStore: number;
  /** The longest the event loop was late meanwhile. */
  maxDelayMs: number;
  storesPerSecond: number;
}

/**
 * What SQLite's writes cost the worker's event loop: a store's catalog writes
 * (pending, then complete with its audit event) from 16 concurrent tasks, on
 * the main thread's connection, gathered per turn as depot writes them.
 */
async function sqliteThreading(scratch: Scratch): Promise<ThreadingRun[]> {
  const runs: ThreadingRun[] = [];
  {
    const file = path.join(await scratch.dir('catalog-threading'), 'catalog.sqlite');
    const sqlite = new SqliteDatabase(file, file);
    await sqlite.prepareForWriting();
    await migrate(sqlite, file);
    const catalog = new SqlCatalog(sqlite, file);
    const random = seeded(3);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const before = performance.eventLoopUtilization();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < PLAN.writes) {
          const m = syntheticManifest(next++, random);
          const ref = { driver: 'bench', key: m.key };
          await catalog.recordPending({ ref, taskId: m.taskId, name: m.name, metadata: m.metadata, deleteAfter: m.deleteAfter });
          await new Promise((resolve) => setImmediate(resolve)); // the publish in between
          await catalog.recordStored('bench', m, {
            operation: 'store',
            taskId: m.taskId,
            ref,
            outcome: 'ok',
            actor: 'queue',
            eventKey: `store:bench:${m.key}`,
          });
        }
      }),
    );
    const elapsed = performance.now() - started;
    const used = performance.eventLoopUtilization(before);
    delay.disable();
    runs.push({
      mainMsPerStore: (used.utilization * elapsed) / PLAN.writes,
      maxDelayMs: delay.max / 1e6,
      storesPerSecond: PLAN.writes / (elapsed / 1000),
    });
    await catalog.close();
  }
  return runs;
}

/** The tree at `ref`, changed by `edit`, built, with this checkout's node_modules: a `depot` to run beside the current one. */
function buildAt(ref: string, dir: string, log: (line: string) => void, edit?: (dir: string) => void): string {
  log(`  building ${ref}${edit ? ' (changed)' : ''} in ${dir}`);
  mkdirSync(dir, { recursive: true });
  execFileSync('sh', ['-c', `git -C "${PROJECT_ROOT}" archive "${ref}" | tar -x -C "${dir}"`]);
  edit?.(dir);
  symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  execFileSync(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  return path.join(dir, 'bin', 'depot');
}

/** 4 KiB stores per second through one `depot worker` (concurrency 16), as measurement 3 runs them. */
async function drainWith(ctx: BenchContext, bin: string, catalogUrl: string | undefined, count: number): Promise<number> {
  const dirs = await ctx.scratch.layout('catalog-small', ['archive']);
  const queue = freshQueue('catalog-small');
  const file = path.join(dirs.base, 'depot.yaml');
  writeFileSync(
    file,
    YAML.stringify({
      redis: { url: ctx.redisUrl },
      // No scheduled runs in a drain: the tree without the catalog has no fixity run, and an expire run at start
      // refuses (fails) with the catalog while its first reindex is running.
      queue: { name: queue, concurrency: 16, expiryIntervalMs: 0 },
      defaultDriver: 'bench',
      drivers: { bench: { type: 'filesystem', root: dirs.archive } },
      ...(catalogUrl ? { catalog: { url: catalogUrl } } : {}),
      fixity: { intervalMs: 0 },
    }),
  );
  const previous = process.env.BENCH_DEPOT_BIN;
  process.env.BENCH_DEPOT_BIN = bin;
  let worker: WorkerProcess | undefined;
  try {
    worker = await startDepotWorker(file, path.join(dirs.base, 'worker.log'));
    const producer = new Producer(ctx.redisUrl, queue);
    try {
      await producer.queue.pause();
      const ids = await producer.storeMany(count, { base64: randomBytes(4096).toString('base64') });
      await producer.queue.resume();
      await producer.waitFinished(ids, 300_000);
      return await producer.drainRate(ids);
    } finally {
      await producer.close();
    }
  } finally {
    if (previous === undefined) delete process.env.BENCH_DEPOT_BIN;
    else process.env.BENCH_DEPOT_BIN = previous;
    if (worker) await stopAll([worker]);
  }
}

async function smallStoreCost(ctx: BenchContext, databases: TestDatabase[]): Promise<SmallCost> {
  const builds = await ctx.scratch.dir('catalog-builds');
  const log = (line: string) => ctx.log(line);
  const withCatalog = buildAt('HEAD', path.join(builds, 'with'), log);
  const without = WITHOUT_CATALOG_REF
    ? buildAt(WITHOUT_CATALOG_REF, path.join(builds, 'without'), log)
    : buildAt('HEAD', path.join(builds, 'without'), log, withoutCatalogWrites);
  const result: SmallCost = { count: PLAN.smallCount, without: [], sqlite: [], postgres: [] };
  for (let i = 0; i < PLAN.smallRuns; i++) {
    for (const who of rotated(['without', 'sqlite', 'postgres'] as const, i)) {
      if (who === 'without') result.without.push(await drainWith(ctx, without, undefined, PLAN.smallCount));
      else if (who === 'sqlite') result.sqlite.push(await drainWith(ctx, withCatalog, undefined, PLAN.smallCount));
      else {
        const db = await createTestDatabase('depot_bench');
        databases.push(db);
        result.postgres.push(await drainWith(ctx, withCatalog, db.url, PLAN.smallCount));
      }
    }
    ctx.log(
      `  small run ${i + 1}: without ${result.without[i].toFixed(0)}/s, SQLite ${result.sqlite[i].toFixed(0)}/s, PostgreSQL ${result.postgres[i].toFixed(0)}/s`,
    );
  }
  return result;
}

function section(
  results: DatabaseResult[],
  threading: ThreadingRun[],
  small: SmallCost,
  facts: { started: Date; minutes: number; loadBefore: number[]; loadAfter: number[] },
): string {
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const lines = [
    SECTION_START,
    '## The catalog (issue 14)',
    '',
    `Generated by \`npm run bench -- catalog\` (bench/catalog.ts) on ${facts.started.toISOString()}; the run took ${facts.minutes.toFixed(1)} minutes;`,
    `load average before / after: ${facts.loadBefore.map((l) => l.toFixed(2)).join(' ')} / ${facts.loadAfter.map((l) => l.toFixed(2)).join(' ')}`,
    `(2 cores shared with other work). Node ${process.version}, SQLite ${sqliteVersion()} (node:sqlite, WAL, synchronous=NORMAL),`,
    `PostgreSQL on 127.0.0.1 (the machine's server, a database of the run's own). ${PLAN.entries.toLocaleString('en')} entries:`,
    `~${(PLAN.entries / USERS).toFixed(0)} archives per userId, a tenth of them quiz archives naming five users in a list.`,
    '',
    row(['measurement', ...results.map((r) => (r.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL')), 'target', '']),
    row(['---', ...results.map(() => '---'), '---', '---']),
    row([
      `bulk insert (the reindex's batch upsert, ${BATCH} per batch)`,
      ...results.map((r) => `${fmt(PLAN.entries / r.insertSeconds, 0)} entries/s (${fmt(r.insertSeconds, 0)} s)`),
      '(reported)',
      '',
    ]),
    row([
      'lookup by userId (a page of up to 100), p50 / p99',
      ...results.map((r) => `${fmt(r.lookup.p50, 2)} / ${fmt(r.lookup.p99, 2)} ms (max ${fmt(r.lookup.max, 1)}; ${fmt(r.lookup.matches, 1)} found on average)`),
      'p99 < 50 ms',
      results.every((r) => r.lookup.p99 < 50) ? 'met' : '**missed**',
    ]),
    row([
      `expiry run, ${DUE} due among ${PLAN.entries.toLocaleString('en')}`,
      ...results.map(
        (r) =>
          `${fmt(r.expiry.ms, 0)} ms, ${r.expiry.deleted} deleted; ${r.expiry.rowsRead} catalog rows read; backend: ${
            Object.entries(r.expiry.calls)
              .map(([k, v]) => `${v} ${k}`)
              .join(', ') || 'nothing'
          }`,
      ),
      'reads O(due), well under 1 s',
      results.every((r) => r.expiry.ms < 1000 && r.expiry.rowsRead <= DUE + 1) ? 'met' : '**missed**',
    ]),
    row([
      `reindex from a filesystem driver (${PLAN.reindexArchives.toLocaleString('en')} archives)`,
      ...results.map((r) => `${fmt(r.reindexPerSecond, 0)} manifests/s`),
      '(reported)',
      '',
    ]),
    row(['/metrics figures (counts and bytes per driver, read at most every 30 s)', ...results.map((r) => `${fmt(r.statsMs, 0)} ms`), '(reported)', '']),
    row([
      "one store's catalog writes (pending + complete + audit) on the full catalog, p50 / p99 / max",
      ...results.map((r) => `${fmt(r.storeWrites.p50, 2)} / ${fmt(r.storeWrites.p99, 2)} / ${fmt(r.storeWrites.max, 1)} ms`),
      '(reported)',
      '',
    ]),
    row([
      `one reindex batch (${BATCH} manifests), p50 / max`,
      ...results.map((r) => `${fmt(r.batchMs.p50, 1)} / ${fmt(r.batchMs.max, 1)} ms`),
      '(reported)',
      '',
    ]),
    row(['size on disk', ...results.map((r) => `${fmt(r.sizeMiB, 0)} MiB`), '(reported)', '']),
    '',
  ];
  lines.push(
    row([
      `SQLite: ${PLAN.writes.toLocaleString('en')} stores' catalog writes from 16 concurrent tasks`,
      "main thread's time per store",
      'event loop late by at most',
      'stores/s',
      '',
    ]),
    row(['---', '---', '---', '---', '---']),
    ...threading.map((t) =>
      row([
        'on the main thread, gathered per turn of the event loop (what depot does)',
        `${fmt(t.mainMsPerStore, 3)} ms`,
        `${fmt(t.maxDelayMs, 1)} ms`,
        fmt(t.storesPerSecond, 0),
        '',
      ]),
    ),
    '',
  );
  const sqliteRatio = median(pairedRatios(small.sqlite, small.without));
  const pgRatio = median(pairedRatios(small.postgres, small.without));
  lines.push(
    row(['small stores (4 KiB, concurrency 16, one `depot worker`)', 'per second', 'vs without the catalog', 'target', '']),
    row(['---', '---', '---', '---', '---']),
    row([
      WITHOUT_CATALOG_REF ? `without the catalog (the tree at ${WITHOUT_CATALOG_REF})` : 'without the catalog (this tree, its catalog writes made no-ops)',
      `${fmtSpread(small.without, 0)}`,
      '',
      '',
      '',
    ]),
    row([
      'with the catalog on SQLite (the default)',
      `${fmtSpread(small.sqlite, 0)}`,
      `${fmt((1 - sqliteRatio) * 100, 1)} % slower`,
      '≤ 10 % slower',
      sqliteRatio >= 0.9 ? 'met' : '**missed**',
    ]),
    row([
      'with the catalog on PostgreSQL',
      `${fmtSpread(small.postgres, 0)}`,
      `${fmt((1 - pgRatio) * 100, 1)} % slower`,
      '≤ 10 % slower',
      pgRatio >= 0.9 ? 'met' : '**missed**',
    ]),
    '',
    `Raw runs, ${small.count} stores each (without / SQLite / PostgreSQL): ${small.without.map((v) => v.toFixed(0)).join(', ')} / ${small.sqlite.map((v) => v.toFixed(0)).join(', ')} / ${small.postgres.map((v) => v.toFixed(0)).join(', ')}.`,
    SECTION_END,
  );
  return lines.join('\n');
}

function sqliteVersion(): string {
  const db = new DatabaseSync(':memory:');
  try {
    return String((db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v);
  } finally {
    db.close();
  }
}

/** `text` with its catalog section replaced by `replacement` (appended when it has none). */
export function withCatalogSection(text: string, replacement: string): string {
  const start = text.indexOf(SECTION_START);
  const end = text.indexOf(SECTION_END);
  if (start < 0 || end < 0) return `${text.trimEnd()}\n\n${replacement}\n`;
  return `${text.slice(0, start)}${replacement}${text.slice(end + SECTION_END.length)}`;
}

/** The catalog section of a BENCHMARKS.md, or '' (a full run keeps it). */
export function catalogSectionOf(text: string): string {
  const start = text.indexOf(SECTION_START);
  const end = text.indexOf(SECTION_END);
  return start < 0 || end < 0 ? '' : text.slice(start, end + SECTION_END.length);
}

export async function runCatalogBenchmarks(): Promise<void> {
  const started = Date.now();
  const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const loadBefore = os.loadavg();
  const scratch = new Scratch();
  const databases: TestDatabase[] = [];
  const redis = await startRedis();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAllWorkers();
      void Promise.allSettled([scratch.close(), redis.stop(), ...databases.map((d) => d.drop())]).then(() => process.exit(130));
    });
  }
  try {
    // The small stores first: the million-entry inserts leave the disk writing back for minutes, and
    // a drain of small stores measured after them measures that writeback as much as the catalog.
    log('small stores with and without the catalog');
    const small = PARTS.includes('small')
      ? await smallStoreCost({ redisUrl: redis.url, scratch, log, nodeArgs: [] }, databases)
      : { count: 0, without: [], sqlite: [], postgres: [] };
    const results: DatabaseResult[] = [];
    for (const kind of PARTS.includes('databases') ? (['sqlite', 'postgres'] as const) : []) {
      log(`catalog on ${kind}`);
      results.push(await databaseBenchmarks(kind, scratch, databases, log));
    }
    log("SQLite's writes on the main thread");
    const threading = PARTS.includes('databases') ? await sqliteThreading(scratch) : [];
    for (const t of threading)
      log(`  ${t.mainMsPerStore.toFixed(3)} ms of the main thread per store, event loop late by ${t.maxDelayMs.toFixed(1)} ms at most`);
    if (PARTS.length < 2) {
      // A partial run (while investigating) prints what it measured and keeps the file as it is.
      console.log(JSON.stringify({ results, threading, small }, null, 2));
      return;
    }
    const text = section(results, threading, small, {
      started: new Date(started),
      minutes: (Date.now() - started) / 60_000,
      loadBefore,
      loadAfter: os.loadavg(),
    });
    console.log(`\n${text}\n`);
    const target = QUICK ? path.join(os.tmpdir(), 'depot-BENCHMARKS.catalog.quick.md') : path.join(PROJECT_ROOT, 'docs', 'BENCHMARKS.md');
    const before = QUICK ? '' : readFileSync(target, 'utf8');
    writeFileSync(target, withCatalogSection(before, text));
    log(`wrote ${target}`);
  } finally {
    await scratch.remove();
    await Promise.allSettled(databases.map((d) => d.drop()));
    await redis.stop();
  }
}
