import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ArchivingManager } from '../../src/archiving/manager';
import { cleanupAll, eventually, spawnWorkerProcess, TempDirs, WorkerProcess, writeConfigFile } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * Issue 10: a secret that happens to read like a number — a short dashboard
 * password `4096` — while a task's result holds that number. Redacting the
 * serialized result made it `"size":***`: the result no longer parsed and the
 * task failed as `internal`; the audit line was no longer JSON either.
 */
jest.setTimeout(60_000);

const PASSWORD = '4096';
const temp = new TempDirs();
let redis: RedisServer;
let worker: WorkerProcess;
let manager: ArchivingManager;
let work: string;

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make();
  const configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    queue: { attempts: 1 },
    drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
    http: { auth: { user: 'admin', password: '${UI_PASSWORD}' } },
    paths: { allowed: [work] },
  });
  worker = spawnWorkerProcess(configFile, { UI_PASSWORD: PASSWORD });
  manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 } });
  await eventually(async () => ((await manager.workerCount()) >= 1 ? true : undefined), 30_000, `the worker to connect (${worker.output()})`);
});

afterAll(async () => {
  await cleanupAll(
    () => manager?.close(),
    () => worker?.kill(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

test('a store of 4096 bytes completes with size 4096; the audit line is JSON; the password as a string is masked', async () => {
  const file = path.join(work, 'pin.zip');
  await writeFile(file, Buffer.alloc(4096, 7));
  const handle = await manager.store({ path: file }, { name: 'pin.zip', metadata: { pin: PASSWORD } });
  const result = await handle.result(30_000);
  expect(result).toMatchObject({ size: 4096, metadata: { pin: '***' } });

  const lines = await eventually(
    () => {
      const found = worker
        .output()
        .split('\n')
        .filter((line) => line.includes('"audit":true'));
      return found.length ? found : undefined;
    },
    10_000,
    'the audit line',
  );
  const auditLine = JSON.parse(lines[0]) as Record<string, unknown>;
  expect(auditLine).toMatchObject({ audit: true, action: 'store', size: 4096, outcome: 'created' });
  for (const line of worker
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{')))
    expect(() => JSON.parse(line) as unknown).not.toThrow();
});
