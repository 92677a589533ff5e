import { CallbackQueue, createCallbackQueue, startCallbackWorker } from '../../src/queue/callbacks';
import { NotificationService, TaskNotification } from '../../src/support/notifications';
import { webhookSecrets } from '../../src/support/webhook-signatures';
import { cleanupAll, eventually } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { expectedMac, memoryLogger, parseSignature, Received, startWebhookReceiver, WebhookReceiver } from '../helpers/webhook-receiver';

/**
 * CONTRACT §4, "precisely, for receivers": what the callback worker sends,
 * checked the way a receiver checks it — raw body bytes, `t` per attempt,
 * one `v1=` per secret of a rotation, `Depot-Delivery` to dedupe on.
 */
jest.setTimeout(30_000);

// Non-ASCII on purpose: the key is the secret's UTF-8 bytes.
const NEW = 'neuer-Schlüssel-äöü-0123456789';
const OLD = 'hook-secret-old-0123456789abcdef';
let redis: RedisServer;
let receiver: WebhookReceiver;
let callbacks: CallbackQueue;
let worker: { close(): Promise<void> };

beforeAll(async () => {
  redis = await startRedis();
  receiver = await startWebhookReceiver();
  const secrets = webhookSecrets({ secrets: [NEW, OLD] });
  callbacks = createCallbackQueue(redis.url, 'bull', secrets);
  // Retries 1.2–1.8 s apart: a retry's `t` is a later second.
  worker = startCallbackWorker({ redis: redis.url, prefix: 'bull', secrets, firstDelayMs: 1_500 }, memoryLogger().logger);
});

afterAll(async () => {
  await cleanupAll(
    () => worker?.close(),
    () => callbacks?.close(),
    () => receiver?.close(),
    () => redis?.stop(),
  );
});

const at = (path: string, count: number): Promise<Received[]> =>
  eventually(
    () => {
      const found = receiver.received.filter((r) => r.path === path);
      return found.length >= count ? found : undefined;
    },
    20_000,
    `${count} deliveries to ${path}`,
  );

const failover = (from: string, to: string, attempt = 1): TaskNotification => ({
  event: 'task.failover',
  taskId: 'task-a',
  jobId: 'task-task-a',
  operation: 'store',
  error: { code: 'unavailable', message: 'down' },
  attempt,
  from,
  to,
  timestamp: '2026-01-02T03:04:05.000Z',
});

test('during a rotation every secret signs: one v1= each, over `<t>.` and the raw body, in the configured order', async () => {
  await new NotificationService((d, id) => callbacks.enqueue(d, id)).notify(`${receiver.base}/rotation`, failover('a', 'b'));
  const [delivery] = await at('/rotation', 1);
  const { t, v1 } = parseSignature(delivery.headers['depot-signature']);
  expect(String(delivery.headers['depot-signature'])).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
  expect(Math.abs(Date.now() / 1000 - t)).toBeLessThan(300);
  expect(v1).toEqual([expectedMac(NEW, t, delivery.raw), expectedMac(OLD, t, delivery.raw)]);
});

test('a retry is signed anew with its own t; Depot-Delivery and the body stay the same; timestamp is the event time', async () => {
  receiver.answer('/flaky', [503]);
  await new NotificationService((d, id) => callbacks.enqueue(d, id)).notify(`${receiver.base}/flaky`, failover('a', 'b'));
  const [first, retry] = await at('/flaky', 2);
  const [one, two] = [parseSignature(first.headers['depot-signature']), parseSignature(retry.headers['depot-signature'])];
  expect(two.t).toBeGreaterThan(one.t);
  expect(two.v1).toEqual([expectedMac(NEW, two.t, retry.raw), expectedMac(OLD, two.t, retry.raw)]);
  expect(retry.headers['depot-delivery']).toBe(first.headers['depot-delivery']);
  expect(retry.raw.equals(first.raw)).toBe(true);
  expect(retry.body).toMatchObject({ timestamp: '2026-01-02T03:04:05.000Z', attempt: 1 });
});

test('Depot-Delivery differs between deliveries: another hop, another URL, another event', async () => {
  const notifications = new NotificationService((d, id) => callbacks.enqueue(d, id), `${receiver.base}/ids-config`);
  await notifications.notify(`${receiver.base}/ids`, failover('a', 'b'));
  await notifications.notify(`${receiver.base}/ids`, failover('b', 'c'));
  await notifications.notify(`${receiver.base}/ids`, failover('a', 'b', 2));
  await notifications.notify(`${receiver.base}/ids`, {
    ...failover('a', 'b'),
    event: 'task.completed',
    from: undefined,
    to: undefined,
    error: undefined,
    result: { size: 1 },
  });
  const got = [...(await at('/ids', 4)), ...(await at('/ids-config', 4))];
  const ids = got.map((r) => String(r.headers['depot-delivery']));
  expect(new Set(ids).size).toBe(8);
  for (const id of ids) expect(id).toMatch(/^task-a\.task\.(failover|completed)\.[0-9a-f]{16}$/);
});
