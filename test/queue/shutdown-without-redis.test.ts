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

/**
 * A second SIGTERM or SIGINT, of either kind, while the first one's stop still
 * waits (here on the Redis that is gone): `depot serve` exits at once with exit
 * code 1, saying so, rather than waiting out the stop's deadline or being
 * killed by the signal.
 */
test.each([
  ['SIGTERM', 'SIGTERM'],
  ['SIGTERM', 'SIGINT'],
] as const)('depot serve: %s, then %s while it stops: exit 1 at once', async (first, second) => {
  redis = await startRedis();
  const serve = spawnDepotCommand(['serve'], await configFor(redis.url));
  await eventually(() => (/serving \/health/.test(serve.output()) ? true : undefined), 20_000, `depot serve to be ready:\n${serve.output()}`);
  await redis.stop();
  redis = undefined;
  await new Promise((resolve) => setTimeout(resolve, 500)); // it notices Redis is gone
  serve.child.kill(first);
  await eventually(() => (serve.output().includes(`${first}: stopping`) ? true : undefined), 5_000, 'the first signal to be taken');
  expect(serve.child.exitCode).toBeNull(); // still stopping
  const signalled = Date.now();
  serve.child.kill(second);
  expect(await exitWithin(serve, BOUND_MS)).toEqual({ code: 1, signal: null });
  expect(Date.now() - signalled).toBeLessThan(1_000);
  expect(serve.output()).toContain(`${second} again: exiting at once`);
});
