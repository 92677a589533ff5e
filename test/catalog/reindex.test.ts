import { rm } from 'node:fs/promises';
import path from 'node:path';
import { ArchivingManager } from '../../src/archiving/manager';
import type { Catalog, CatalogEntry } from '../../src/catalog/catalog';
import { openCatalog } from '../../src/catalog/open';
import { reindex, ReindexReport, ReindexState, REINDEX_STATE } from '../../src/catalog/reindex';
import type { Config } from '../../src/config/load';
import type { StoreResult } from '../../src/contract';
import { StorageAPI } from '../../src/storage/api';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { silentLogger } from '../../src/support/logging';
import { jsonOf, runDepot } from '../helpers/depot-cli';
import { createTestDatabase, queryDatabase, TestDatabase } from '../helpers/postgres';
import { cleanupAll, eventually, InProcessWorker, startInProcessWorker, TempDirs, testConfig, writeConfigFile } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * CONTRACT §8: the manifests stay the truth and the catalog is rebuilt from
 * them — `depot reindex` after the catalog was deleted restores every entry;
 * it reports drift both ways; an interrupted run resumes where it stopped; a
 * worker fills an empty catalog by itself. On SQLite and on PostgreSQL.
 */
jest.setTimeout(120_000);

describe.each(['sqlite', 'postgres'] as const)('reindex (%s)', (kind) => {
  const temp = new TempDirs();
  let redis: RedisServer;
  let database: TestDatabase | undefined;
  let config: Config;
  let configFile: string;
  let work: string;
  const stored: StoreResult[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    database = kind === 'postgres' ? await createTestDatabase() : undefined;
    work = await temp.make();
    const raw = {
      redis: { url: redis.url },
      queue: { attempts: 2, backoffMs: 20 },
      defaultDriver: 'local',
      drivers: { local: { type: 'filesystem', root: path.join(work, 'local') }, other: { type: 'filesystem', root: path.join(work, 'other') } },
      catalog: { url: database ? database.url : `sqlite:${path.join(work, 'db', 'catalog.sqlite')}` },
    };
    config = testConfig(raw, work);
    configFile = await writeConfigFile(work, raw);
    const worker = await startInProcessWorker(config);
    const manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 } });
    try {
      for (let i = 0; i < 7; i++) {
        const handle = await manager.store(
          { base64: Buffer.from(`archive ${i}`).toString('base64') },
          {
            name: `quiz-${i}.zip`,
            driver: i % 2 ? 'other' : 'local',
            metadata: { courseId: String(10 + (i % 3)), userIds: [`u${i}`, `u${i + 1}`] },
            ...(i === 3 ? { retainUntil: '2099-01-01', deleteAfter: '2099-06-01T00:00:00Z' } : {}),
          },
        );
        stored.push(await handle.result(20_000));
      }
    } finally {
      await manager.close();
      await worker.close();
    }
  });

  afterAll(async () => {
    await cleanupAll(
      () => database?.drop(),
      () => redis?.stop(),
      () => temp.cleanup(),
    );
  });

  async function withReader<T>(work: (catalog: Catalog) => Promise<T>): Promise<T> {
    const catalog = await openCatalog(config.catalog, 'write');
    try {
      return await work(catalog);
    } finally {
      await catalog.close();
    }
  }

  async function everything(catalog: Catalog): Promise<CatalogEntry[]> {
    const all: CatalogEntry[] = [];
    for (let cursor: string | null = null; ;) {
      const page = await catalog.findArchives({ cursor, limit: 3 });
      all.push(...page.items);
      if (!(cursor = page.next)) break;
    }
    return all.sort((a, b) => `${a.ref.driver}:${a.ref.key}`.localeCompare(`${b.ref.driver}:${b.ref.key}`));
  }

  async function deleteCatalog(): Promise<void> {
    const target = config.catalog.target;
    if (target.kind === 'sqlite') await rm(path.dirname(target.file), { recursive: true, force: true });
    else {
      const tables = ['depot_archives', 'depot_archive_meta', 'depot_audit', 'depot_counters', 'depot_state', 'depot_migrations'];
      await queryDatabase(target.url, `DROP TABLE ${tables.join(', ')}`);
    }
  }

  test('depot reindex after the catalog was deleted restores every entry', async () => {
    const before = await withReader(everything);
    expect(before).toHaveLength(7);
    await deleteCatalog();
    const run = await runDepot(['reindex', '--json'], configFile);
    expect(run.code).toBe(0);
    const report = jsonOf<{ ok: boolean } & ReindexReport>(run);
    expect(report).toMatchObject({ ok: true, filled: true, missing: [] });
    expect(report.drivers).toEqual([
      { driver: 'local', seen: 4, added: 4, updated: 0, missing: 0, dropped: 0 },
      { driver: 'other', seen: 3, added: 3, updated: 0, missing: 0, dropped: 0 },
    ]);
    expect(await withReader(everything)).toEqual(before);
    expect((await withReader((c) => c.findArchives({ metadata: [['userIds', 'u4']] }))).items.map((e) => e.name).sort()).toEqual(['quiz-3.zip', 'quiz-4.zip']);
  });

  test('drift both ways: an archive deleted behind depot’s back is reported missing, an entry the catalog lost comes back', async () => {
    const [gone, lost] = [stored[0], stored[2]];
    await rm(path.join(work, 'local', ...gone.ref.key.split('/')));
    await rm(path.join(work, 'local', ...gone.ref.key.split('/')) + '.depot.json');
    const target = config.catalog.target;
    const forget = `DELETE FROM depot_archives WHERE key = '${lost.ref.key}'`;
    if (target.kind === 'postgres') await queryDatabase(target.url, forget);
    else {
      const { DatabaseSync } = await import('node:sqlite');
      const db = new DatabaseSync(target.file);
      db.exec(forget);
      db.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
    const report = jsonOf<ReindexReport>(await runDepot(['reindex', '--driver', 'local', '--json'], configFile));
    expect(report.drivers).toEqual([{ driver: 'local', seen: 3, added: 1, updated: 0, missing: 1, dropped: 0 }]);
    expect(report.missing).toEqual([gone.ref]);
    await withReader(async (catalog) => {
      expect(await catalog.get(gone.ref)).toMatchObject({ verifyStatus: 'missing' });
      expect(await catalog.get(lost.ref)).toMatchObject({ sha256: lost.sha256, metadata: lost.metadata });
    });
  });

  test('an interrupted reindex resumes after the last key it handled; a live one is not run twice', async () => {
    const storage = new StorageAPI(config, defaultDriverFactory(), silentLogger());
    try {
      await withReader(async (catalog) => {
        const abort = new AbortController();
        const first = reindex(catalog, storage, {
          holder: 'first',
          mode: 'manual',
          logger: silentLogger(),
          batchSize: 2,
          signal: abort.signal,
          onProgress: () => abort.abort(),
        });
        await expect(first).rejects.toThrow();
        const interrupted = await catalog.state<ReindexState>(REINDEX_STATE);
        expect(interrupted).toMatchObject({ status: 'running', holder: 'first', drivers: { local: { done: false, seen: 2 } } });

        // Its holder's heartbeat is fresh: another run is refused, saying who holds it.
        const busy = await runDepot(['reindex'], configFile);
        expect(busy.code).toBe(1);
        expect(busy.stderr).toMatch(/unavailable: a reindex is running \(first, local: 2 manifests read/);

        const seen: number[] = [];
        const resumed = await reindex(catalog, storage, {
          holder: 'second',
          mode: 'manual',
          logger: silentLogger(),
          batchSize: 1,
          staleMs: 0,
          onProgress: (driver, p) => driver === 'local' && seen.push(p.seen),
        });
        expect(resumed).toMatchObject({ resumed: true, filled: true });
        // Only what came after the second key was read again: one batch per manifest, 3 and 4 on local.
        expect(seen.filter((n, i) => seen.indexOf(n) === i)).toEqual([3]);
        expect(resumed?.drivers.find((d) => d.driver === 'local')).toMatchObject({ seen: 3, missing: 1 });
        expect(await catalog.state<ReindexState>(REINDEX_STATE)).toMatchObject({ status: 'idle', filled: true });
      });
    } finally {
      await storage.close();
    }
  });

  test('a worker fills an empty catalog by itself; until then the catalog says it is not filled', async () => {
    await deleteCatalog();
    let worker: InProcessWorker | undefined;
    try {
      worker = await startInProcessWorker(config);
      await withReader(async (catalog) => {
        await eventually(async () => ((await catalog.state<ReindexState>(REINDEX_STATE))?.filled ? true : undefined), 30_000, 'the catalog filled');
        expect((await everything(catalog)).map((e) => e.name).sort()).toEqual(
          stored
            .filter((s) => s !== stored[0])
            .map((s) => s.name)
            .sort(),
        );
      });
    } finally {
      await worker?.close();
    }
  });
});
