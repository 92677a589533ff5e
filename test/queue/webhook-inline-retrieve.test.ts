import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import { ArchivingManager } from '../../src/archiving/manager';
import { cleanupAll, eventually, InProcessWorker, sha256Hex, startInProcessWorker, TempDirs, testConfig } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { startWebhookReceiver, WebhookReceiver } from '../helpers/webhook-receiver';

/**
 * Issue 10: a 900 KB inline retrieve made a 1.2 MB webhook (its base64), over
 * common receivers' body limits and retried for a day. Webhooks report an
 * inline retrieve by its ref, size and sha256 only.
 */
jest.setTimeout(60_000);

const SECRET = 'hook-secret-0123456789abcdef';
const temp = new TempDirs();
let redis: RedisServer;
let receiver: WebhookReceiver;
let worker: InProcessWorker;
let manager: ArchivingManager;
let work: string;

beforeAll(async () => {
  redis = await startRedis();
  receiver = await startWebhookReceiver();
  work = await temp.make();
  const config = testConfig(
    {
      redis: { url: redis.url },
      queue: { attempts: 1 },
      drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
      paths: { allowed: [work] },
      callbacks: { secret: '${HOOK_SECRET}' },
    },
    work,
    { HOOK_SECRET: SECRET },
  );
  worker = await startInProcessWorker(config);
  manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 } });
});

afterAll(async () => {
  await cleanupAll(
    () => manager?.close(),
    () => worker?.close(),
    () => receiver?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

test('an inline retrieve of 900 KB is reported by ref, size and sha256, in a webhook of well under 1 KB', async () => {
  const bytes = randomBytes(900 * 1024);
  const file = path.join(work, 'large.zip');
  await writeFile(file, bytes);
  const stored = await (await manager.store({ path: file }, { name: 'large.zip' })).result(30_000);

  const handle = await manager.retrieve(stored.ref, { inline: true }, { callbackUrl: `${receiver.base}/inline` });
  const result = await handle.result(30_000);
  // The producer still gets the bytes: only webhooks leave them out.
  expect(Buffer.from(String(result.base64), 'base64').equals(bytes)).toBe(true);

  const delivery = await eventually(() => receiver.received.find((r) => r.path === '/inline'), 20_000, 'the webhook');
  expect(delivery.body).toMatchObject({
    event: 'task.completed',
    operation: 'retrieve',
    result: { ref: stored.ref, size: bytes.length, sha256: sha256Hex(bytes) },
  });
  // Booleans and sizes, not the values: a failure must not print 1.2 MB of base64.
  expect(Object.keys(delivery.body.result as object).sort()).toEqual(['ref', 'sha256', 'size', 'taskId']);
  expect(delivery.raw.length).toBeLessThan(1024);

  // Nor does the delivery job kept on depot-callbacks hold them.
  const queue = new Queue('depot-callbacks', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
  try {
    const [job] = (await queue.getJobs(['completed'])).filter((j) => (j.data as { notification: { operation: string } }).notification.operation === 'retrieve');
    expect(JSON.stringify(job.data).length).toBeLessThan(1024);
  } finally {
    await queue.close();
  }
});
