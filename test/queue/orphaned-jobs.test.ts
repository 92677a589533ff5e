import { Job, Queue, Worker } from 'bullmq';
import IORedis, { Redis } from 'ioredis';
import { HandedBack, restartWorker, OrphanSearch } from '../../src/queue/orphaned-jobs';
import { cleanupAll, eventually } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * restartWorker against a real redis-server and in-process BullMQ
 * Workers, one test per rule of its doc comment. A "dying" worker takes a job
 * and its processor stays blocked, so the job stays active; the worker is then
 * closed with force, which drops its Redis connections while the job's lock
 * (lockDuration 120 s) stays in Redis — what a SIGKILLed worker process leaves.
 */
jest.setTimeout(30_000);

const HOST = 'test-host';
/** The pid in the dying workers' names; isAlive decides whether it "runs". */
const DEAD_PID = 4242;
const MAX_STALLED_COUNT = 2;
const LOCK_DURATION_MS = 120_000;
const PREFIX = 'orphans';

interface Blocker {
  /** Resolves once the processor runs, i.e. the job is active and locked. */
  started: Promise<Job>;
  release(): void;
}

let redis: RedisServer;
let client: Redis;
let queue: Queue;
let queueName: string;
let testNumber = 0;
const workers: Worker[] = [];
const blockers: Blocker[] = [];

beforeAll(async () => {
  redis = await startRedis();
  client = new IORedis(redis.url, { maxRetriesPerRequest: null });
});

beforeEach(async () => {
  // A queue of its own per test, so no worker's stalled check or fetch touches another test's jobs.
  queueName = `orphans-${++testNumber}`;
  queue = new Queue(queueName, { connection: { host: '127.0.0.1', port: redis.port }, prefix: PREFIX });
  queue.on('error', () => undefined);
  await queue.waitUntilReady();
});

afterEach(async () => {
  await cleanupAll(
    async () => blockers.splice(0).forEach((blocker) => blocker.release()),
    () => Promise.all(workers.splice(0).map((worker) => worker.close(true))),
    () => queue?.close(),
  );
});

afterAll(async () => {
  await cleanupAll(
    async () => client?.disconnect(),
    () => redis?.stop(),
  );
});

function newWorker(name: string | undefined, processor: (job: Job) => Promise<unknown>): Worker {
  const worker = new Worker(queueName, processor, {
    connection: { host: '127.0.0.1', port: redis.port },
    prefix: PREFIX,
    name,
    concurrency: 1,
    lockDuration: LOCK_DURATION_MS,
    maxStalledCount: MAX_STALLED_COUNT,
  });
  // A force-closed worker whose processor is released at the end fails to report on its closed connection.
  worker.on('error', () => undefined);
  workers.push(worker);
  return worker;
}

/** Names of the workers of the queue with a connection open on Redis. */
async function connectedWorkers(): Promise<string[]> {
  return (await queue.getWorkers()).map((w) => (w.rawname ?? '').split(':w:')[1]).filter(Boolean);
}

/** Queues a job and lets a worker named `name` take it; its processor blocks until the test ends. */
async function takenJob(name: string): Promise<{ job: Job; worker: Worker }> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let onStart!: (job: Job) => void;
  const started = new Promise<Job>((resolve) => (onStart = resolve));
  blockers.push({ started, release });
  const worker = newWorker(name, async (job) => {
    onStart(job);
    await gate;
    return 'released';
  });
  const added = await queue.add('task', { name });
  const taken = await started;
  expect(taken.id).toBe(added.id);
  await eventually(async () => ((await connectedWorkers()).includes(name) ? true : undefined), 5_000, `worker ${name} to show as connected`);
  const job = await Job.fromId(queue, added.id ?? '');
  if (!job) throw new Error(`job ${added.id} disappeared`);
  expect(await job.getState()).toBe('active');
  expect(job.processedBy).toBe(name);
  return { job, worker };
}

/** A job taken by a worker whose connections are then gone, while its lock stays in Redis. */
async function orphanedJob(name: string): Promise<Job> {
  const { job, worker } = await takenJob(name);
  await worker.close(true);
  await eventually(async () => ((await connectedWorkers()).includes(name) ? undefined : true), 5_000, `worker ${name} to disconnect`);
  expect(await client.pttl(lockKey(job))).toBeGreaterThan(60_000);
  expect(await job.getState()).toBe('active');
  return job;
}

function jobKey(job: Job): string {
  return `${PREFIX}:${queueName}:${job.id}`;
}

function lockKey(job: Job): string {
  return `${jobKey(job)}:lock`;
}

async function stalledCount(job: Job): Promise<string | null> {
  return client.hget(jobKey(job), 'stc');
}

function search(isAlive: (pid: number) => boolean, overrides: Partial<OrphanSearch> = {}): OrphanSearch {
  return { host: HOST, selfPid: process.pid, maxStalledCount: MAX_STALLED_COUNT, isAlive, ...overrides };
}

/** The job is back in `wait` (getState says 'waiting') and a fresh worker runs it to completion. */
async function expectHandedBackAndCompleted(job: Job, handedBack: HandedBack[], worker: string, stc: string): Promise<void> {
  expect(handedBack).toEqual([{ jobId: job.id, worker }]);
  expect(await job.getState()).toBe('waiting');
  expect((await queue.getJobs(['wait'])).map((waiting) => waiting.id)).toEqual([job.id]);
  expect(await stalledCount(job)).toBe(stc);
  expect(await client.exists(lockKey(job))).toBe(0);
  const ran: string[] = [];
  newWorker(`${HOST}:${DEAD_PID + 1}`, async (taken) => {
    ran.push(taken.id ?? '');
    return 'done';
  });
  await eventually(async () => ((await job.getState()) === 'completed' ? true : undefined), 5_000, `job ${job.id} to complete`);
  expect(ran).toEqual([job.id]);
  const finished = await Job.fromId(queue, job.id ?? '');
  expect(finished?.returnvalue).toBe('done');
}

/** Nothing is handed back and the job is still active with its lock, as before. */
async function expectUntouched(job: Job, handedBack: HandedBack[], stc: string | null = null): Promise<void> {
  expect(handedBack).toEqual([]);
  expect(await job.getState()).toBe('active');
  expect(await stalledCount(job)).toBe(stc);
}

test('a job of a gone worker of this host, whose process is not alive, is handed back and then completed', async () => {
  const name = `${HOST}:${DEAD_PID}`;
  const job = await orphanedJob(name);
  const isAlive = jest.fn(() => false);
  const handedBack = await restartWorker(queue, client, search(isAlive));
  expect(isAlive).toHaveBeenCalledWith(DEAD_PID);
  await expectHandedBackAndCompleted(job, handedBack, name, '1');
});

test('a job of a gone worker of another host is untouched', async () => {
  // Another host, and one whose name merely begins with this host's name.
  const jobs = [await orphanedJob(`other-host:${DEAD_PID}`), await orphanedJob(`${HOST}-2:${DEAD_PID}`)];
  const isAlive = jest.fn(() => false);
  const handedBack = await restartWorker(queue, client, search(isAlive));
  for (const job of jobs) await expectUntouched(job, handedBack);
  expect(isAlive).not.toHaveBeenCalled();
});

test('a job of a gone worker whose pid still runs here is untouched', async () => {
  const job = await orphanedJob(`${HOST}:${DEAD_PID}`);
  const isAlive = jest.fn(() => true);
  const handedBack = await restartWorker(queue, client, search(isAlive));
  expect(isAlive).toHaveBeenCalledWith(DEAD_PID);
  await expectUntouched(job, handedBack);
});

test('a job whose worker is still connected is untouched, even with its pid not alive', async () => {
  const name = `${HOST}:${DEAD_PID}`;
  const { job } = await takenJob(name);
  const handedBack = await restartWorker(
    queue,
    client,
    search(() => false),
  );
  await expectUntouched(job, handedBack);
  expect(await connectedWorkers()).toContain(name);
});

test('a job that already stalled maxStalledCount times is untouched, one below the limit is handed back', async () => {
  const atLimit = await orphanedJob(`${HOST}:${DEAD_PID}`);
  await client.hset(jobKey(atLimit), 'stc', MAX_STALLED_COUNT);
  const handedBackAtLimit = await restartWorker(
    queue,
    client,
    search(() => false),
  );
  await expectUntouched(atLimit, handedBackAtLimit, String(MAX_STALLED_COUNT));

  // The same job one stall below the limit: this hand-back is its last.
  await client.hset(jobKey(atLimit), 'stc', MAX_STALLED_COUNT - 1);
  const handedBack = await restartWorker(
    queue,
    client,
    search(() => false),
  );
  await expectHandedBackAndCompleted(atLimit, handedBack, `${HOST}:${DEAD_PID}`, String(MAX_STALLED_COUNT));
});

test("a job of this worker's own pid is handed back even though that pid is alive (a restarted container)", async () => {
  const name = `${HOST}:1`;
  const job = await orphanedJob(name);
  const handedBack = await restartWorker(
    queue,
    client,
    search(() => true, { selfPid: 1 }),
  );
  await expectHandedBackAndCompleted(job, handedBack, name, '1');
});

test("own pid: the starting worker's own connections (same name, younger than the process) do not hide the predecessor's job; an older one does", async () => {
  const name = `${HOST}:1`;
  const job = await orphanedJob(name);
  // The starting worker already has its connections open under the same name (BullMQ opens them in its constructor).
  const own = newWorker(name, () => new Promise(() => undefined));
  await own.waitUntilReady();
  await eventually(async () => ((await connectedWorkers()).includes(name) ? true : undefined), 5_000, 'the worker to connect');
  // A connection older than this process's life (here: any, with a negative uptime) belongs to another machine of that name.
  expect(
    await restartWorker(
      queue,
      client,
      search(() => true, { selfPid: 1, uptimeSeconds: -5 }),
    ),
  ).toEqual([]);
  const handedBack = await restartWorker(
    queue,
    client,
    search(() => true, { selfPid: 1, uptimeSeconds: 100 }),
  );
  expect(handedBack).toEqual([{ jobId: job.id, worker: name }]);
  await own.close(true);
});

test('a job whose lock has expired is untouched, left to the stalled-job check', async () => {
  const job = await orphanedJob(`${HOST}:${DEAD_PID}`);
  await client.pexpire(lockKey(job), 1);
  await eventually(async () => ((await client.exists(lockKey(job))) === 0 ? true : undefined), 2_000, 'the lock to expire');
  const handedBack = await restartWorker(
    queue,
    client,
    search(() => false),
  );
  await expectUntouched(job, handedBack);
});
