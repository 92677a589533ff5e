import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import { ArchivingManager } from '../../src/archiving/manager';
import { createRedis, RedisTarget } from '../../src/queue/connection';
import { jsonOf, runDepot } from '../helpers/depot-cli';
import {
  archiveKeysBelow,
  cleanupAll,
  eventually,
  InProcessWorker,
  sha256Hex,
  stagingEntries,
  startHttpSource,
  startInProcessWorker,
  TempDirs,
  testConfig,
  writeConfigFile,
} from '../helpers/queue-harness';
import { patternBytes } from '../helpers/streams';

/**
 * The failover tests' common run (CONTRACT §10): `count` stores queued through
 * ArchivingManager, each reading its bytes from a slow HTTP source so that many
 * are running when `fail` strikes Redis (after `failAfter` archives landed).
 * Then every task must have completed exactly once: each job completed, one
 * archive per task under its key with the task's bytes, nothing left in
 * staging, one catalog entry per task — and `depot status` answers on the
 * topology as it is after the failure.
 */
export interface FailureRun {
  /** The config's `redis` section and what createRedis takes for it. */
  redis: Record<string, unknown>;
  target: RedisTarget;
  prefix: string;
  count: number;
  failAfter: number;
  fail(): Promise<void>;
}

export async function storesThroughFailure(run: FailureRun): Promise<void> {
  const temp = new TempDirs();
  const work = await temp.make();
  const root = path.join(work, 'archive');
  const source = await startHttpSource(async (req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 150));
    const body = patternBytes(2048, req.url ?? '');
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  });
  const raw = {
    redis: run.redis,
    queue: { prefix: run.prefix, concurrency: 8, attempts: 10, backoffMs: 200, lockDurationMs: 4_000, stalledIntervalMs: 2_000 },
    drivers: { local: { type: 'filesystem', root } },
    sources: { allowedHosts: ['127.0.0.1'] },
  };
  const config = testConfig(raw, work);
  let worker: InProcessWorker | undefined;
  const manager = new ArchivingManager({ redis: run.target, prefix: run.prefix, catalog: config.catalog.url });
  const connection = createRedis(run.target, 'worker');
  const queue = new Queue('depot', { connection, prefix: run.prefix });
  queue.on('error', () => undefined);
  connection.on('error', () => undefined);
  try {
    worker = await startInProcessWorker(config);
    const taskIds = Array.from({ length: run.count }, (_, i) => `failover-${String(i).padStart(4, '0')}`);
    const jobIds = new Map<string, string>();
    for (const taskId of taskIds) jobIds.set(taskId, (await manager.store({ url: source.url(`/${taskId}`) }, { taskId, name: 'a.bin' })).jobId);

    await eventually(async () => ((await archiveKeysBelow(root)).length >= run.failAfter ? true : undefined), 30_000, `${run.failAfter} archives`);
    await run.fail();

    const completed = new Set<string>();
    await eventually(
      async () => {
        for (const taskId of taskIds) {
          if (completed.has(taskId)) continue;
          const job = await queue.getJob(jobIds.get(taskId) ?? '');
          if (job && (await job.getState()) === 'completed') completed.add(taskId);
        }
        return completed.size === taskIds.length ? true : undefined;
      },
      90_000,
      'every task to complete',
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${completed.size} of ${taskIds.length} completed; counts ${JSON.stringify(await queue.getJobCounts())}`);
    });
    // What a producer reads back: each completed job's result names the archive its task stored.
    for (const taskId of taskIds) {
      const job = await queue.getJob(jobIds.get(taskId) ?? '');
      expect({ taskId, result: job?.returnvalue as unknown }).toMatchObject({
        taskId,
        result: { ref: { driver: 'local', key: expect.stringMatching(new RegExp(`/${taskId}/a\\.bin$`)) } },
      });
    }
    // Exactly once: one archive per task, under the task's key, with its bytes; no other archive, nothing half-written.
    const keys = await archiveKeysBelow(root);
    expect(keys).toHaveLength(taskIds.length);
    for (const taskId of taskIds) {
      const key = keys.find((k) => k.endsWith(`/${taskId}/a.bin`));
      expect(key).toBeDefined();
      expect(sha256Hex(await readFile(path.join(root, key ?? '')))).toBe(sha256Hex(patternBytes(2048, `/${taskId}`)));
    }
    expect(await stagingEntries(root)).toEqual([]);
    const catalogued: string[] = [];
    for await (const archive of manager.find({ pageSize: 1000 })) catalogued.push(archive.ref.key);
    expect(catalogued.sort()).toEqual([...keys].sort());

    // Every Redis user on this topology: the command line too.
    const status = await runDepot(['status', '--json'], await writeConfigFile(work, { ...raw, catalog: { url: config.catalog.url } }));
    expect(status.code).toBe(0);
    expect(jsonOf<{ ok: boolean; counts: Record<string, number> }>(status)).toMatchObject({ ok: true, counts: { completed: run.count, failed: 0 } });
  } finally {
    await cleanupAll(
      () => worker?.close(),
      () => manager.close(),
      () => queue.close(),
      async () => connection.disconnect(),
      () => source.close(),
      () => temp.cleanup(),
    );
  }
}
