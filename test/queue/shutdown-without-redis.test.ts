import path from 'node:path';
import {
  cleanupAll,
  eventually,
  exitWithin,
  killAllWorkerProcesses,
  spawnDepotCommand,
  spawnWorkerProcess,
  TempDirs,
  WorkerProcess,
  writeConfigFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * SIGTERM stops `depot worker` and `depot serve` within their grace period
 * plus a small bound, whatever Redis does: here Redis is gone (killed, not
 * answering) when the signal comes, so nothing can be handed back or closed
 * politely. A worker's running tasks then come back through stalled-job
 * recovery once Redis is back.
 */
jest.setTimeout(60_000);

const GRACE_MS = 1_000;
/** What the stop may take beyond the grace period. */
const BOUND_MS = 5_000;
const temp = new TempDirs();
let redis: RedisServer | undefined;

afterEach(async () => {
  await cleanupAll(
    () => killAllWorkerProcesses(),
    () => redis?.stop(),
  );
  redis = undefined;
});

afterAll(() => temp.cleanup());

async function configFor(redisUrl: string): Promise<string> {
  const dir = await temp.make();
  return writeConfigFile(dir, {
    redis: { url: redisUrl },
    queue: { shutdownGraceMs: GRACE_MS },
    drivers: { local: { type: 'filesystem', root: path.join(dir, 'archive') } },
    http: { port: 0 },
  });
}

async function stopsWithoutRedis(process: WorkerProcess, ready: RegExp): Promise<void> {
  await eventually(() => (ready.test(process.output()) ? true : undefined), 20_000, `the process to be ready:\n${process.output()}`);
  await redis?.stop();
  redis = undefined;
  await new Promise((resolve) => setTimeout(resolve, 500)); // it notices Redis is gone
  const signalled = Date.now();
  process.child.kill('SIGTERM');
  const exit = await exitWithin(process, GRACE_MS + BOUND_MS);
  expect(exit.signal).toBeNull();
  expect(Date.now() - signalled).toBeLessThan(GRACE_MS + BOUND_MS);
}

test('depot worker: SIGTERM with Redis gone exits within the grace period plus a small bound', async () => {
  redis = await startRedis();
  await stopsWithoutRedis(spawnWorkerProcess(await configFor(redis.url)), /storage worker ready/);
});

test('depot serve: SIGTERM with Redis gone exits within the grace period plus a small bound', async () => {
  redis = await startRedis();
  await stopsWithoutRedis(spawnDepotCommand(['serve'], await configFor(redis.url)), /serving \/health/);
});
