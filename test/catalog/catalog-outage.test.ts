import path from 'node:path';
import { ArchivingManager } from '../../src/archiving/manager';
import type { Catalog } from '../../src/catalog/catalog';
import { openCatalog } from '../../src/catalog/open';
import type { Config } from '../../src/config/load';
import { archiveKeysBelow, cleanupAll, InProcessWorker, startInProcessWorker, TempDirs, testConfig } from '../helpers/queue-harness';
import { createTestDatabase, TestDatabase } from '../helpers/postgres';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { startTcpProxy, TcpProxy } from '../helpers/tcp-proxy';

/**
 * CONTRACT §8: a catalog that cannot be reached is retried in place; the
 * store ends `unavailable` and nothing is published — never a store that
 * succeeds without its record, and never a failover (the fallback is
 * healthy and stays empty). PostgreSQL behind a forwarder the test stops.
 */
jest.setTimeout(60_000);

const temp = new TempDirs();
let redis: RedisServer;
let database: TestDatabase;
let proxy: TcpProxy;
let worker: InProcessWorker | undefined;
let manager: ArchivingManager;
let config: Config;
let work: string;

beforeAll(async () => {
  redis = await startRedis();
  database = await createTestDatabase();
  proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(database.url).port || 5432) });
  work = await temp.make();
  const url = new URL(database.url);
  url.port = String(proxy.port);
  config = testConfig(
    {
      redis: { url: redis.url },
      queue: { attempts: 3, backoffMs: 100 },
      defaultDriver: 'local',
      drivers: { local: { type: 'filesystem', root: path.join(work, 'local') }, spare: { type: 'filesystem', root: path.join(work, 'spare') } },
      failover: { local: ['spare'] },
      catalog: { url: url.href },
    },
    work,
  );
  worker = await startInProcessWorker(config);
  manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 } });
});

afterAll(async () => {
  await cleanupAll(
    () => manager?.close(),
    () => worker?.close(),
    () => proxy?.stop(),
    () => database?.drop(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

const store = async (name: string) =>
  (await manager.store({ base64: Buffer.from(name).toString('base64') }, { name, metadata: { userId: '34' } })).result(30_000);

test('catalog down: the store is retried, ends unavailable, publishes nothing and does not fail over; back up, stores are catalogued again', async () => {
  const before = await store('before.zip');
  await proxy.stop();
  const started = Date.now();
  await expect(store('during.zip')).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/^catalog at postgres:\/\//) as unknown });
  // Three tries with backoff in place (100 ms, then 200 ms at most, halved by jitter at least).
  expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  expect(await archiveKeysBelow(path.join(work, 'local'))).toEqual([before.ref.key]);
  expect(await archiveKeysBelow(path.join(work, 'spare'))).toEqual([]);
  expect(worker?.logs.filter((line) => line.includes('failing over'))).toEqual([]);
  expect(worker?.logs.filter((line) => line.includes('catalog: pending entry of local:')).length).toBe(2);

  await proxy.start();
  const after = await store('after.zip');
  let reader: Catalog | undefined;
  try {
    reader = await openCatalog(config.catalog, 'read');
    expect((await reader.findArchives({ metadata: [['userId', '34']] })).items.map((e) => e.name)).toEqual(['before.zip', 'after.zip']);
  } finally {
    await reader?.close();
  }
  expect(await archiveKeysBelow(path.join(work, 'local'))).toEqual([before.ref.key, after.ref.key].sort());
});
