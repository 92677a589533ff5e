import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ArchivingManager } from '../../src/archiving/manager';
import type { Catalog } from '../../src/catalog/catalog';
import { openCatalog } from '../../src/catalog/open';
import type { Config } from '../../src/config/load';
import type { StoreResult } from '../../src/contract';
import { archiveKeysBelow, catalogDir, cleanupAll, InProcessWorker, startInProcessWorker, TempDirs, testConfig } from '../helpers/queue-harness';
import { createTestDatabase, TestDatabase } from '../helpers/postgres';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * CONTRACT §8: every store, retrieve and delete a worker runs is in the
 * catalog before its job completes, with the actor that queued it; a rerun
 * records nothing twice; a store that fails over leaves its primary's pending
 * entry settled. On SQLite and on PostgreSQL.
 */
jest.setTimeout(60_000);

describe.each(['sqlite', 'postgres'] as const)('a worker records its operations in the catalog (%s)', (kind) => {
  const temp = new TempDirs();
  let redis: RedisServer;
  let database: TestDatabase | undefined;
  let worker: InProcessWorker | undefined;
  let config: Config;
  let catalog: Catalog;
  let work: string;
  const managers: ArchivingManager[] = [];

  const manager = (actor?: string) => {
    const made = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 }, actor });
    managers.push(made);
    return made;
  };

  beforeAll(async () => {
    redis = await startRedis();
    work = await temp.make();
    database = kind === 'postgres' ? await createTestDatabase() : undefined;
    const blocker = path.join(work, 'not-a-directory');
    await writeFile(blocker, 'a file where a root should be\n');
    await mkdir(path.join(work, 'local'));
    config = testConfig(
      {
        redis: { url: redis.url },
        queue: { attempts: 2, backoffMs: 20 },
        defaultDriver: 'local',
        drivers: {
          local: { type: 'filesystem', root: path.join(work, 'local') },
          broken: { type: 'filesystem', root: path.join(blocker, 'archive') },
          spare: { type: 'filesystem', root: path.join(work, 'spare') },
        },
        failover: { broken: ['spare'] },
        paths: { allowed: [work] },
        catalog: { url: database ? database.url : `sqlite:${path.join(catalogDir(), 'catalog.sqlite')}` },
      },
      work,
    );
    worker = await startInProcessWorker(config);
    catalog = await openCatalog(config.catalog, 'read');
  });

  afterAll(async () => {
    await cleanupAll(
      ...managers.map((m) => () => m.close()),
      () => worker?.close(),
      () => catalog?.close(),
      () => database?.drop(),
      () => redis?.stop(),
      () => temp.cleanup(),
    );
  });

  async function store(name: string, options: Record<string, unknown> = {}, actor?: string): Promise<StoreResult> {
    const handle = await manager(actor).store({ base64: Buffer.from(`bytes of ${name}`).toString('base64') }, { name, ...options });
    return handle.result(20_000);
  }

  test('a store: one complete entry with the manifest, and one store event with its actor', async () => {
    const result = await store('exam.zip', { metadata: { courseId: '12', userIds: ['34', '35'] }, deleteAfter: '2040-01-01' }, 'cli');
    expect(await catalog.get(result.ref)).toEqual({
      ref: result.ref,
      taskId: result.taskId,
      name: 'exam.zip',
      size: result.size,
      sha256: result.sha256,
      storedAt: result.storedAt,
      metadata: { courseId: '12', userIds: ['34', '35'] },
      deleteAfter: '2040-01-01',
      verifyStatus: null,
    });
    expect((await catalog.findArchives({ metadata: [['userIds', '35']] })).items.map((e) => e.ref)).toEqual([result.ref]);
    expect((await catalog.findAudit({ taskId: result.taskId })).items).toEqual([
      { at: expect.any(String) as unknown, operation: 'store', taskId: result.taskId, ref: result.ref, outcome: 'ok', actor: 'cli' },
    ]);
  });

  test('the same task again (existed, or rerun): nothing recorded twice', async () => {
    const taskId = 'rerun-0001';
    const first = await store('again.zip', { taskId });
    const second = await store('again.zip', { taskId });
    expect(second.ref).toEqual(first.ref);
    expect((await catalog.findAudit({ taskId })).items).toHaveLength(1);
    expect((await catalog.findArchives({ driver: 'local' })).items.filter((e) => e.taskId === taskId)).toHaveLength(1);
  });

  test('retrieves are audited, the missing one with not_found; a delete marks the entry deleted', async () => {
    const result = await store('read-me.zip', {}, undefined);
    const queue = manager();
    await (await queue.retrieve(result.ref, { inline: true }, { taskId: 'read-0001' })).result(20_000);
    const missing = { driver: 'local', key: result.ref.key.replace('read-me.zip', 'nothing.zip') };
    await expect((await queue.retrieve(missing, { inline: true }, { taskId: 'read-0002' })).result(20_000)).rejects.toMatchObject({ code: 'not_found' });
    await (await manager('cli').delete(result.ref, { taskId: 'gone-0001' })).result(20_000);
    const trail = (await catalog.findAudit({ driver: 'local', key: result.ref.key })).items.map((e) => [e.operation, e.taskId, e.outcome, e.actor]);
    expect(trail).toEqual([
      ['store', result.taskId, 'ok', 'queue'],
      ['retrieve', 'read-0001', 'ok', 'queue'],
      ['delete', 'gone-0001', 'ok', 'cli'],
    ]);
    expect((await catalog.findAudit({ taskId: 'read-0002' })).items.map((e) => [e.ref, e.outcome])).toEqual([[missing, 'not_found']]);
    expect(await catalog.get(result.ref)).toMatchObject({ deletedAt: expect.any(String) as unknown });
    expect((await catalog.findArchives({ deleted: true })).items.map((e) => e.ref)).toContainEqual(result.ref);
  });

  test('a delete refused for retention is audited with its code; the entry stays', async () => {
    const result = await store('kept.zip', { retainUntil: '2099-01-01' });
    await expect((await manager().delete(result.ref, { taskId: 'keep-0001' })).result(20_000)).rejects.toMatchObject({ code: 'retention' });
    expect((await catalog.findAudit({ taskId: 'keep-0001' })).items.map((e) => [e.operation, e.outcome])).toEqual([['delete', 'retention']]);
    expect((await catalog.get(result.ref))?.deletedAt).toBeUndefined();
  });

  test("a store that fails over: the fallback's entry complete; the primary's stays pending (its backend cannot say), never listed", async () => {
    const result = await store('moved.zip', { driver: 'broken', metadata: { userId: 'failover' } });
    expect(result.ref.driver).toBe('spare');
    expect(await archiveKeysBelow(path.join(work, 'spare'))).toContain(result.ref.key);
    expect((await catalog.findArchives({ metadata: [['userId', 'failover']] })).items.map((e) => e.ref)).toEqual([result.ref]);
    // Settling it asks the primary, which cannot answer (its root lies under a file): the entry waits, pending, for a later settling.
    expect((await catalog.pending({ metadata: [['userId', 'failover']], limit: 10 })).map((p) => p.entry.ref)).toEqual([
      { driver: 'broken', key: result.ref.key },
    ]);
  });
});
