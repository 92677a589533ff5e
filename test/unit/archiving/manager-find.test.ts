import path from 'node:path';
import { ArchivingManager } from '../../../src/archiving/manager';
import { openCatalog } from '../../../src/catalog/open';
import { RedisServer, startRedis } from '../../helpers/redis-server';
import { TempDirs } from '../../helpers/queue-harness';

/**
 * ArchivingManager.find (CONTRACT §8): an async iterator over the catalog's
 * entries, a page at a time; its catalog given as a Catalog or an URL that
 * cannot depend on the current directory, and never created by it.
 */
const temp = new TempDirs();
let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
  await temp.cleanup();
});

test('without a catalog, or with a relative SQLite path, find is misconfigured naming the option', async () => {
  for (const catalog of [undefined, 'sqlite:data/catalog.sqlite', 'mysql://db/depot']) {
    const manager = new ArchivingManager({ redisUrl: redis.url, catalog });
    try {
      await expect(manager.find({ metadata: { userId: '1' } }).next()).rejects.toMatchObject({ code: 'misconfigured', field: 'catalog' });
    } finally {
      await manager.close();
    }
  }
});

test('a catalog URL that leads nowhere is not created: not_found, saying where', async () => {
  const file = path.join(await temp.make(), 'none', 'catalog.sqlite');
  const manager = new ArchivingManager({ redisUrl: redis.url, catalog: `sqlite:${file}` });
  try {
    await expect(manager.find().next()).rejects.toMatchObject({
      code: 'not_found',
      message: expect.stringContaining(`no catalog at sqlite:${file}`) as unknown,
    });
  } finally {
    await manager.close();
  }
});

test('pages are read as the iteration goes on, and an iteration stopped early reads no more', async () => {
  const file = path.join(await temp.make(), 'catalog.sqlite');
  const catalog = await openCatalog({ target: { kind: 'sqlite', file }, location: `sqlite:${file}` }, 'write');
  const manager = new ArchivingManager({ redisUrl: redis.url, catalog });
  try {
    for (let i = 0; i < 5; i++) {
      const key = `2026/01/01/task-${i}/a.zip`;
      await catalog.recordStored(
        'local',
        {
          key,
          name: 'a.zip',
          taskId: `task-${i}`,
          size: 1,
          sha256: 'a'.repeat(64),
          storedAt: '2026-01-01T00:00:00.000Z',
          metadata: { userId: ['7', String(i)] },
        },
        { operation: 'store', taskId: `task-${i}`, ref: { driver: 'local', key }, outcome: 'ok', actor: 'queue', eventKey: `store:${key}` },
      );
    }
    const before = catalog.rowsRead;
    const seen: string[] = [];
    for await (const archive of manager.find({ metadata: { userId: '7' }, pageSize: 2 })) {
      seen.push(archive.ref.key);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(['2026/01/01/task-0/a.zip', '2026/01/01/task-1/a.zip', '2026/01/01/task-2/a.zip']);
    // Two pages of two (each read one row more, to know whether another page follows): six rows, not five.
    expect(catalog.rowsRead - before).toBe(6);
    const all: string[] = [];
    for await (const archive of manager.find({ metadata: { userId: ['7', '4'] } })) all.push(archive.ref.key);
    expect(all).toEqual(['2026/01/01/task-4/a.zip']);
  } finally {
    await manager.close();
    await catalog.close();
  }
});
