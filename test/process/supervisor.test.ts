import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { StoreResult } from '../../src/contract';
import { createRedis } from '../../src/queue/connection';
import { jsonOf, runDepot } from '../helpers/depot-cli';
import {
  archiveKeysBelow,
  cleanupAll,
  eventually,
  exitWithin,
  killAllWorkerProcesses,
  queueClient,
  QueueClient,
  settle,
  spawnDepotCommand,
  startTestRedis,
  TempDirs,
  TestRedis,
  WorkerProcess,
  writeConfigFile,
  writePatternFile,
} from '../helpers/queue-harness';
import { Digest, MiB } from '../helpers/streams';
import { processAlive } from '../../src/support/process-alive';

/**
 * `depot worker --processes N` (CONTRACT §10) as operators run it: real
 * processes, a real redis-server (and a Redis Cluster:
 * test/redis/cluster-supervisor.test.ts runs this file there), a store from a
 * local HTTP source that the test holds in the middle so that a child can be
 * killed during it.
 */
jest.setTimeout(120_000);

const SIZE = 64 * MiB;
const BEFORE_STALL = 8 * MiB;
/** Locks far longer than the test waits: only the supervisor's hand-back can bring the task back in time. */
const LOCK_DURATION_MS = 60_000;
const STALLED_INTERVAL_MS = 30_000;
const temp = new TempDirs();
let redis: TestRedis;
let client: QueueClient;
let server: Server;
let work: string;
let sourceFile: string;
let source: Digest;
let requests = 0;

interface Status {
  workers: Array<{ name: string }>;
  supervisors: Array<{ name: string; pid: number; processes: number; children: Array<{ name: string; pid?: number; state: string; restarts: number }> }>;
}

beforeAll(async () => {
  redis = await startTestRedis();
  client = await queueClient(redis);
  work = await temp.make('depot-supervisor-');
  sourceFile = path.join(work, 'source.bin');
  source = await writePatternFile(sourceFile, SIZE, 'supervised');
  // The first download stalls after BEFORE_STALL bytes and never ends; later ones send everything.
  server = createServer((_request, response) => {
    requests += 1;
    const stall = requests === 1;
    response.writeHead(200, { 'content-length': String(SIZE) });
    const stream = createReadStream(sourceFile, stall ? { end: BEFORE_STALL - 1 } : {});
    stream.pipe(response, { end: !stall });
    response.on('close', () => stream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await cleanupAll(
    () => killAllWorkerProcesses(),
    () => client?.close(),
    () => new Promise<void>((resolve) => server.close(() => resolve())),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

async function config(dir: string, supervisor: Record<string, number> = {}): Promise<string> {
  return writeConfigFile(dir, {
    redis: redis.config,
    queue: {
      prefix: redis.prefix,
      lockDurationMs: LOCK_DURATION_MS,
      stalledIntervalMs: STALLED_INTERVAL_MS,
      attempts: 2,
      backoffMs: 50,
      // Nothing runs when the tests stop the pool, so a clean stop takes well under a second; the bound (grace + 3 s, then
      // exit 1) only has to outlast a close slowed by the rest of CI's load (a catalog fsync behind a 1 GiB upload).
      shutdownGraceMs: 20_000,
    },
    sources: { timeoutMs: 120_000 },
    drivers: { local: { type: 'filesystem', root: path.join(dir, 'archive') } },
    supervisor,
  });
}

async function status(configFile: string): Promise<Status> {
  return jsonOf<Status>(await runDepot(['status', '--json'], configFile));
}

async function supervised(configFile: string, name: string, processes: number): Promise<WorkerProcess> {
  const supervisor = spawnDepotCommand(['worker', '--processes', String(processes)], configFile, { DEPOT_WORKER_NAME: name });
  await eventually(
    async () => {
      const s = (await status(configFile)).supervisors.find((x) => x.name === name);
      return s && s.children.every((c) => c.state === 'running') ? s : undefined;
    },
    60_000,
    'every child to be running',
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${supervisor.output()}`);
  });
  return supervisor;
}

test('SIGKILL of one of two children mid-store: its task is handed back at once and completes intact; the child is back with a new pid; SIGTERM stops all, exit 0', async () => {
  const dir = await temp.make('depot-supervised-');
  const configFile = await config(dir);
  const supervisor = await supervised(configFile, 'pool', 2);
  const before = (await status(configFile)).supervisors[0];
  expect(before).toMatchObject({ name: 'pool', pid: supervisor.pid, processes: 2 });
  expect(before.children.map((c) => c.name)).toEqual(['pool-1', 'pool-2']);
  expect((await status(configFile)).workers.map((w) => w.name).sort()).toEqual(expect.arrayContaining(['pool-1', 'pool-2']));

  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/big.bin`;
  const job = await client.queue.add('store', { taskId: 'supervised-1', name: 'big.bin', source: { url } }, { jobId: 'task-supervised-1' });
  await eventually(async () => ((await job.getState()) === 'active' && requests >= 1 ? true : undefined), 30_000, 'the store to run');
  // Held in the middle: some bytes written, the source stalled.
  await eventually(
    async () => {
      const progress = (await client.queue.getJob(job.id ?? ''))?.progress as { bytes?: number } | undefined;
      return (progress?.bytes ?? 0) > 0 ? true : undefined;
    },
    30_000,
    'progress',
  );
  const running = await client.queue.getJob(job.id ?? '');
  const victim = before.children.find((c) => c.name === running?.processedBy);
  expect(victim?.pid).toBeDefined();
  const killedAt = Date.now();
  process.kill(victim?.pid ?? -1, 'SIGKILL');

  const outcome = await settle(client, job, 60_000);
  const recoveredMs = Date.now() - killedAt;
  expect(outcome.state).toBe('completed');
  const result = outcome.result as StoreResult;
  expect(result).toMatchObject({ size: SIZE, sha256: source.sha256, ref: { driver: 'local' } });
  expect(await archiveKeysBelow(path.join(dir, 'archive'))).toEqual([result.ref.key]);
  // Handed back by the supervisor (the lock still had most of its minute to run, and no stalled check ran),
  // counted as one stall, and logged.
  expect(recoveredMs).toBeLessThan(LOCK_DURATION_MS);
  expect(supervisor.output()).toContain(`job ${job.id} of worker ${victim?.name}, which died, handed back to the queue`);
  const raw = createRedis(redis.target, 'worker');
  expect(await raw.hget(`${redis.prefix}:depot:${job.id}`, 'stc').finally(() => raw.disconnect())).toBe('1');

  // The child is back under its name, with a new pid.
  const after = await eventually(
    async () => {
      const s = (await status(configFile)).supervisors[0];
      const child = s?.children.find((c) => c.name === victim?.name);
      return child?.state === 'running' && child.pid !== victim?.pid ? s : undefined;
    },
    30_000,
    'the child to be back',
  );
  expect(after.children.find((c) => c.name === victim?.name)?.restarts).toBe(1);
  const pids = after.children.map((c) => c.pid ?? -1);

  supervisor.child.kill('SIGTERM');
  const exit = await exitWithin(supervisor, 30_000);
  if (exit.code !== 0) throw new Error(`the supervisor stopped with ${JSON.stringify(exit)}; output:\n${supervisor.output()}`);
  expect(exit).toEqual({ code: 0, signal: null });
  for (const pid of pids) expect(processAlive(pid)).toBe(false);
  expect((await status(configFile)).supervisors).toEqual([]);
});

test('a child that dies at start again and again is a crash loop: more than supervisor.maxRestarts restarts within the window, exit 1, no child left', async () => {
  const dir = await temp.make('depot-crashloop-');
  const configFile = await config(dir, { maxRestarts: 2, windowMs: 60_000 });
  const supervisor = await supervised(configFile, 'loop', 2);
  const pids = (await status(configFile)).supervisors[0].children.map((c) => c.pid ?? -1);
  // The config breaks under the running pool (a bad deploy): every child started from now on exits at start (code 2).
  await writeFile(configFile, 'queue: [this is not a mapping\n');
  process.kill(pids[0], 'SIGKILL');
  expect(await exitWithin(supervisor, 60_000)).toEqual({ code: 1, signal: null });
  expect(supervisor.output()).toContain('crash loop: 3 worker restarts');
  await eventually(() => (pids.every((pid) => !processAlive(pid)) ? true : undefined), 10_000, 'no child left');
});
