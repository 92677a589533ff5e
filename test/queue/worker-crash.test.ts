import { createReadStream } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ArchivingManager, ProgressEvent, TaskHandle } from '../../src/archiving/manager';
import type { StoreResult } from '../../src/contract';
import {
  archiveKeysBelow,
  cleanupAll,
  digestFile,
  eventually,
  exitWithin,
  killAllWorkerProcesses,
  queueClient,
  QueueClient,
  spawnWorkerProcess,
  stagingEntries,
  TempDirs,
  WorkerProcess,
  writeConfigFile,
  writePatternFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { Digest, MiB } from '../helpers/streams';
import IORedis from 'ioredis';

/**
 * CONTRACT §3: a worker process killed with SIGKILL in the middle of a 200 MiB
 * store loses no task. A new worker finishes it; the backend then holds exactly
 * one intact archive for the task and no staging leftovers. The source is a
 * local HTTP server, so the test can hold the store in the middle.
 */
jest.setTimeout(150_000);

const SIZE = 200 * MiB;
/** What the source sends before it stalls, the first time it is read. */
const BEFORE_STALL = 32 * MiB;
const temp = new TempDirs();
let redis: RedisServer;
let manager: ArchivingManager | undefined;
let client: QueueClient | undefined;
let work: string;
let root: string;
let sourceFile: string;
let source: Digest;
let server: Server | undefined;
let requests = 0;

/**
 * Serves the source file over HTTP. The first download of each test stalls
 * after BEFORE_STALL bytes and is never finished, so the kill lands in the
 * middle of the store however fast the disk is; later downloads send everything.
 */
async function serveSource(): Promise<string> {
  requests = 0;
  if (!server) {
    server = createServer((_request, response) => {
      requests += 1;
      response.writeHead(200, { 'content-length': String(SIZE), 'content-type': 'application/octet-stream' });
      const stall = requests === 1;
      const stream = createReadStream(sourceFile, stall ? { end: BEFORE_STALL - 1 } : {});
      stream.pipe(response, { end: !stall });
      response.on('close', () => stream.destroy());
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  }
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/course-backup.mbz`;
}

/** Starts a worker and a store from the stalling source; resolves once the worker has reported progress in the middle. */
async function storeHeldMidway(configFile: string): Promise<{ handle: TaskHandle<StoreResult>; first: WorkerProcess }> {
  const progress: ProgressEvent[] = [];
  manager?.removeAllListeners('progress');
  manager?.on('progress', (event: ProgressEvent) => progress.push(event));
  const first = spawnWorkerProcess(configFile);
  await eventually(async () => ((await manager?.workerCount()) ?? 0) >= 1 || undefined, 30_000, `worker ${first.pid} to connect`);
  const url = await serveSource();
  const handle = await manager!.store({ url }, { name: 'course-backup.mbz', metadata: { courseId: '99' } });
  const midway = await eventually(
    () => {
      const mine = progress.filter((p) => p.jobId === handle.jobId);
      if (mine.some((p) => p.bytes >= SIZE)) throw new Error(`the store finished before it could be killed: ${JSON.stringify(mine)}`);
      return mine.find((p) => p.bytes > BEFORE_STALL / 2 && p.bytes < SIZE);
    },
    60_000,
    'progress past 16 MiB',
  ).catch(async (error: Error) => {
    const job = await client?.queue.getJob(handle.jobId);
    throw new Error(`${error.message}; job ${await job?.getState()}, progress seen ${JSON.stringify(progress.slice(-3))}\nworker output:\n${first.output()}`);
  });
  expect(midway.totalBytes).toBe(SIZE);
  return { handle, first };
}

async function expectOneIntactArchive(result: StoreResult, taskId: string): Promise<void> {
  expect(result).toMatchObject({
    taskId,
    ref: { driver: 'local', key: expect.stringMatching(new RegExp(`^\\d{4}/\\d{2}/\\d{2}/${taskId}/course-backup\\.mbz$`)) },
    size: SIZE,
    sha256: source.sha256,
    metadata: { courseId: '99' },
    driversTried: ['local'],
    failedOver: false,
  });
  // The source was read again from the start: one stalled download, one whole.
  expect(requests).toBe(2);
  // Exactly one archive, for this task, with its manifest; no staging files remain.
  expect(await archiveKeysBelow(root)).toEqual([result.ref.key]);
  const taskDir = path.join(root, ...result.ref.key.split('/').slice(0, 4));
  expect((await readdir(taskDir)).sort()).toEqual(['course-backup.mbz', 'course-backup.mbz.depot.json']);
  expect(await stagingEntries(root)).toEqual([]);
}

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make('depot-crash-');
  root = path.join(work, 'archive');
  sourceFile = path.join(work, 'source-200MiB.bin');
  source = await writePatternFile(sourceFile, SIZE, 'crash-200MiB');
  manager = new ArchivingManager({ redisUrl: redis.url });
  await manager.listen();
  client = await queueClient(redis.port);
});

afterEach(async () => {
  await killAllWorkerProcesses();
});

afterAll(async () => {
  await cleanupAll(
    () => killAllWorkerProcesses(),
    () => manager?.close(),
    () => client?.close(),
    () => redis?.stop(),
    () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
    () => temp.cleanup(),
  );
});

it('SIGKILL during a 200 MiB store: a worker elsewhere completes the task once its lock expires; one intact archive, no staging files', async () => {
  const configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    queue: { lockDurationMs: 2000, stalledIntervalMs: 1000, attempts: 3, backoffMs: 50 },
    sources: { timeoutMs: 120_000 },
    drivers: { local: { type: 'filesystem', root } },
  });
  const { handle, first } = await storeHeldMidway(configFile);
  first.child.kill('SIGKILL');
  expect(await exitWithin(first, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });

  // Killed mid-store: the job is still active (nobody finished it), nothing is under a final key, a staging file is left.
  const job = await client!.queue.getJob(handle.jobId);
  expect(await job?.getState()).toBe('active');
  expect(await archiveKeysBelow(root)).toEqual([]);
  const leftovers = await stagingEntries(root);
  expect(leftovers.some((entry) => entry.endsWith('.part'))).toBe(true);

  // Named as if on another host, the new worker cannot know the old one is dead: BullMQ's stalled-job check recovers the task.
  const second = spawnWorkerProcess(configFile, { DEPOT_WORKER_NAME: 'elsewhere-1' });
  const result: StoreResult = await handle.result(90_000).catch((error: Error) => {
    throw new Error(`${error.message}\nsecond worker output:\n${second.output()}`);
  });
  await expectOneIntactArchive(result, handle.taskId);
  expect(second.output()).not.toContain('handed back');

  // The retrieved bytes are the source's.
  const retrievedFile = path.join(work, 'retrieved.mbz');
  const retrieved = await (await manager!.retrieve(result.ref, { path: retrievedFile })).result(90_000);
  expect(retrieved).toMatchObject({ size: SIZE, sha256: source.sha256 });
  expect(await digestFile(retrievedFile)).toEqual(source);
  await rm(retrievedFile, { force: true });

  second.child.kill('SIGTERM');
  expect(await exitWithin(second, 30_000)).toEqual({ code: 0, signal: null });
  await rm(root, { recursive: true, force: true });
});

it("a worker restarted on the same host hands back the task of its dead predecessor at once, not after the lock expires; a live worker's task is left alone", async () => {
  // Locks this long mean the stalled-job check cannot be what recovers the task within the test's bound.
  const configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    queue: { lockDurationMs: 120_000, stalledIntervalMs: 60_000, attempts: 3, backoffMs: 50 },
    sources: { timeoutMs: 120_000 },
    drivers: { local: { type: 'filesystem', root } },
  });
  const { handle, first } = await storeHeldMidway(configFile);

  // A second worker starting while the first is alive does not touch its task.
  const bystander = spawnWorkerProcess(configFile);
  await eventually(async () => ((await manager?.workerCount()) ?? 0) >= 2 || undefined, 30_000, 'the second worker to connect');
  await eventually(() => (bystander.output().includes('storage worker ready') ? true : undefined), 30_000, 'the second worker to be ready');
  const held = await client!.queue.getJob(handle.jobId);
  expect(await held?.getState()).toBe('active');
  expect(held?.processedBy).toMatch(new RegExp(`:${first.pid}$`));
  expect(bystander.output()).not.toContain('handed back');

  first.child.kill('SIGKILL');
  expect(await exitWithin(first, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });
  const restarted = spawnWorkerProcess(configFile);
  const result: StoreResult = await handle.result(60_000).catch((error: Error) => {
    throw new Error(`${error.message}\nrestarted worker output:\n${restarted.output()}`);
  });
  await expectOneIntactArchive(result, handle.taskId);
  expect(restarted.output()).toContain(`job ${handle.jobId} of worker`);
  // The hand-back counts as a stall, so a task that kills every worker still ends failed.
  const raw = new IORedis(redis.url);
  expect(await raw.hget(`bull:depot:${handle.jobId}`, 'stc').finally(() => raw.disconnect())).toBe('1');

  for (const worker of [bystander, restarted]) worker.child.kill('SIGTERM');
  for (const worker of [bystander, restarted]) expect(await exitWithin(worker, 30_000)).toEqual({ code: 0, signal: null });
});
