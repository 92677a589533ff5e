import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  cleanupAll,
  eventually,
  exitWithin,
  HttpSource,
  killAllWorkerProcesses,
  queueClient,
  QueueClient,
  spawnWorkerProcess,
  TempDirs,
  writeConfigFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { killWorkerEveryRun, startStallingSource } from '../helpers/stalling-task';

/**
 * A task whose worker dies every time it runs it is failed by BullMQ's stall
 * limit (more than maxStalledCount stalls, 2 in depot), not by depot's own
 * failure path — and still sends its `task.failed` webhook, once (issue 10).
 * Real worker processes, killed with SIGKILL while the task runs.
 */
jest.setTimeout(150_000);

const temp = new TempDirs();
let redis: RedisServer;
let client: QueueClient;
let receiver: Server;
let source: HttpSource;
const hooks: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  redis = await startRedis();
  client = await queueClient(redis.port);
  receiver = createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
    request.on('end', () => {
      hooks.push(JSON.parse(raw) as Record<string, unknown>);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  source = await startStallingSource();
});

afterAll(async () => {
  await cleanupAll(
    () => killAllWorkerProcesses(),
    () => client?.close(),
    () => source?.close(),
    () => new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve())),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

test('a task failed by the stall limit (its worker killed with SIGKILL three times) sends task.failed once', async () => {
  const work = await temp.make('depot-stall-');
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/depot-hook`;
  const configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    queue: { lockDurationMs: 1000, stalledIntervalMs: 500, attempts: 1 },
    sources: { timeoutMs: 120_000 },
    drivers: { local: { type: 'filesystem', root: `${work}/archive` } },
    callbacks: { url: hookUrl },
  });
  const job = await client.queue.add(
    'store',
    { taskId: 'kills-its-worker', name: 'x.zip', source: { url: source.url('/x.zip') } },
    { jobId: 'task-kills-its-worker' },
  );

  await killWorkerEveryRun(configFile, source, 3);
  expect(hooks).toEqual([]);

  // The fourth worker finds the task over the stall limit and fails it without running it.
  const last = spawnWorkerProcess(configFile, { DEPOT_WORKER_NAME: 'stall-4' });
  const failed = await eventually(() => hooks.find((h) => h.event === 'task.failed'), 60_000, 'the task.failed webhook').catch(async (error: Error) => {
    const stored = await client.queue.getJob(job.id ?? '');
    throw new Error(`${error.message}; job ${await stored?.getState()} ${stored?.failedReason}\n${last.output()}`);
  });
  expect(failed).toMatchObject({
    event: 'task.failed',
    taskId: 'kills-its-worker',
    jobId: 'task-kills-its-worker',
    operation: 'store',
    error: { code: 'internal', message: expect.stringContaining('stalled') },
  });
  const stored = await client.queue.getJob('task-kills-its-worker');
  expect(await stored?.getState()).toBe('failed');
  expect(stored?.failedReason).toContain('stalled more than allowable limit');
  expect(source.requests).toBe(3);

  // Once: nothing more arrives.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  expect(hooks.filter((h) => h.event === 'task.failed')).toHaveLength(1);
  expect(hooks).toHaveLength(1);
  last.child.kill('SIGTERM');
  expect(await exitWithin(last, 30_000)).toEqual({ code: 0, signal: null });
});
