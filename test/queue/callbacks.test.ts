import { createHmac } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Queue } from 'bullmq';
import { ArchivingManager } from '../../src/archiving/manager';
import { deliveryBackoff } from '../../src/queue/callbacks';
import { cleanupAll, eventually, spawnWorkerProcess, TempDirs, WorkerProcess, writeConfigFile } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * CONTRACT §4 webhooks, end to end: a worker process with `callbacks.url` and
 * `callbacks.secret`, a local receiver. Deliveries are signed, carry the task's
 * outcome, go to the task's own callbackUrl too, are retried until a 2xx, and
 * never carry the secret in job data or logs.
 */
jest.setTimeout(60_000);

const SECRET = 'hook-secret-0123456789abcdef';
const temp = new TempDirs();
let redis: RedisServer;
let worker: WorkerProcess;
let manager: ArchivingManager;
let receiver: Server;
let base: string;
let work: string;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: Record<string, unknown>;
}
const received: Received[] = [];
/** Answers per path, consumed in order; afterwards 200. */
const answers = new Map<string, number[]>();

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make();
  receiver = createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
    request.on('end', () => {
      const route = request.url ?? '/';
      received.push({ path: route, headers: request.headers, raw, body: JSON.parse(raw) as Record<string, unknown> });
      const status = answers.get(route)?.shift() ?? 200;
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const spare = path.join(work, 'spare');
  // A root that is a plain file: every store there fails, and the task fails over to `spare`.
  const broken = path.join(work, 'broken-root');
  await writeFile(broken, 'not a directory\n');
  const configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    queue: { attempts: 1, backoffMs: 20 },
    defaultDriver: 'local',
    drivers: {
      local: { type: 'filesystem', root: path.join(work, 'archive') },
      shaky: { type: 'filesystem', root: broken },
      spare: { type: 'filesystem', root: spare },
    },
    failover: { shaky: ['spare'] },
    callbacks: { url: `${base}/hooks`, secret: '${HOOK_SECRET}' },
    paths: { allowed: [work] },
  });
  worker = spawnWorkerProcess(configFile, { HOOK_SECRET: SECRET });
  manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 } });
  await eventually(async () => ((await manager.workerCount()) >= 1 ? true : undefined), 30_000, `the worker to connect (${worker.output()})`);
});

afterAll(async () => {
  await cleanupAll(
    () => manager?.close(),
    () => worker?.kill(),
    () => new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve())),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

function deliveriesOf(taskId: string, route = '/hooks'): Received[] {
  return received.filter((r) => r.path === route && r.body.taskId === taskId);
}

function verify(r: Received): void {
  const header = String(r.headers['depot-signature']);
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  expect(match).not.toBeNull();
  const [, t, mac] = match ?? [];
  expect(Math.abs(Date.now() / 1000 - Number(t))).toBeLessThan(300);
  expect(mac).toBe(createHmac('sha256', SECRET).update(`${t}.${r.raw}`).digest('hex'));
}

test('a completed store is posted to callbacks.url, signed, with the result', async () => {
  const file = path.join(work, 'exam.zip');
  await writeFile(file, 'exam records');
  const handle = await manager.store({ path: file }, { name: 'exam.zip' });
  const result = await handle.result(30_000);
  const [delivery] = await eventually(() => (deliveriesOf(handle.taskId).length ? deliveriesOf(handle.taskId) : undefined), 20_000, 'the webhook');
  verify(delivery);
  expect(delivery.headers['content-type']).toBe('application/json');
  expect(delivery.body).toMatchObject({
    event: 'task.completed',
    taskId: handle.taskId,
    jobId: handle.jobId,
    operation: 'store',
    attempt: 1,
    result: { ref: result.ref, sha256: result.sha256 },
  });
  expect(Number.isNaN(Date.parse(String(delivery.body.timestamp)))).toBe(false);
});

test('a failed task is posted to the config URL and to the task callbackUrl, with the error code', async () => {
  const handle = await manager.store({ path: path.join(work, 'missing.zip') }, { name: 'missing.zip', callbackUrl: `${base}/task-hook` });
  await expect(handle.result(30_000)).rejects.toMatchObject({ code: 'source_unavailable' });
  for (const route of ['/hooks', '/task-hook']) {
    const [delivery] = await eventually(
      () => (deliveriesOf(handle.taskId, route).length ? deliveriesOf(handle.taskId, route) : undefined),
      20_000,
      `the webhook to ${route}`,
    );
    verify(delivery);
    expect(delivery.body).toMatchObject({ event: 'task.failed', taskId: handle.taskId, operation: 'store', error: { code: 'source_unavailable' } });
    expect(delivery.body.result).toBeUndefined();
  }
});

test('a failover is reported, then the completion on the spare driver', async () => {
  const file = path.join(work, 'failover.zip');
  await writeFile(file, 'failover bytes');
  const handle = await manager.store({ path: file }, { name: 'failover.zip', driver: 'shaky' });
  const result = await handle.result(30_000);
  expect(result).toMatchObject({ ref: { driver: 'spare' }, failedOver: true });
  const events = await eventually(() => (deliveriesOf(handle.taskId).length >= 2 ? deliveriesOf(handle.taskId) : undefined), 20_000, 'two webhooks');
  expect(events.map((e) => e.body.event).sort()).toEqual(['task.completed', 'task.failover']);
  expect(events.find((e) => e.body.event === 'task.failover')?.body).toMatchObject({ from: 'shaky', to: 'spare', error: { code: expect.any(String) } });
});

test('a receiver that answers 503 twice gets the delivery on the third try', async () => {
  answers.set('/flaky', [503, 503]);
  const file = path.join(work, 'flaky.zip');
  await writeFile(file, 'flaky receiver');
  const handle = await manager.store({ path: file }, { name: 'flaky.zip', callbackUrl: `${base}/flaky` });
  await handle.result(30_000);
  const tries = await eventually(
    () => (deliveriesOf(handle.taskId, '/flaky').length >= 3 ? deliveriesOf(handle.taskId, '/flaky') : undefined),
    30_000,
    'three tries',
  );
  expect(tries.map((r) => r.body.event)).toEqual(['task.completed', 'task.completed', 'task.completed']);
  for (const r of tries) verify(r);
  expect(answers.get('/flaky')).toEqual([]);
});

test("the hourly expiry job sends no webhook: only producers' tasks do", async () => {
  const queue = new Queue('depot', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
  try {
    const job = await queue.add('expire', {}, { jobId: 'expire-now' });
    // It fails here (one driver's root is a file), which would be a task.failed webhook if expiry sent any.
    await eventually(async () => (['completed', 'failed'].includes(await job.getState()) ? true : undefined), 20_000, 'the expiry job to finish');
    // A completion webhook arrives within milliseconds (see above); give one ample time to show up.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(received.filter((r) => r.body.operation === 'expire' || r.body.jobId === 'expire-now')).toEqual([]);
  } finally {
    await queue.close();
  }
});

// Issue 10: whoever could add a job to depot-callbacks had the worker sign and send it.
test('a delivery job added to depot-callbacks by anyone but depot is never sent; it fails and is logged', async () => {
  const queue = new Queue('depot-callbacks', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
  try {
    const forged = {
      event: 'task.completed',
      taskId: 'forged-task',
      jobId: 'task-forged-task',
      operation: 'store',
      attempt: 1,
      timestamp: new Date().toISOString(),
    };
    const job = await queue.add(
      'task.completed',
      { url: `${base}/forged`, notification: forged },
      { jobId: 'forged-task.task.completed.0000000000000000', attempts: 3 },
    );
    await eventually(async () => ((await job.getState()) === 'failed' ? true : undefined), 20_000, `the forged delivery to fail (${worker.output()})`);
    expect((await queue.getJob(job.id ?? ''))?.failedReason).toMatch(/^invalid_task: not queued by depot/);
    expect(worker.output()).toContain('webhook job forged-task.task.completed.0000000000000000 (task.completed) refused, not sent');
  } finally {
    await queue.close();
  }
  // Genuine deliveries still go out, with their Depot-Delivery.
  const file = path.join(work, 'after-forgery.zip');
  await writeFile(file, 'after the forgery');
  const handle = await manager.store({ path: file }, { name: 'after-forgery.zip' });
  await handle.result(30_000);
  const [delivery] = await eventually(() => (deliveriesOf(handle.taskId).length ? deliveriesOf(handle.taskId) : undefined), 20_000, 'the genuine webhook');
  verify(delivery);
  expect(delivery.headers['depot-delivery']).toMatch(new RegExp(`^${handle.taskId}\\.task\\.completed\\.[0-9a-f]{16}$`));
  expect(received.filter((r) => r.path === '/forged')).toEqual([]);
});

test('the secret is in no job data and no log line; backoff doubles up to an hour', async () => {
  const queue = new Queue('depot-callbacks', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
  try {
    const jobs = await queue.getJobs(['completed', 'failed', 'waiting', 'delayed', 'active']);
    expect(jobs.length).toBeGreaterThan(0);
    expect(JSON.stringify(jobs.map((j) => j.data))).not.toContain(SECRET);
  } finally {
    await queue.close();
  }
  expect(worker.output()).toContain('delivered');
  expect(worker.output()).not.toContain(SECRET);
  const delays = [1, 2, 3, 13, 30].map((n) => deliveryBackoff(n, 1_000));
  expect(delays[0]).toBeGreaterThanOrEqual(800);
  expect(delays[0]).toBeLessThanOrEqual(1_200);
  expect(delays[1]).toBeGreaterThanOrEqual(1_600);
  expect(delays[2]).toBeGreaterThanOrEqual(3_200);
  expect(delays[3]).toBeLessThanOrEqual(3_600_000 * 1.2);
  expect(delays[4]).toBeGreaterThanOrEqual(3_600_000 * 0.8);
});
