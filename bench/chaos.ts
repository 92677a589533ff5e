/**
 * `npm run chaos` (issue 15, CONTRACT §10): a mixed load — stores of varied
 * sizes, retrieves and deletes — on `depot worker --processes N` (the
 * supervisor, from the build in dist/) against a Sentinel set (one master, one
 * replica, three sentinels), while random worker children are SIGKILLed every
 * few seconds, 100 times, and the Redis master is SIGKILLed once half-way.
 * Then every task is checked: completed exactly once, no archive lost,
 * partial or duplicated, every retrieve's bytes right. Prints the figures and
 * writes them into docs/RELIABILITY.md (between the chaos markers).
 *
 * Not part of `npm test`: it runs for a few minutes. CHAOS_KILLS and
 * CHAOS_PROCESSES change the run (a short smoke run: CHAOS_KILLS=10); only a
 * run with the default 100 kills is written into the document.
 */
import { createHash } from 'node:crypto';
import { createReadStream, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { Queue } from 'bullmq';
import YAML from 'yaml';
import { ArchivingManager } from '../src/archiving/manager';
import { newTaskId } from '../src/contract';
import { createRedis, RedisClient, RedisTarget } from '../src/queue/connection';
import { jobIdFor } from '../src/queue/names';
import { STAGING_DIR, writerGone } from '../src/storage/staging';
import { startSentinelSet } from '../test/helpers/redis-sentinel';
import { PROJECT_ROOT } from './env';
import { Scratch, writeRandomFile } from './scratch';
import { fmt, MiB, percentile } from './stats';

const KiB = 1024;

const KILLS = Number(process.env.CHAOS_KILLS ?? 100);
const PROCESSES = Number(process.env.CHAOS_PROCESSES ?? 4);
/** A kill every 2 to 4 s (uniformly at random): each child is killed about every 12 s, past the 10 s after which the supervisor counts it healthy. */
const KILL_GAP_MS: [number, number] = [2_000, 4_000];
/** Tasks kept in flight by the producer. */
const IN_FLIGHT = 24;
const CONCURRENCY = 8;
/** How long the run may take to settle every task once the kills are over. */
const DRAIN_MS = 180_000;
const QUEUE = 'depot';
const PREFIX = 'bull';

/** Store sizes and how often each is drawn. */
const SIZES: Array<{ bytes: number; weight: number }> = [
  { bytes: 1 * KiB, weight: 35 },
  { bytes: 64 * KiB, weight: 35 },
  { bytes: 1 * MiB, weight: 20 },
  { bytes: 4 * MiB, weight: 8 },
  { bytes: 16 * MiB, weight: 2 },
];

type Operation = 'store' | 'retrieve' | 'delete';

interface Task {
  taskId: string;
  jobId: string;
  operation: Operation;
  submittedAt: number;
  /** sha256 of the bytes stored, or expected back. */
  sha256: string;
  size: number;
  /** Retrieve and delete: the archive's key. */
  key?: string;
  /** Retrieve: where its bytes land. */
  target?: string;
  state: 'queued' | 'completed' | 'failed';
  settledAt?: number;
  result?: unknown;
  failedReason?: string;
  /** Times its job was missing from Redis and the task was queued again (a write lost in the failover). */
  requeued: number;
  /** Why it was queued (the task, for a requeue). */
  data: Record<string, unknown>;
}

interface Archive {
  key: string;
  sha256: string;
  size: number;
  /** Retrieves in flight: a delete waits until none. */
  reading: number;
}

interface Kill {
  at: number;
  child: string;
  /** Jobs the child was running when it was killed. */
  jobs: string[];
  /** ms until the child's replacement had its worker connection on Redis (took jobs again). */
  backMs?: number;
  /** ms until every job it was running had completed (run again by a live child). */
  redoneMs?: number;
}

const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function drawSize(): number {
  let n = Math.random() * SIZES.reduce((sum, s) => sum + s.weight, 0);
  for (const s of SIZES) {
    n -= s.weight;
    if (n <= 0) return s.bytes;
  }
  return SIZES[0].bytes;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Live children of `pid`, with the worker name each was given (DEPOT_WORKER_NAME). */
function childrenOf(pid: number): Array<{ pid: number; name: string }> {
  const found: Array<{ pid: number; name: string }> = [];
  let pids: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      pids.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    }
  } catch {
    pids = [];
  }
  for (const child of pids) {
    try {
      const env = readFileSync(`/proc/${child}/environ`, 'utf8').split('\0');
      const name = env.find((e) => e.startsWith('DEPOT_WORKER_NAME='))?.slice('DEPOT_WORKER_NAME='.length);
      if (name && readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z') found.push({ pid: child, name });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Worker names with a connection open on Redis now. */
async function connectedWorkers(queue: Queue): Promise<Set<string>> {
  const marker = `:${Buffer.from(queue.name).toString('base64')}:w:`;
  const names = new Set<string>();
  for (const client of await queue.getWorkers()) {
    const raw = client.rawname ?? '';
    const at = raw.indexOf(marker);
    if (at >= 0) names.add(raw.slice(at + marker.length));
  }
  return names;
}

async function main(): Promise<void> {
  const scratch = new Scratch();
  const sentinelSet = await startSentinelSet();
  let supervisor: ChildProcess | undefined;
  let manager: ArchivingManager | undefined;
  let queue: Queue | undefined;
  let connection: RedisClient | undefined;
  let logFile: string | undefined;
  const started = Date.now();
  try {
    const dir = await scratch.dir('chaos');
    const root = path.join(dir, 'archive');
    const sources = path.join(dir, 'sources');
    const retrieved = path.join(dir, 'retrieved');
    for (const d of [root, sources, retrieved]) await mkdir(d, { recursive: true });
    // One source file per size: stores of one size carry the same bytes under their own keys.
    const sourceOf = new Map<number, { file: string; sha256: string }>();
    for (const { bytes } of SIZES) {
      const file = path.join(sources, `${bytes}.bin`);
      writeRandomFile(file, bytes);
      sourceOf.set(bytes, { file, sha256: await sha256File(file) });
    }
    const redisSection = sentinelSet.redisConfig;
    const target: RedisTarget = { kind: 'sentinel', ...redisSection };
    const catalogUrl = `sqlite:${path.join(dir, 'catalog.sqlite')}`;
    const configFile = path.join(dir, 'depot.yaml');
    await writeFile(
      configFile,
      YAML.stringify({
        redis: redisSection,
        queue: {
          name: QUEUE,
          prefix: PREFIX,
          concurrency: CONCURRENCY,
          attempts: 10,
          backoffMs: 200,
          keepCompleted: { count: 1_000_000, ageSeconds: 86_400 },
          keepFailed: { count: 1_000_000, ageSeconds: 86_400 },
        },
        // Raised for the run: 100 kills in a few minutes are a crash loop by the default (5 in 60 s).
        supervisor: { maxRestarts: 10_000, windowMs: 60_000 },
        defaultDriver: 'local',
        drivers: { local: { type: 'filesystem', root } },
        paths: { allowed: [sources, retrieved] },
        catalog: { url: catalogUrl },
      }),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, DEPOT_CONFIG: configFile, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', DEPOT_WORKER_NAME: 'chaos' };
    for (const name of ['DEPOT_DATA', 'REDIS_URL', 'NODE_OPTIONS', 'DEPOT_FROM_SOURCE']) delete env[name];
    const supervisorLog = path.join(dir, 'supervisor.log');
    logFile = supervisorLog;
    const out = openSync(supervisorLog, 'a');
    supervisor = spawn(process.execPath, [depotBin(), 'worker', '--processes', String(PROCESSES)], {
      cwd: dir,
      env,
      stdio: ['ignore', out, out],
    });
    const supervisorPid = supervisor.pid ?? 0;
    let supervisorExit: string | undefined;
    supervisor.once('exit', (code, signal) => (supervisorExit = `exit ${code ?? signal}`));

    const producerSide = new ArchivingManager({ redis: target, prefix: PREFIX, queueName: QUEUE, catalog: catalogUrl });
    manager = producerSide;
    connection = createRedis(target, 'worker');
    connection.on('error', () => undefined);
    queue = new Queue(QUEUE, { connection, prefix: PREFIX });
    queue.on('error', () => undefined);
    const q = queue;
    const waitUntil = async (check: () => Promise<boolean>, ms: number, what: string) => {
      const until = Date.now() + ms;
      while (!(await check().catch(() => false))) {
        if (supervisorExit)
          throw new Error(`the supervisor stopped (${supervisorExit}) while waiting for ${what}:\n${readFileSync(supervisorLog, 'utf8').slice(-3000)}`);
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await sleep(25);
      }
    };
    await waitUntil(async () => (await connectedWorkers(q)).size >= PROCESSES, 60_000, 'every worker child');
    log(`supervisor ${supervisorPid} with ${PROCESSES} children up; Sentinel master ${JSON.stringify(await sentinelSet.master())}`);

    // --- the load ---
    const tasks = new Map<string, Task>();
    const archives = new Map<string, Archive>();
    let outstanding = 0;
    let producing = true;
    let submitFailures = 0;
    const producerRetries: number[] = [];

    const submit = async (task: Task): Promise<void> => {
      // A producer whose call failed (Redis unreachable, a failover) queues the same task again: the taskId makes that safe.
      for (let tries = 0; ; tries++) {
        try {
          const at = Date.now();
          const handle = await producerSide.enqueue(task.operation, task.data);
          task.jobId = handle.jobId;
          if (tries > 0) producerRetries.push(Date.now() - at);
          return;
        } catch (error) {
          submitFailures++;
          if (tries === 0) log(`  queueing failed (${(error as Error).message.slice(0, 120)}); retrying the same task`);
          await sleep(200);
        }
      }
    };

    const nextTask = (): Task | undefined => {
      const roll = Math.random();
      const ready = [...archives.values()];
      if (roll < 0.2 && ready.length > 0) {
        const archive = ready[Math.floor(Math.random() * ready.length)];
        const taskId = newTaskId();
        const target = path.join(retrieved, `${taskId}.bin`);
        archive.reading++;
        const data = { taskId, ref: { driver: 'local', key: archive.key }, target: { path: target } };
        return {
          taskId,
          jobId: jobIdFor(taskId),
          operation: 'retrieve',
          submittedAt: Date.now(),
          sha256: archive.sha256,
          size: archive.size,
          key: archive.key,
          target,
          state: 'queued',
          requeued: 0,
          data,
        };
      }
      if (roll < 0.3) {
        const idle = ready.filter((a) => a.reading === 0);
        if (idle.length > 0) {
          const archive = idle[Math.floor(Math.random() * idle.length)];
          archives.delete(archive.key);
          const taskId = newTaskId();
          const data = { taskId, ref: { driver: 'local', key: archive.key } };
          return {
            taskId,
            jobId: jobIdFor(taskId),
            operation: 'delete',
            submittedAt: Date.now(),
            sha256: archive.sha256,
            size: archive.size,
            key: archive.key,
            state: 'queued',
            requeued: 0,
            data,
          };
        }
      }
      const size = drawSize();
      const source = sourceOf.get(size)!;
      const taskId = newTaskId();
      const data = { taskId, name: `chaos-${size}.bin`, source: { path: source.file } };
      return { taskId, jobId: jobIdFor(taskId), operation: 'store', submittedAt: Date.now(), sha256: source.sha256, size, state: 'queued', requeued: 0, data };
    };

    const settle = (task: Task, state: 'completed' | 'failed', result: unknown, reason?: string) => {
      task.state = state;
      task.settledAt = Date.now();
      task.result = result;
      task.failedReason = reason;
      outstanding--;
      if (task.operation === 'retrieve' && task.key) {
        const archive = archives.get(task.key);
        if (archive) archive.reading--;
      }
      if (task.operation === 'store' && state === 'completed') {
        const key = (result as { ref?: { key?: string } } | null)?.ref?.key;
        if (key) archives.set(key, { key, sha256: task.sha256, size: task.size, reading: 0 });
      }
    };

    const producer = (async () => {
      while (producing) {
        if (outstanding >= IN_FLIGHT) {
          await sleep(10);
          continue;
        }
        const task = nextTask();
        if (!task) continue;
        tasks.set(task.taskId, task);
        outstanding++;
        await submit(task);
      }
    })();

    // Reads every queued task's job: settled ones leave the queued set; a job Redis no longer has is queued again.
    let polling = true;
    const poller = (async () => {
      while (polling) {
        for (const task of [...tasks.values()].filter((t) => t.state === 'queued' && Date.now() - t.submittedAt > 50)) {
          try {
            const job = await q.getJob(task.jobId);
            if (!job) {
              // Acknowledged, then gone: the add did not reach the replica before the master died.
              task.requeued++;
              log(`  job ${task.jobId} (${task.operation}) missing from Redis: queued again`);
              await submit(task);
              continue;
            }
            const state = await job.getState();
            if (state === 'completed' || state === 'failed') {
              // Read again: the job read before its state may predate its completion (no returnvalue yet).
              const fresh = await q.getJob(task.jobId);
              settle(task, state, fresh?.returnvalue, fresh?.failedReason);
            }
          } catch {
            // Redis failing over: the next round reads it
          }
        }
        await sleep(100);
      }
    })();

    // --- the kills ---
    const kills: Kill[] = [];
    let failover: { killedAt: number; promotedMs: number; firstCompletionMs?: number; killed: string; promoted: string } | undefined;
    const watchers: Array<Promise<void>> = [];
    for (let k = 0; k < KILLS; k++) {
      await sleep(KILL_GAP_MS[0] + Math.random() * (KILL_GAP_MS[1] - KILL_GAP_MS[0]));
      if (supervisorExit) throw new Error(`the supervisor stopped: ${supervisorExit}\n${readFileSync(supervisorLog, 'utf8').slice(-3000)}`);
      if (k === Math.floor(KILLS / 2)) {
        const at = Date.now();
        const { killed, promoted } = await sentinelSet.killMaster();
        failover = { killedAt: at, promotedMs: Date.now() - at, killed: `${killed.port}`, promoted: `${promoted.port}` };
        log(`Redis master ${killed.port} killed; Sentinel promoted ${promoted.port} after ${failover.promotedMs} ms`);
        // The next child kill a gap later, as any other: not measured through the failover.
        await sleep(KILL_GAP_MS[0] + Math.random() * (KILL_GAP_MS[1] - KILL_GAP_MS[0]));
      }
      const live = childrenOf(supervisorPid);
      if (live.length === 0) {
        k--;
        continue;
      }
      const victim = live[Math.floor(Math.random() * live.length)];
      const running = await q
        .getJobs(['active'])
        .then((jobs) => jobs.filter((j) => j.processedBy === victim.name && j.id).map((j) => j.id as string))
        .catch(() => []);
      process.kill(victim.pid, 'SIGKILL');
      const kill: Kill = { at: Date.now(), child: victim.name, jobs: running };
      kills.push(kill);
      watchers.push(
        (async () => {
          // The old connection drops as the kernel closes its sockets; the replacement's comes once it runs.
          let gone = false;
          const until = kill.at + 60_000;
          while (Date.now() < until) {
            const connected = await connectedWorkers(q).catch(() => undefined);
            if (connected) {
              if (!connected.has(victim.name)) gone = true;
              else if (gone) {
                kill.backMs = Date.now() - kill.at;
                break;
              }
            }
            await sleep(25);
          }
          const jobs = kill.jobs.map((id) => [...tasks.values()].find((t) => t.jobId === id)).filter((t): t is Task => t !== undefined);
          while (Date.now() < kill.at + DRAIN_MS && jobs.some((t) => t.state === 'queued')) await sleep(25);
          if (jobs.every((t) => t.state !== 'queued')) kill.redoneMs = Math.max(0, ...jobs.map((t) => (t.settledAt ?? kill.at) - kill.at));
        })(),
      );
      if ((k + 1) % 10 === 0) {
        const done = [...tasks.values()].filter((t) => t.state !== 'queued').length;
        log(`${k + 1} kills; ${tasks.size} tasks queued, ${done} settled`);
      }
    }
    if (failover) {
      const after = [...tasks.values()].map((t) => t.settledAt ?? Infinity).filter((at) => at > failover.killedAt);
      failover.firstCompletionMs = Math.min(...after) - failover.killedAt;
    }

    // --- drain ---
    producing = false;
    await producer;
    const drainUntil = Date.now() + DRAIN_MS;
    while ([...tasks.values()].some((t) => t.state === 'queued') && Date.now() < drainUntil) await sleep(200);
    polling = false;
    await poller;
    await Promise.all(watchers);
    const elapsedS = (Date.now() - started) / 1000;

    // --- the checks ---
    const all = [...tasks.values()];
    const byOp = (op: Operation) => all.filter((t) => t.operation === op);
    const completed = all.filter((t) => t.state === 'completed');
    const failed = all.filter((t) => t.state === 'failed');
    const lost = all.filter((t) => t.state === 'queued');
    // Archives on disk: every completed store's key, less every completed delete's; nothing else.
    const onDisk = new Set<string>();
    for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
      if (entry.isDirectory()) continue;
      const rel = path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
      if (rel.startsWith('.') || rel.endsWith('.depot.json')) continue;
      onDisk.add(rel);
    }
    const stored = new Map<string, Task>();
    for (const t of byOp('store').filter((t) => t.state === 'completed')) {
      const key = (t.result as { ref?: { key?: string } } | null)?.ref?.key;
      if (key) stored.set(key, t);
    }
    const deleted = new Set(
      byOp('delete')
        .filter((t) => t.state === 'completed')
        .map((t) => t.key ?? ''),
    );
    // A delete that ran again after its first run had deleted the archive (the worker died before the job
    // completed) is told not_found (CONTRACT §2, RELIABILITY.md): the archive must be gone all the same.
    const rerunDeletes = byOp('delete').filter((t) => t.state === 'failed' && t.failedReason?.startsWith('not_found:'));
    const gone = new Set(rerunDeletes.filter((t) => t.key && !onDisk.has(t.key)).map((t) => t.key ?? ''));
    const expected = [...stored.keys()].filter((k) => !deleted.has(k) && !gone.has(k));
    const missing = expected.filter((k) => !onDisk.has(k));
    // A store failed by the stall limit (its workers killed under it too often) may have had its archive
    // published by a run that was killed before its job completed: complete and catalogued (TaskRunner.abandoned),
    // although the producer was told the task failed.
    const failedStores = new Set(
      byOp('store')
        .filter((t) => t.state === 'failed')
        .map((t) => t.taskId),
    );
    const unlisted = [...onDisk].filter((k) => !stored.has(k) || deleted.has(k));
    const publishedThenFailed = unlisted.filter((k) => failedStores.has(k.split('/')[3] ?? ''));
    const extra = unlisted.filter((k) => !publishedThenFailed.includes(k));
    for (const k of extra) {
      const owner = all.find((t) => t.taskId === k.split('/')[3]);
      log(`  stray archive ${k}: its task ${owner ? `${owner.operation} ${owner.state} ${owner.failedReason ?? ''}` : 'unknown'}`);
    }
    const storesWithoutKey = byOp('store').filter((t) => t.state === 'completed' && !(t.result as { ref?: { key?: string } } | null)?.ref?.key);
    // A task's archive appears once: no second key holds its taskId.
    const perTask = new Map<string, number>();
    for (const key of onDisk) for (const t of key.split('/')) perTask.set(t, (perTask.get(t) ?? 0) + 1);
    const duplicated = byOp('store').filter((t) => (perTask.get(t.taskId) ?? 0) > 1);
    let partial = 0;
    for (const key of expected.filter((k) => onDisk.has(k))) {
      if ((await sha256File(path.join(root, key))) !== stored.get(key)?.sha256) partial++;
    }
    let badRetrieves = 0;
    for (const t of byOp('retrieve').filter((t) => t.state === 'completed')) {
      if (!t.target || (await sha256File(t.target).catch(() => '')) !== t.sha256) badRetrieves++;
    }
    // Temporary files of stores whose worker was killed: never under a key, removed when a worker next opens the driver.
    const staging = await readdir(path.join(root, STAGING_DIR)).catch(() => []);
    const stagingOfLiveWriters = staging.filter((name) => !writerGone(name));
    const inCatalog = new Set<string>();
    for await (const archive of producerSide.find({ pageSize: 1000 })) if (archive.ref.driver === 'local') inCatalog.add(archive.ref.key);
    const catalogued = inCatalog.size;
    for (const k of [...onDisk].filter((key) => !inCatalog.has(key))) {
      const owner = all.find((t) => t.taskId === k.split('/')[3]);
      log(`  on disk, not in the catalog: ${k} (${owner ? `${owner.operation} ${owner.state} ${owner.failedReason ?? ''}` : 'unknown task'})`);
    }
    for (const k of [...inCatalog].filter((key) => !onDisk.has(key))) log(`  in the catalog, not on disk: ${k}`);
    const backMs = kills.map((k) => k.backMs).filter((v): v is number => v !== undefined);
    const redoneMs = kills
      .filter((k) => k.jobs.length > 0)
      .map((k) => k.redoneMs)
      .filter((v): v is number => v !== undefined);
    const status = await q.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed');

    const lines: Array<[string, string]> = [
      ['run', `${KILLS} kills of ${PROCESSES} worker children (concurrency ${CONCURRENCY} each), one Sentinel failover; ${fmt(elapsedS, 0)} s`],
      ['tasks submitted', `${all.length} (${byOp('store').length} stores, ${byOp('retrieve').length} retrieves, ${byOp('delete').length} deletes)`],
      ['completed', String(completed.length)],
      ['failed (told to the producer)', failed.length === 0 ? '0' : `${failed.length}: ${failureSummary(failed)}`],
      ['lost (neither completed nor failed)', String(lost.length)],
      ['jobs missing after the failover, queued again by the producer', String(all.filter((t) => t.requeued > 0).length)],
      ['queue calls refused (producer retried)', String(submitFailures)],
      ['deletes that ran again after deleting: told not_found, archive gone', `${gone.size} (of ${rerunDeletes.length} told not_found)`],
      ['archives missing', String(missing.length)],
      ['partial archives (bytes differ)', String(partial)],
      ['duplicate or stray archives', String(extra.length + duplicated.length + storesWithoutKey.length)],
      ['stores failed by the stall limit whose archive a killed run had published (complete, catalogued)', String(publishedThenFailed.length)],
      ['retrieves with wrong bytes', String(badRetrieves)],
      [
        'temporary files left by killed writers (removed at the next driver start) / of live writers',
        `${staging.length - stagingOfLiveWriters.length} / ${stagingOfLiveWriters.length}`,
      ],
      ['catalog entries / archives on disk', `${catalogued} / ${onDisk.size}`],
      ['kills with tasks running', `${kills.filter((k) => k.jobs.length > 0).length} (${kills.reduce((s, k) => s + k.jobs.length, 0)} tasks interrupted)`],
      [
        'child back (kill → replacement on Redis), p50 / p99 / max',
        `${fmt(percentile(backMs, 50) / 1000)} / ${fmt(percentile(backMs, 99) / 1000)} / ${fmt(Math.max(...backMs) / 1000)} s (${backMs.length} of ${kills.length})`,
      ],
      [
        'interrupted tasks done (kill → last of them completed), p50 / p99 / max',
        `${fmt(percentile(redoneMs, 50) / 1000)} / ${fmt(percentile(redoneMs, 99) / 1000)} / ${fmt(Math.max(...redoneMs) / 1000)} s`,
      ],
      [
        'Sentinel failover',
        failover
          ? `replica promoted ${fmt(failover.promotedMs / 1000)} s after the master's kill; next task completed ${fmt((failover.firstCompletionMs ?? NaN) / 1000)} s after it`
          : 'none',
      ],
      ['queue at the end', JSON.stringify(status)],
    ];
    const width = Math.max(...lines.map(([k]) => k.length));
    log('');
    for (const [k, v] of lines) log(`${k.padEnd(width)}  ${v}`);
    const slowest = [...kills].sort((a, b) => (b.backMs ?? Infinity) - (a.backMs ?? Infinity)).slice(0, 5);
    log(`slowest returns: ${slowest.map((k) => `kill ${kills.indexOf(k) + 1} (${k.child}) ${fmt((k.backMs ?? NaN) / 1000)} s`).join(', ')}`);
    const ok =
      lost.length === 0 &&
      missing.length === 0 &&
      partial === 0 &&
      extra.length + duplicated.length + storesWithoutKey.length === 0 &&
      badRetrieves === 0 &&
      gone.size === rerunDeletes.length &&
      stagingOfLiveWriters.length === 0 &&
      catalogued === onDisk.size;
    log(ok ? 'OK: nothing lost, partial or duplicated' : 'FAILED: see above');
    if (KILLS === 100) writeResults(lines, ok);
    if (!ok) process.exitCode = 1;
  } finally {
    await manager?.close().catch(() => undefined);
    await queue?.close().catch(() => undefined);
    connection?.disconnect();
    if (supervisor && supervisor.exitCode === null && supervisor.signalCode === null) {
      const exited = new Promise((resolve) => supervisor!.once('exit', resolve));
      supervisor.kill('SIGTERM');
      await Promise.race([exited, sleep(40_000)]);
    }
    await sentinelSet.stop();
    // The supervisor's and its children's log outlives the run's directory, for a look at what happened.
    if (logFile) {
      const kept = path.join(os.tmpdir(), 'depot-chaos-supervisor.log');
      await copyFile(logFile, kept).then(
        () => log(`the workers' log: ${kept}`),
        () => undefined,
      );
    }
    await scratch.close();
  }
}

/** The command operators run, from dist/; CHAOS_DEPOT_BIN runs another copy's bin/depot (e.g. a build made elsewhere). */
function depotBin(): string {
  return process.env.CHAOS_DEPOT_BIN ?? path.join(PROJECT_ROOT, 'bin', 'depot');
}

/** Failures by operation and code: `2 delete not_found, 1 store internal`. */
function failureSummary(failed: Task[]): string {
  const counts = new Map<string, number>();
  for (const t of failed) {
    const reason = t.failedReason ?? '';
    const code = /^([a-z_]+): /.exec(reason)?.[1];
    const label = `${t.operation} ${code ?? `(${reason.slice(0, 60)})`}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts].map(([label, n]) => `${n} ${label}`).join(', ');
}

const BEGIN = '<!-- chaos:begin -->';
const END = '<!-- chaos:end -->';

function writeResults(lines: Array<[string, string]>, ok: boolean): void {
  const file = path.join(PROJECT_ROOT, 'docs', 'RELIABILITY.md');
  const text = readFileSync(file, 'utf8');
  const from = text.indexOf(BEGIN);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`docs/RELIABILITY.md has no ${BEGIN} … ${END} section`);
  const cpus = os.cpus();
  const table = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus.length} × ${cpus[0]?.model.trim() ?? 'CPU'}, Node ${process.versions.node}, ${ok ? 'all checks passed' : '**checks FAILED**'} (\`npm run chaos\`).`,
    '',
    '| | |',
    '|---|---|',
    ...lines.map(([k, v]) => `| ${k} | ${v.replace(/\|/g, '\\|')} |`),
  ].join('\n');
  writeFileSync(file, `${text.slice(0, from + BEGIN.length)}\n${table}\n${text.slice(to)}`);
}

main().catch((error: Error) => {
  process.stderr.write(`chaos: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
