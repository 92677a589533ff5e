import { Job, Queue } from 'bullmq';
import { CallbackQueue, createCallbackQueue, startCallbackWorker } from '../../src/queue/callbacks';
import type { TaskNotification } from '../../src/support/notifications';
import { cleanupAll, eventually } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { expectedMac, memoryLogger, parseSignature, startWebhookReceiver, WebhookReceiver } from '../helpers/webhook-receiver';

/**
 * Issue 10: anyone who could add a job to `depot-callbacks` had it sent with a
 * valid Depot-Signature. The callback worker now signs and sends only
 * deliveries that a depot process holding the webhook secret queued, unaltered.
 */
jest.setTimeout(30_000);

const SECRET = 'hook-secret-0123456789abcdef';
let redis: RedisServer;
let receiver: WebhookReceiver;
let callbacks: CallbackQueue;
let plain: Queue;

const notification = (taskId: string): TaskNotification => ({
  event: 'task.completed',
  taskId,
  jobId: `task-${taskId}`,
  operation: 'store',
  result: { ref: { driver: 'local', key: `2026/01/01/${taskId}/a.zip` }, size: 1, sha256: 'ab'.repeat(32) },
  attempt: 1,
  timestamp: new Date().toISOString(),
});

beforeAll(async () => {
  redis = await startRedis();
  receiver = await startWebhookReceiver();
  callbacks = createCallbackQueue(redis.url, 'bull', [SECRET]);
  // What anyone with access to Redis can do: plain BullMQ.
  plain = new Queue('depot-callbacks', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
});

afterAll(async () => {
  await cleanupAll(
    () => plain?.close(),
    () => callbacks?.close(),
    () => receiver?.close(),
    () => redis?.stop(),
  );
});

test('a forged or altered delivery job is never sent; a genuine one is, signed', async () => {
  const url = `${receiver.base}/hooks`;
  // Genuine: queued by depot's own queuing side.
  await callbacks.enqueue({ url, notification: notification('genuine') }, 'genuine.task-completed');
  // Forged: no authentication at all.
  await plain.add('task.completed', { url, notification: notification('forged') }, { jobId: 'forged.task-completed' });
  // A genuine job's authentication copied onto another body, another URL, another delivery id.
  const genuine = (await plain.getJob('genuine.task-completed')) as Job;
  const auth = (genuine.data as { auth: unknown }).auth;
  await plain.add('task.completed', { url, notification: { ...notification('genuine'), result: { size: 666 } }, auth }, { jobId: 'copied-body' });
  await plain.add('task.completed', { url: `${receiver.base}/elsewhere`, notification: notification('genuine'), auth }, { jobId: 'copied-url' });
  await plain.add('task.completed', { url, notification: notification('genuine'), auth }, { jobId: 'copied-id' });
  // A genuine job altered in Redis before it was sent.
  await callbacks.enqueue({ url, notification: notification('altered') }, 'altered.task-completed');
  const altered = (await plain.getJob('altered.task-completed')) as Job;
  await altered.updateData({ ...(altered.data as object), url: `${receiver.base}/attacker` });
  // Data that is not even a delivery.
  await plain.add('task.completed', null, { jobId: 'null-data' });

  const { logger, lines } = memoryLogger();
  const worker = startCallbackWorker({ redis: redis.url, prefix: 'bull', secrets: [SECRET], firstDelayMs: 50 }, logger);
  try {
    const refused = ['forged.task-completed', 'copied-body', 'copied-url', 'copied-id', 'altered.task-completed', 'null-data'];
    for (const id of [...refused, 'genuine.task-completed']) {
      await eventually(async () => (['completed', 'failed'].includes(await plain.getJobState(id)) ? true : undefined), 15_000, `job ${id} to finish`);
    }
    for (const id of refused) {
      expect(await plain.getJobState(id)).toBe('failed');
      const job = (await plain.getJob(id)) as Job;
      expect(job.failedReason).toMatch(/^invalid_task: not queued by depot/);
      // Failed at once: refusing is not retried.
      expect(job.attemptsMade).toBe(1);
      expect(lines().some((line) => line.includes(`webhook job ${id} `) && line.includes('"level":"error"'))).toBe(true);
    }
    expect(await plain.getJobState('genuine.task-completed')).toBe('completed');
  } finally {
    await worker.close();
  }
  expect(receiver.received.map((r) => [r.path, r.body.taskId, r.headers['depot-delivery']])).toEqual([['/hooks', 'genuine', 'genuine.task-completed']]);
  const [delivery] = receiver.received;
  const { t, v1 } = parseSignature(delivery.headers['depot-signature']);
  expect(v1).toEqual([expectedMac(SECRET, t, delivery.raw)]);
});

test('a worker of a rotation in progress accepts what a process with either secret queued', async () => {
  const NEW = 'hook-secret-new-0123456789abcdef';
  const oldSide = createCallbackQueue(redis.url, 'rotation', [SECRET]);
  const newSide = createCallbackQueue(redis.url, 'rotation', [NEW]);
  const url = `${receiver.base}/rotation`;
  const { logger } = memoryLogger();
  const worker = startCallbackWorker({ redis: redis.url, prefix: 'rotation', secrets: [NEW, SECRET], firstDelayMs: 50 }, logger);
  try {
    await oldSide.enqueue({ url, notification: notification('queued-by-old') }, 'old');
    await newSide.enqueue({ url, notification: notification('queued-by-new') }, 'new');
    const got = await eventually(
      () => {
        const found = receiver.received.filter((r) => r.path === '/rotation');
        return found.length === 2 ? found : undefined;
      },
      15_000,
      'both deliveries',
    );
    expect(got.map((r) => r.body.taskId).sort()).toEqual(['queued-by-new', 'queued-by-old']);
  } finally {
    await cleanupAll(
      () => worker.close(),
      () => oldSide.close(),
      () => newSide.close(),
    );
  }
});
