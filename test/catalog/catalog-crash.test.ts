import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DatabaseSync } from 'node:sqlite';
import path from 'node:path';
import pg from 'pg';
import { ArchivingManager } from '../../src/archiving/manager';
import type { Catalog } from '../../src/catalog/catalog';
import { openCatalog } from '../../src/catalog/open';
import type { Config } from '../../src/config/load';
import type { StoreResult } from '../../src/contract';
import {
  archiveKeysBelow,
  cleanupAll,
  eventually,
  killAllWorkerProcesses,
  spawnWorkerProcess,
  TempDirs,
  testConfig,
  writeConfigFile,
} from '../helpers/queue-harness';
import { createTestDatabase, TestDatabase } from '../helpers/postgres';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * CONTRACT §8, crash ordering: a worker killed with SIGKILL after its store
 * published the archive but before the catalog recorded it. The catalog is
 * held locked by the test (SQLite: another connection's write transaction;
 * PostgreSQL: LOCK TABLE), so the worker is caught exactly there: archive on
 * disk, entry still pending. The worker that takes the task up again finds
 * its own archive under the key and catalogues it — once.
 */
jest.setTimeout(120_000);

const SIZE = 256 * 1024;

describe.each(['sqlite', 'postgres'] as const)('kill -9 between publish and catalog write (%s)', (kind) => {
  const temp = new TempDirs();
  let redis: RedisServer;
  let database: TestDatabase | undefined;
  let manager: ArchivingManager | undefined;
  let reader: Catalog | undefined;
  let server: Server | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    database = kind === 'postgres' ? await createTestDatabase() : undefined;
  });

  afterAll(async () => {
    await cleanupAll(
      () => killAllWorkerProcesses(),
      () => manager?.close(),
      () => reader?.close(),
      () =>
        new Promise<void>((resolve) => {
          if (!server) return resolve();
          server.closeAllConnections();
          server.close(() => resolve());
        }),
      () => database?.drop(),
      () => redis?.stop(),
      () => temp.cleanup(),
    );
  });

  test('the rerun catalogues the archive once; the backend holds it once', async () => {
    const work = await temp.make();
    const root = path.join(work, 'archive');
    const catalogUrl = database ? database.url : `sqlite:${path.join(work, 'catalog', 'catalog.sqlite')}`;
    const raw = {
      redis: { url: redis.url },
      queue: { attempts: 20, backoffMs: 500 },
      drivers: { local: { type: 'filesystem', root } },
      catalog: { url: catalogUrl },
    };
    const configFile = await writeConfigFile(work, raw);
    const config: Config = testConfig(raw, work);

    // The source sends half, then waits until the test lets it finish; later downloads send everything.
    const bytes = Buffer.alloc(SIZE, 7);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let requests = 0;
    server = createServer((_request, response) => {
      requests++;
      response.writeHead(200, { 'content-length': String(SIZE) });
      if (requests > 1) return response.end(bytes);
      response.write(bytes.subarray(0, SIZE / 2));
      void released.then(() => response.end(bytes.subarray(SIZE / 2)));
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/exam.zip`;

    const first = spawnWorkerProcess(configFile);
    manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 } });
    await eventually(async () => ((await manager?.workerCount()) ?? 0) >= 1 || undefined, 30_000, 'the first worker');
    reader = await eventually(() => openCatalog(config.catalog, 'read').catch(() => undefined), 30_000, 'the catalog');
    const handle = await manager.store({ url }, { name: 'exam.zip', metadata: { userId: 'crash' } });
    await eventually(async () => ((await reader?.pending({ limit: 10 }))?.length ? true : undefined), 30_000, 'the pending entry');

    // The catalog locked, the source let go: the worker publishes, then waits on the catalog.
    const unlock = await lockCatalog(kind, config);
    release();
    const [key] = await eventually(async () => ((await archiveKeysBelow(root)).length ? archiveKeysBelow(root) : undefined), 30_000, 'the archive');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await reader.get({ driver: 'local', key })).toBeNull();
    expect((await reader.pending({ limit: 10 })).map((p) => p.entry.ref.key)).toEqual([key]);
    await first.kill();
    await unlock();

    spawnWorkerProcess(configFile);
    const result: StoreResult = await handle.result(60_000);
    expect(result.ref).toEqual({ driver: 'local', key });
    expect(await archiveKeysBelow(root)).toEqual([key]);
    expect((await reader.findArchives({ metadata: [['userId', 'crash']] })).items.map((e) => [e.ref.key, e.sha256, e.size])).toEqual([
      [key, result.sha256, SIZE],
    ]);
    expect(await reader.pending({ limit: 10 })).toEqual([]);
    expect((await reader.findAudit({ taskId: handle.taskId })).items.map((e) => [e.operation, e.outcome])).toEqual([['store', 'ok']]);
  });
});

/** Holds the catalog's write lock from another connection until the returned function is called. */
async function lockCatalog(kind: 'sqlite' | 'postgres', config: Config): Promise<() => Promise<void>> {
  const target = config.catalog.target;
  if (kind === 'sqlite' && target.kind === 'sqlite') {
    const db = new DatabaseSync(target.file);
    db.exec('BEGIN IMMEDIATE');
    return async () => {
      db.exec('ROLLBACK');
      db.close();
    };
  }
  if (target.kind !== 'postgres') throw new Error('no such catalog');
  const client = new pg.Client({ connectionString: target.url });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE depot_archives IN EXCLUSIVE MODE');
  return async () => {
    await client.query('ROLLBACK');
    await client.end();
  };
}
