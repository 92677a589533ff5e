import path from 'node:path';
import { Worker } from 'bullmq';
import IORedis from 'ioredis';
import { ArchivingManager } from '../../src/archiving/manager';
import type { RetrieveResult, StoreResult } from '../../src/contract';
import {
  cleanupAll,
  eventually,
  exitWithin,
  HttpSource,
  InProcessWorker,
  killAllWorkerProcesses,
  queueClient,
  QueueClient,
  settle,
  sha256Hex,
  spawnWorkerProcess,
  startHttpSource,
  startInProcessWorker,
  TempDirs,
  testConfig,
  writeConfigFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { MiB, patternBytes } from '../helpers/streams';

/**
 * What finished jobs keep in Redis (issue 10): producers' credentials and
 * inline bytes stay in a job while it may still run — a run after a crash
 * needs them — and leave its data once it has completed; inline retrieve
 * results are forgotten soon after; how many finished jobs are kept is
 * configured.
 */
jest.setTimeout(120_000);

const QUERY_TOKEN = 'moodle-ws-token-4f1c2b9e7d';
const HEADER_SECRET = 'Bearer header-secret-8a7b6c5d';
const temp = new TempDirs();
let redis: RedisServer;
let raw: IORedis;
let work: string;
let client: QueueClient;
const workers: InProcessWorker[] = [];

beforeAll(async () => {
  redis = await startRedis();
  raw = new IORedis(redis.url);
  work = await temp.make('depot-finished-');
  client = await queueClient(redis.port);
});

afterEach(async () => {
  await killAllWorkerProcesses();
  await Promise.all(workers.splice(0).map((w) => w.close()));
});

afterAll(async () => {
  await cleanupAll(
    () => killAllWorkerProcesses(),
    () => client?.close(),
    async () => raw?.disconnect(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

async function inProcessWorker(queue: Record<string, unknown> = {}): Promise<InProcessWorker> {
  const config = testConfig(
    { redis: { url: redis.url }, queue: { attempts: 1, ...queue }, drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } } },
    work,
  );
  const worker = await startInProcessWorker(config);
  workers.push(worker);
  return worker;
}

/** Every value Redis holds, as text: whatever leaks into any key shows up here. */
async function everythingInRedis(): Promise<string> {
  const parts: string[] = [];
  for (const key of await raw.keys('*')) {
    const type = await raw.type(key);
    if (type === 'hash') parts.push(JSON.stringify(await raw.hgetall(key)));
    else if (type === 'string') parts.push((await raw.get(key)) ?? '');
    else if (type === 'list') parts.push(JSON.stringify(await raw.lrange(key, 0, -1)));
    else if (type === 'zset' || type === 'set') parts.push(JSON.stringify(type === 'zset' ? await raw.zrange(key, 0, -1) : await raw.smembers(key)));
    else if (type === 'stream') parts.push(JSON.stringify(await raw.xrange(key, '-', '+')));
  }
  return parts.join('\n');
}

async function jobData(jobId: string): Promise<Record<string, unknown>> {
  return JSON.parse((await raw.hget(`bull:depot:${jobId}`, 'data')) ?? 'null') as Record<string, unknown>;
}

test("a URL source's credentials stay in the job through a crash and the run after it, and leave Redis once the job has completed", async () => {
  const body = patternBytes(2 * MiB, 'credentials');
  let requests = 0;
  const authorized: boolean[] = [];
  const source: HttpSource = await startHttpSource((req, res) => {
    requests++;
    const ok = req.headers.authorization === HEADER_SECRET && new URL(req.url ?? '/', 'http://x').searchParams.get('token') === QUERY_TOKEN;
    authorized.push(ok);
    if (!ok) return void res.writeHead(403).end();
    res.writeHead(200, { 'content-length': String(body.length) });
    // The first download stalls half-way and is never finished: the worker is killed in it.
    if (requests === 1) return void res.write(body.subarray(0, body.length / 2));
    res.end(body);
  });
  const configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    queue: { lockDurationMs: 2000, stalledIntervalMs: 1000, attempts: 1 },
    sources: { timeoutMs: 120_000 },
    drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
  });
  try {
    const first = spawnWorkerProcess(configFile);
    const url = `${source.url('/webservice/pluginfile.php/12/quiz.zip')}?forcedownload=1&token=${QUERY_TOKEN}`;
    const job = await client.queue.add(
      'store',
      { taskId: 'with-credentials', name: 'quiz.zip', source: { url, headers: { Authorization: HEADER_SECRET } } },
      { jobId: 'task-with-credentials' },
    );
    await eventually(() => (requests === 1 ? true : undefined), 30_000, 'the first download').catch((error: Error) => {
      throw new Error(`${error.message}\n${first.output()}`);
    });
    first.child.kill('SIGKILL');
    await exitWithin(first, 10_000);
    // Not completed: everything a new run needs is still there.
    expect(await jobData('task-with-credentials')).toMatchObject({ source: { url, headers: { Authorization: HEADER_SECRET } } });

    const second = spawnWorkerProcess(configFile);
    const done = await settle(client, job, 60_000);
    expect({ state: done.state, reason: done.failedReason }).toEqual({ state: 'completed', reason: undefined });
    expect(authorized).toEqual([true, true]);
    expect((done.result as StoreResult).sha256).toBe(sha256Hex(body));

    // Completed: the credentials are gone from the job's data, and from everything else in Redis.
    const data = await eventually(
      async () => {
        const d = await jobData('task-with-credentials');
        return JSON.stringify(d).includes(QUERY_TOKEN) ? undefined : d;
      },
      10_000,
      'the job data without credentials',
    );
    expect(data).toEqual({
      taskId: 'with-credentials',
      name: 'quiz.zip',
      source: { url: `${source.url('/webservice/pluginfile.php/12/quiz.zip')}?forcedownload=***&token=***`, headers: { Authorization: '***' } },
    });
    const everything = await everythingInRedis();
    expect(everything).not.toContain(QUERY_TOKEN);
    expect(everything).not.toContain('header-secret-8a7b6c5d');
    second.child.kill('SIGTERM');
    await exitWithin(second, 30_000);
  } finally {
    await source.close();
  }
});

test("an inline source leaves a completed job's data: its size and sha256 stay; adding the same task again is the same task, other bytes a conflict", async () => {
  await inProcessWorker();
  const bytes = patternBytes(1 * MiB, 'inline-source');
  const manager = new ArchivingManager({ redisUrl: redis.url });
  try {
    const handle = await manager.store({ base64: bytes.toString('base64') }, { taskId: 'inline-1mib', name: 'inline.bin', metadata: { courseId: '12' } });
    const result = await handle.result(30_000);
    expect(result.size).toBe(bytes.length);
    const data = await eventually(
      async () => {
        const d = await jobData('task-inline-1mib');
        return (d.source as { base64?: string }).base64 === undefined ? d : undefined;
      },
      10_000,
      'the job data without its inline bytes',
    );
    expect(data).toEqual({
      taskId: 'inline-1mib',
      name: 'inline.bin',
      metadata: { courseId: '12' },
      source: { inline: { bytes: bytes.length, sha256: sha256Hex(bytes) } },
    });
    expect(await raw.call('MEMORY', 'USAGE', 'bull:depot:task-inline-1mib')).toBeLessThan(4096);

    const again = await manager.store({ base64: bytes.toString('base64') }, { taskId: 'inline-1mib', name: 'inline.bin', metadata: { courseId: '12' } });
    expect(again).toMatchObject({ existed: true, jobId: 'task-inline-1mib' });
    await expect(again.result(10_000)).resolves.toEqual(result);
    const other = Buffer.from(bytes);
    other[0] ^= 0xff;
    await expect(
      manager.store({ base64: other.toString('base64') }, { taskId: 'inline-1mib', name: 'inline.bin', metadata: { courseId: '12' } }),
    ).rejects.toMatchObject({ code: 'conflict', field: 'taskId' });
  } finally {
    await manager.close();
  }
});

test('a worker that died between completing a job and reducing its data: the next worker to start reduces it', async () => {
  // A plain BullMQ worker completes a task as a depot worker would have, then is gone.
  const done = new Worker('depot', async () => ({ taskId: 'died-after-completion' }), { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
  const url = `https://moodle.example.org/webservice/pluginfile.php/1/x.mbz?token=${QUERY_TOKEN}`;
  const job = await client.queue.add(
    'store',
    { taskId: 'died-after-completion', name: 'x.mbz', source: { url, headers: { Authorization: HEADER_SECRET } } },
    { jobId: 'task-died-after-completion' },
  );
  expect((await settle(client, job)).state).toBe('completed');
  await done.close();
  expect(JSON.stringify(await jobData('task-died-after-completion'))).toContain(QUERY_TOKEN);

  await inProcessWorker();
  const data = await eventually(
    async () => {
      const d = await jobData('task-died-after-completion');
      return JSON.stringify(d).includes(QUERY_TOKEN) ? undefined : d;
    },
    10_000,
    'the starting worker to reduce the completed job',
  );
  expect(data).toMatchObject({ source: { url: 'https://moodle.example.org/webservice/pluginfile.php/1/x.mbz?token=***', headers: { Authorization: '***' } } });
});

test('config queue.keepCompleted / queue.keepFailed bound the finished jobs Redis keeps', async () => {
  await raw.flushall();
  await inProcessWorker({ keepCompleted: { count: 2 }, keepFailed: { count: 1, ageSeconds: 3600 } });
  for (let i = 0; i < 4; i++) expect((await settle(client, await client.queue.add('check', { driver: 'local' }))).state).toBe('completed');
  for (let i = 0; i < 3; i++) expect((await settle(client, await client.queue.add('check', { driver: 'nope' }))).state).toBe('failed');
  expect(await client.queue.getJobCounts('completed', 'failed')).toEqual({ completed: 2, failed: 1 });
});

test("an inline retrieve's result is readable by the producer waiting on it, then forgotten after queue.inlineResultSeconds: job and event", async () => {
  await raw.flushall();
  await inProcessWorker({ inlineResultSeconds: 2 });
  const bytes = patternBytes(256 * 1024, 'inline-retrieve');
  const manager = new ArchivingManager({ redisUrl: redis.url });
  try {
    const stored = await (await manager.store({ base64: bytes.toString('base64') }, { name: 'r.bin' })).result(30_000);
    const handle = await manager.retrieve(stored.ref, { inline: true }, { taskId: 'inline-retrieve' });
    const result: RetrieveResult = await handle.result(30_000);
    expect(Buffer.from(result.base64 ?? '', 'base64').equals(bytes)).toBe(true);
    // Still there at first: a producer asking now reads it from the job.
    const job = await client.queue.getJob('task-inline-retrieve');
    expect((job?.returnvalue as RetrieveResult | undefined)?.base64).toBe(result.base64);
    const base64 = result.base64 ?? '';
    expect(JSON.stringify(await raw.xrange('bull:depot:events', '-', '+'))).toContain(base64.slice(0, 64));

    // Then gone, from the job and from the event stream; the stored archive's own job is untouched.
    await eventually(async () => ((await client.queue.getJob('task-inline-retrieve')) ? undefined : true), 10_000, 'the inline retrieve to be forgotten');
    expect(JSON.stringify(await raw.xrange('bull:depot:events', '-', '+'))).not.toContain(base64.slice(0, 64));
    expect(await client.queue.getJob(`task-${stored.taskId}`)).toBeDefined();
    expect(await raw.zcard('bull:depot:depot:inline-results')).toBe(0);
  } finally {
    await manager.close();
  }
});

test('an inline result noted by a run that did not complete is not removed: only completed jobs are forgotten', async () => {
  await raw.flushall();
  await inProcessWorker({ inlineResultSeconds: 1 });
  // A job waiting to run again (its run died before completing), with a note that is due.
  const waiting = await client.queue.add(
    'retrieve',
    { ref: { driver: 'local', key: '2026/01/01/t/x' }, target: { inline: true } },
    { jobId: 'noted-not-completed', delay: 60_000 },
  );
  await raw.zadd('bull:depot:depot:inline-results', 0, JSON.stringify(['noted-not-completed', 0]));
  await eventually(async () => ((await raw.zcard('bull:depot:depot:inline-results')) === 0 ? true : undefined), 10_000, 'the note to be dropped');
  expect(await waiting.getState()).toBe('delayed');
  await waiting.remove();
});
