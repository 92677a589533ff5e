import { ArchivingManager } from '../../src/archiving/manager';
import { DepotError } from '../../src/contract';
import { cleanupAll } from '../helpers/queue-harness';
import { freePort, RedisServer, startRedis } from '../helpers/redis-server';

/**
 * A producer whose Redis is down learns it at once: ArchivingManager rejects with
 * DepotError 'unavailable' instead of hanging or queueing in memory.
 */
const managers: ArchivingManager[] = [];
let redis: RedisServer | undefined;

afterAll(async () => {
  await cleanupAll(
    () => Promise.all(managers.map((m) => m.close())),
    () => redis?.stop(),
  );
  // ioredis arms a 2 s "destroy the socket" timer when disconnecting a socket that had already
  // closed (AbstractConnector.disconnect); let it run out so jest sees no open handles.
  await new Promise((resolve) => setTimeout(resolve, 2_100));
});

function manager(redisUrl: string): ArchivingManager {
  const made = new ArchivingManager({ redisUrl });
  managers.push(made);
  return made;
}

/** Settles `promise`, or reports that it hung past `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown; hung?: true }> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<{ hung: true }>((resolve) => {
    timer = setTimeout(() => resolve({ hung: true }), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function expectUnavailable(outcome: { error?: unknown; hung?: true }): void {
  expect(outcome.hung).toBeUndefined();
  expect(outcome.error).toBeInstanceOf(DepotError);
  expect(outcome.error).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/^cannot queue the task/) });
}

it('store() and check() against a port with no Redis reject with DepotError unavailable; close() does not hang', async () => {
  const port = await freePort(); // nothing listens there
  const producer = manager(`redis://127.0.0.1:${port}`);
  const [store, check] = await Promise.all([
    within(producer.store({ base64: Buffer.from('hello').toString('base64') }, { name: 'hello.txt' }), 15_000),
    within(producer.check('local'), 15_000),
  ]);
  expectUnavailable(store);
  expectUnavailable(check);
  expect(await within(producer.close(), 10_000)).not.toHaveProperty('hung');
});

it('a Redis that went away after the manager connected: store() rejects with unavailable', async () => {
  redis = await startRedis();
  const producer = manager(redis.url);
  const first = await producer.store({ base64: Buffer.from('first').toString('base64') }, { name: 'first.txt' });
  expect(first.jobId).toBe(`task-${first.taskId}`);
  await redis.stop();
  redis = undefined;
  expectUnavailable(await within(producer.store({ base64: Buffer.from('second').toString('base64') }, { name: 'second.txt' }), 15_000));
  expect(await within(producer.close(), 10_000)).not.toHaveProperty('hung');
});

it('an invalid task is refused as invalid_task even while Redis is down (validation comes first)', async () => {
  const port = await freePort();
  const producer = manager(`redis://127.0.0.1:${port}`);
  const outcome = await within(producer.store({ path: '/srv/x.zip' }, { name: 'a/b' }), 15_000);
  expect(outcome.error).toMatchObject({ code: 'invalid_task', field: 'name' });
});
