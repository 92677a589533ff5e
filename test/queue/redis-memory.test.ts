import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import IORedis from 'ioredis';
import { ArchivingManager } from '../../src/archiving/manager';
import type { StoreResult } from '../../src/contract';
import { cleanupAll, eventually, InProcessWorker, startInProcessWorker, TempDirs, testConfig } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { MiB, patternBytes } from '../helpers/streams';

/**
 * Redis memory per task, measured (docs/CONTRACT.md, "Redis memory"): the sum
 * of MEMORY USAGE over every key of the queue before and after N tasks, after
 * they completed — the job, its place in the completed set and its events. The
 * bounds fail the test when a task keeps its bytes again; the figures are
 * printed for the docs.
 */
jest.setTimeout(120_000);

const temp = new TempDirs();
let redis: RedisServer;
let raw: IORedis;
let worker: InProcessWorker;
let manager: ArchivingManager;
let work: string;
const figures: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
  raw = new IORedis(redis.url);
  work = await temp.make('depot-memory-');
  const config = testConfig(
    { redis: { url: redis.url }, queue: { inlineResultSeconds: 2 }, drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } } },
    work,
  );
  worker = await startInProcessWorker(config);
  manager = new ArchivingManager({ redisUrl: redis.url });
});

afterAll(async () => {
  // The measured figures, for docs/CONTRACT.md.
  if (figures.length) console.log(`Redis memory per task (MEMORY USAGE, Redis ${await redisVersion()}):\n${figures.join('\n')}`);
  await cleanupAll(
    () => manager?.close(),
    () => worker?.close(),
    async () => raw?.disconnect(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

async function redisVersion(): Promise<string> {
  return /redis_version:(\S+)/.exec(await raw.info('server'))?.[1] ?? '?';
}

/** Bytes of every key of queue `depot`, as Redis counts them (SAMPLES 0: every element). */
async function queueBytes(): Promise<number> {
  let total = 0;
  for (const key of await raw.keys('bull:depot:*')) total += Number(await raw.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
  return total;
}

/** Bytes per task added by `tasks` tasks run one after another, once their jobs are settled. */
async function perTask(label: string, tasks: number, run: (i: number) => Promise<void>, settled: () => Promise<boolean> = async () => true): Promise<number> {
  const before = await queueBytes();
  for (let i = 0; i < tasks; i++) await run(i);
  await eventually(async () => ((await settled()) ? true : undefined), 20_000, `${label}: jobs settled`);
  const bytes = Math.round(((await queueBytes()) - before) / tasks);
  figures.push(`  ${label}: ${bytes} bytes per task (${tasks} tasks)`);
  return bytes;
}

async function inlineSourcesLeft(): Promise<boolean> {
  for (const key of await raw.keys('bull:depot:task-*')) {
    if ((await raw.type(key)) === 'hash' && ((await raw.hget(key, 'data')) ?? '').includes('"base64"')) return false;
  }
  return true;
}

test('a path source store', async () => {
  const file = path.join(work, 'exam.zip');
  await writeFile(file, patternBytes(64 * 1024, 'path-source'));
  const bytes = await perTask('store, path source', 100, async (i) => {
    await (await manager.store({ path: file }, { name: `exam-${i}.zip`, metadata: { courseId: '12', userId: String(i) } })).result(30_000);
  });
  expect(bytes).toBeLessThan(4096);
});

test('an inline source of 1 MiB: once stored, its bytes are no longer in Redis', async () => {
  const base64 = patternBytes(1 * MiB, 'inline-source').toString('base64');
  const bytes = await perTask(
    'store, inline 1 MiB source (base64), after completion',
    5,
    async (i) => {
      await (await manager.store({ base64 }, { name: `inline-${i}.bin` })).result(30_000);
    },
    inlineSourcesLeft,
  );
  expect(bytes).toBeLessThan(8192);
  // While it waits or runs, the job holds the whole source (a run after a crash needs it).
  const waiting = await manager.enqueue('store', { source: { base64 }, name: 'waiting.bin' }, { delay: 600_000 });
  const held = Number(await raw.call('MEMORY', 'USAGE', `bull:depot:${waiting.jobId}`, 'SAMPLES', '0'));
  figures.push(`  store, inline 1 MiB source, while queued: ${held} bytes (the job)`);
  expect(held).toBeGreaterThan(base64.length);
  await raw.del(`bull:depot:${waiting.jobId}`);
  await raw.zrem('bull:depot:delayed', waiting.jobId);
});

test('an inline retrieve of 1 MiB: held until queue.inlineResultSeconds, then gone', async () => {
  const stored: StoreResult = await (
    await manager.store({ base64: patternBytes(1 * MiB, 'retrieve').toString('base64') }, { name: 'retrieve.bin' })
  ).result(30_000);
  await eventually(inlineSourcesLeft, 10_000, 'the store settled');
  const before = await queueBytes();
  const handle = await manager.retrieve(stored.ref, { inline: true });
  await handle.result(30_000);
  const held = (await queueBytes()) - before;
  figures.push(`  retrieve inline 1 MiB, just completed: ${held} bytes (job and completed event)`);
  expect(held).toBeGreaterThan(1 * MiB);
  await eventually(async () => ((await raw.exists(`bull:depot:${handle.jobId}`)) ? undefined : true), 20_000, 'the inline result to be forgotten');
  const left = (await queueBytes()) - before;
  figures.push(`  retrieve inline 1 MiB, after queue.inlineResultSeconds: ${left} bytes`);
  expect(left).toBeLessThan(4096);
});
