import path from 'node:path';
import { openCatalog } from '../../src/catalog/open';
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
  testConfig,
  writeConfigFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { killWorkerEveryRun, startStallingSource } from '../helpers/stalling-task';

/**
 * CONTRACT §10: a task failed by BullMQ's stall limit (its workers killed with
 * SIGKILL while running it, more often than allowed) still gets its catalog
 * record: the pending entry its runs wrote is settled (dropped: nothing was
 * published) and the failure is in the audit trail, `internal` as its
 * `task.failed` webhook says. Real worker processes and a SQLite catalog.
 */
jest.setTimeout(150_000);

const temp = new TempDirs();
let redis: RedisServer;
let client: QueueClient;
let source: HttpSource;

beforeAll(async () => {
  redis = await startRedis();
  client = await queueClient(redis.port);
  source = await startStallingSource();
});

afterAll(async () => {
  await cleanupAll(
    () => killAllWorkerProcesses(),
    () => client?.close(),
    () => source?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

test('a store failed by the stall limit: no pending entry left, the failure audited (store, internal)', async () => {
  const work = await temp.make('depot-stall-record-');
  const raw = {
    redis: { url: redis.url },
    queue: { lockDurationMs: 1000, stalledIntervalMs: 500, attempts: 1 },
    sources: { timeoutMs: 120_000 },
    drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
    catalog: { url: `sqlite:${path.join(work, 'catalog.sqlite')}` },
  };
  const configFile = await writeConfigFile(work, raw);
  const job = await client.queue.add(
    'store',
    { taskId: 'dies-every-time', name: 'x.zip', source: { url: source.url('/x.zip') }, metadata: { userId: '7' } },
    { jobId: 'task-dies-every-time' },
  );
  const config = testConfig(raw, work);
  await killWorkerEveryRun(configFile, source, 3);
  const catalog = await openCatalog(config.catalog, 'read');
  try {
    // Each run wrote the pending entry before it began to publish.
    expect((await catalog.pending({ limit: 10 })).map((p) => p.entry.taskId)).toEqual(['dies-every-time']);

    const last = spawnWorkerProcess(configFile, { DEPOT_WORKER_NAME: 'stall-4' });
    await eventually(async () => ((await job.getState()) === 'failed' ? true : undefined), 60_000, 'the stall limit').catch((error: Error) => {
      throw new Error(`${error.message}\n${last.output()}`);
    });
    const trail = await eventually(
      async () => {
        const items = (await catalog.findAudit({ taskId: 'dies-every-time' })).items;
        return items.length ? items : undefined;
      },
      30_000,
      'the audit entry',
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${last.output()}`);
    });
    expect(trail.map((e) => [e.operation, e.outcome, e.actor, e.ref.driver, e.ref.key.endsWith('/dies-every-time/x.zip')])).toEqual([
      ['store', 'internal', 'queue', 'local', true],
    ]);
    expect(await catalog.pending({ limit: 10 })).toEqual([]);
    expect((await catalog.findArchives({})).items).toEqual([]);
    last.child.kill('SIGTERM');
    expect(await exitWithin(last, 30_000)).toEqual({ code: 0, signal: null });
  } finally {
    await catalog.close();
  }
});
