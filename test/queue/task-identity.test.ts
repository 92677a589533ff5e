import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ArchivingManager } from '../../src/archiving/manager';
import type { StoreResult } from '../../src/contract';
import { DepotError } from '../../src/contract';
import { cleanupAll, InProcessWorker, queueClient, QueueClient, settle, startInProcessWorker, TempDirs, testConfig } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * A task is what its producer sent, under its own taskId (issue 9, "Task
 * identity"): a taskId never lands on one of BullMQ's own keys or on another
 * task's job, and a taskId that is taken is never silently given other content.
 */
jest.setTimeout(60_000);

/** Every key BullMQ keeps below a queue's name (bullmq's QueueKeys, plus metrics and schedulers): all valid taskIds. */
const BULLMQ_KEY_NAMES = [
  'active',
  'wait',
  'waiting-children',
  'paused',
  'id',
  'delayed',
  'prioritized',
  'stalled-check',
  'completed',
  'failed',
  'stalled',
  'repeat',
  'limiter',
  'meta',
  'events',
  'pc',
  'marker',
  'de',
  'metrics',
];

const temp = new TempDirs();
let redis: RedisServer;
let worker: InProcessWorker | undefined;
let manager: ArchivingManager | undefined;
let client: QueueClient | undefined;
let root: string;

beforeAll(async () => {
  redis = await startRedis();
  root = path.join(await temp.make(), 'archive');
  const config = testConfig({ redis: { url: redis.url }, queue: { attempts: 1 }, drivers: { local: { type: 'filesystem', root } } }, await temp.make());
  worker = await startInProcessWorker(config);
  manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 } });
  client = await queueClient(redis.port);
});

afterAll(async () => {
  await cleanupAll(
    () => client?.close(),
    () => manager?.close(),
    () => worker?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

function inline(text: string): { base64: string } {
  return { base64: Buffer.from(text).toString('base64') };
}

async function storedText(result: StoreResult): Promise<string> {
  return readFile(path.join(root, ...result.ref.key.split('/')), 'utf8');
}

async function rejection(promise: Promise<unknown>): Promise<DepotError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(DepotError);
  return outcome as DepotError;
}

test("taskIds named like BullMQ's own keys (meta, wait, id, events, …) are stored, and the queue keeps working", async () => {
  const producer = manager!;
  const handles = [];
  for (const taskId of BULLMQ_KEY_NAMES) handles.push(await producer.store(inline(`archive of task ${taskId}`), { taskId, name: 'x.txt' }));
  const results: StoreResult[] = [];
  for (const handle of handles) results.push(await handle.result(30_000));
  for (const [i, taskId] of BULLMQ_KEY_NAMES.entries()) {
    expect(results[i]).toMatchObject({ taskId, ref: { driver: 'local', key: expect.stringMatching(new RegExp(`/${taskId}/x\\.txt$`)) } });
    expect(await storedText(results[i])).toBe(`archive of task ${taskId}`);
  }
  // No jobId is a bare BullMQ key name, and the queue itself still answers and runs jobs, also a plain producer's.
  expect(handles.map((h) => h.jobId).filter((jobId) => BULLMQ_KEY_NAMES.includes(jobId))).toEqual([]);
  await expect(client!.queue.getJobCounts('waiting', 'active', 'completed', 'failed')).resolves.toMatchObject({
    completed: BULLMQ_KEY_NAMES.length,
    failed: 0,
  });
  const plain = await settle(client!, await client!.queue.add('store', { source: inline('after them'), name: 'after.txt' }));
  expect(plain.state).toBe('completed');
  const later = await (await producer.store(inline('later'), { name: 'later.txt' })).result(30_000);
  expect(await storedText(later)).toBe('later');
});

test("taskIds '5' and 'task-5' are two tasks: two jobs, each with its own result", async () => {
  const five = await manager!.store(inline('five'), { taskId: '5', name: 'n.txt' });
  const taskFive = await manager!.store(inline('task five'), { taskId: 'task-5', name: 'n.txt' });
  expect(five.jobId).not.toBe(taskFive.jobId);
  expect(taskFive.existed).toBe(false);
  const [a, b] = await Promise.all([five.result(30_000), taskFive.result(30_000)]);
  expect(a.taskId).toBe('5');
  expect(b.taskId).toBe('task-5');
  expect(await storedText(a)).toBe('five');
  expect(await storedText(b)).toBe('task five');
});

test('the same task added twice is queued once; another task under a taken taskId is a conflict naming taskId', async () => {
  const first = await manager!.store(inline('first content'), { taskId: 'twice', name: 'a.txt', metadata: { courseId: '1' } });
  expect(first.existed).toBe(false);
  const result = await first.result(30_000);

  // Identical content (keys in another order): an idempotent no-op, the same job and result.
  const again = await manager!.enqueue<StoreResult>('store', { metadata: { courseId: '1' }, name: 'a.txt', source: inline('first content'), taskId: 'twice' });
  expect(again).toMatchObject({ taskId: 'twice', jobId: first.jobId, existed: true });
  await expect(again.result(30_000)).resolves.toEqual(result);

  // Other content, another name, another operation: refused, never a silent no-op.
  for (const attempt of [
    () => manager!.store(inline('second content'), { taskId: 'twice', name: 'a.txt', metadata: { courseId: '1' } }),
    () => manager!.store(inline('first content'), { taskId: 'twice', name: 'b.txt', metadata: { courseId: '1' } }),
    () => manager!.check('local', { taskId: 'twice' }),
  ]) {
    const error = await rejection(attempt());
    expect(error).toMatchObject({ code: 'conflict', field: 'taskId', retryable: false });
    expect(error.message).toMatch(/^taskId: .*twice/);
  }
  // The stored task is the first one, untouched.
  expect(await storedText(result)).toBe('first content');
  const counts = await client!.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  expect(counts).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0 });
});

test('a taken taskId with other content is a conflict while the first task still waits, too', async () => {
  // Delayed, so it is certainly still there and unfinished when the second arrives.
  const waiting = await manager!.enqueue('store', { taskId: 'still-waiting', source: inline('one'), name: 'w.txt' }, { delay: 60_000 });
  const error = await rejection(manager!.enqueue('store', { taskId: 'still-waiting', source: inline('two'), name: 'w.txt' }));
  expect(error).toMatchObject({ code: 'conflict', field: 'taskId' });
  const job = await client!.queue.getJob(waiting.jobId);
  expect(job?.data).toMatchObject({ source: inline('one') });
  await job?.remove();
});
