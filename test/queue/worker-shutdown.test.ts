import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { StoreResult } from '../../src/contract';
import {
  archiveKeysBelow,
  cleanupAll,
  eventually,
  exitWithin,
  HttpSource,
  killAllWorkerProcesses,
  queueClient,
  QueueClient,
  settle,
  sha256Hex,
  spawnWorkerProcess,
  stagingEntries,
  startHttpSource,
  TempDirs,
  trickle,
  writeConfigFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { KiB, patternBytes } from '../helpers/streams';

/**
 * CONTRACT §3: SIGTERM stops a worker process cleanly (exit 0). A store still
 * running when the grace period ends is handed back to the queue, not failed,
 * and another worker completes it; within a generous grace period it finishes.
 */
jest.setTimeout(90_000);

const temp = new TempDirs();
let redis: RedisServer;
let client: QueueClient;
let sources: HttpSource[] = [];

beforeAll(async () => {
  redis = await startRedis();
  client = await queueClient(redis.port);
});

afterEach(async () => {
  const open = sources;
  sources = [];
  await cleanupAll(
    () => killAllWorkerProcesses(),
    () => Promise.all(open.map((s) => s.close())),
  );
});

afterAll(async () => {
  await cleanupAll(
    () => killAllWorkerProcesses(),
    () => client?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

/** Serves `body` slowly (`chunks` pieces, 100 ms apart) until `fast` is set, then at once. */
async function slowSource(body: Buffer, chunks: number): Promise<{ source: HttpSource; serveFast(): void }> {
  let fast = false;
  const source = await startHttpSource(async (_req, res) => {
    if (fast) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
      res.end(body);
      return;
    }
    await trickle(res, body, Math.ceil(body.length / chunks), 100);
  });
  sources.push(source);
  return { source, serveFast: () => (fast = true) };
}

async function setup(shutdownGraceMs: number): Promise<{ root: string; configFile: string }> {
  const work = await temp.make('depot-shutdown-');
  const root = path.join(work, 'archive');
  const configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    queue: { lockDurationMs: 2000, stalledIntervalMs: 1000, shutdownGraceMs, attempts: 3, backoffMs: 50 },
    drivers: { local: { type: 'filesystem', root } },
  });
  return { root, configFile };
}

/** Resolves once the job's progress shows bytes arriving (and not yet all of them). */
async function waitForBytes(jobId: string, total: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.events.off('progress', onProgress);
      reject(new Error(`no progress for job ${jobId}`));
    }, 30_000);
    const onProgress = ({ jobId: id, data }: { jobId: string; data: unknown }) => {
      const bytes = (data as { bytes?: number }).bytes ?? 0;
      if (id !== jobId || bytes <= 0) return;
      clearTimeout(timer);
      client.events.off('progress', onProgress);
      if (bytes >= total) reject(new Error('the store finished before the signal'));
      else resolve(bytes);
    };
    client.events.on('progress', onProgress);
  });
}

it('SIGTERM with a short grace period: exit 0, the running store is handed back, and another worker completes it', async () => {
  const { root, configFile } = await setup(300);
  const body = patternBytes(480 * KiB, 'handed-back');
  const slow = await slowSource(body, 50); // about 5 s

  const first = spawnWorkerProcess(configFile);
  const job = await client.queue.add('store', { taskId: 'handed-back-1', source: { url: slow.source.url('/slow.mbz') }, name: 'slow.mbz' });
  await waitForBytes(job.id ?? '', body.length);

  first.child.kill('SIGTERM');
  expect(await exitWithin(first, 15_000)).toEqual({ code: 0, signal: null });
  expect(first.output()).toContain('handed back');

  // Back in the queue, not failed, and nothing partial anywhere.
  const stored = await client.queue.getJob(job.id ?? '');
  expect(await stored?.getState()).toBe('waiting');
  expect(stored?.failedReason ?? '').toBe('');
  expect(await archiveKeysBelow(root)).toEqual([]);
  expect(await stagingEntries(root)).toEqual([]);
  const requestsBefore = slow.source.requests;
  expect(requestsBefore).toBe(1);

  slow.serveFast();
  const second = spawnWorkerProcess(configFile);
  const done = await settle(client, job, 60_000);
  expect(done.failedReason).toBeUndefined();
  expect(done.state).toBe('completed');
  const result = done.result as StoreResult;
  expect(result).toMatchObject({ taskId: 'handed-back-1', size: body.length, sha256: sha256Hex(body), driversTried: ['local'], failedOver: false });
  expect(slow.source.requests).toBe(requestsBefore + 1);

  expect(await archiveKeysBelow(root)).toEqual([result.ref.key]);
  expect((await readFile(path.join(root, ...result.ref.key.split('/')))).equals(body)).toBe(true);
  const taskDir = path.join(root, ...result.ref.key.split('/').slice(0, 4));
  expect((await readdir(taskDir)).sort()).toEqual(['slow.mbz', 'slow.mbz.depot.json']);
  expect(await stagingEntries(root)).toEqual([]);

  second.child.kill('SIGTERM');
  expect(await exitWithin(second, 15_000)).toEqual({ code: 0, signal: null });
});

it('SIGTERM with a generous grace period: the running store finishes (completed), then exit 0', async () => {
  const { root, configFile } = await setup(30_000);
  const body = patternBytes(240 * KiB, 'finishes');
  const slow = await slowSource(body, 25); // about 2.5 s

  const worker = spawnWorkerProcess(configFile);
  const job = await client.queue.add('store', { source: { url: slow.source.url('/finishing.mbz') }, name: 'finishing.mbz' });
  const completed = new Promise<unknown>((resolve) => {
    const onCompleted = ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }) => {
      if (jobId !== job.id) return;
      client.events.off('completed', onCompleted);
      resolve(returnvalue);
    };
    client.events.on('completed', onCompleted);
  });
  await waitForBytes(job.id ?? '', body.length);

  worker.child.kill('SIGTERM');
  expect(await exitWithin(worker, 30_000)).toEqual({ code: 0, signal: null });
  // The process is gone; the job had completed before it exited.
  const stored = await client.queue.getJob(job.id ?? '');
  expect(await stored?.getState()).toBe('completed');
  const result = (await completed) as StoreResult;
  expect(stored?.returnvalue).toEqual(result);
  expect(result).toMatchObject({ size: body.length, sha256: sha256Hex(body), attempts: 1, driversTried: ['local'] });
  expect(slow.source.requests).toBe(1);
  expect(await archiveKeysBelow(root)).toEqual([result.ref.key]);
  expect((await readFile(path.join(root, ...result.ref.key.split('/')))).equals(body)).toBe(true);
  expect(await stagingEntries(root)).toEqual([]);
  expect(worker.output()).not.toContain('handed back');
});

it('SIGTERM of an idle worker: exit 0, its connections closed', async () => {
  const { configFile } = await setup(300);
  const worker = spawnWorkerProcess(configFile);
  await eventually(async () => ((await client.queue.getWorkersCount()) >= 1 ? true : undefined), 30_000, 'the worker to connect');
  worker.child.kill('SIGTERM');
  expect(await exitWithin(worker, 15_000)).toEqual({ code: 0, signal: null });
  expect(await client.queue.getWorkersCount()).toBe(0);
});

/**
 * A second SIGTERM or SIGINT, of either kind, while the first one's stop waits
 * for a running store: the worker exits at once with exit code 1, saying so,
 * rather than waiting out the grace period (or being killed by the signal, as a
 * second SIGTERM was when each signal's handler ran once). The store it cut off
 * comes back through stalled-job recovery: a restarted worker completes it.
 */
it.each([
  ['SIGTERM', 'SIGTERM'],
  ['SIGINT', 'SIGTERM'],
] as const)('%s, then %s while the store runs: exit 1 at once, and the store is completed later by another worker', async (first, second) => {
  const { root, configFile } = await setup(30_000);
  const body = patternBytes(480 * KiB, `twice-${first}-${second}`);
  const slow = await slowSource(body, 50); // about 5 s

  const worker = spawnWorkerProcess(configFile);
  const job = await client.queue.add('store', { source: { url: slow.source.url('/twice.mbz') }, name: 'twice.mbz' });
  await waitForBytes(job.id ?? '', body.length);

  worker.child.kill(first);
  await eventually(() => (worker.output().includes(`${first}: stopping`) ? true : undefined), 5_000, 'the first signal to be taken');
  const signalled = Date.now();
  worker.child.kill(second);
  expect(await exitWithin(worker, 5_000)).toEqual({ code: 1, signal: null });
  expect(Date.now() - signalled).toBeLessThan(2_000);
  expect(worker.output()).toContain(`${second} again: exiting at once; running tasks come back through stalled-job recovery`);
  expect(worker.output()).not.toContain('storage worker stopped');
  // Cut off, not finished and not failed; nothing published.
  const stored = await client.queue.getJob(job.id ?? '');
  expect(await stored?.getState()).toBe('active');
  expect(await archiveKeysBelow(root)).toEqual([]);

  slow.serveFast();
  const restarted = spawnWorkerProcess(configFile);
  const done = await settle(client, job, 60_000);
  expect(done.state).toBe('completed');
  expect(done.result).toMatchObject({ size: body.length, sha256: sha256Hex(body) });
  restarted.child.kill('SIGTERM');
  expect(await exitWithin(restarted, 15_000)).toEqual({ code: 0, signal: null });
});
