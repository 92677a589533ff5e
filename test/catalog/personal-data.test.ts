import { existsSync } from 'node:fs';
import path from 'node:path';
import { ArchivingManager } from '../../src/archiving/manager';
import { openCatalog } from '../../src/catalog/open';
import type { ListedArchive } from '../../src/catalog/views';
import type { Config } from '../../src/config/load';
import type { StorageRef, StoreResult } from '../../src/contract';
import { DepotHttpServer, startHttpServer } from '../../src/http/server';
import { StorageAPI } from '../../src/storage/api';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { silentLogger } from '../../src/support/logging';
import { jsonOf, runDepot } from '../helpers/depot-cli';
import { createTestDatabase, TestDatabase } from '../helpers/postgres';
import { archiveKeysBelow, cleanupAll, InProcessWorker, startInProcessWorker, TempDirs, testConfig, writeConfigFile } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * CONTRACT §8, personal data: an access request (`depot list`, `GET
 * /v1/archives`, `ArchivingManager.find`: by one or several metadata keys,
 * across drivers, list values included), the audit trail (`depot audit`,
 * `GET /v1/audit`) with its actors, and an erasure request (`depot erase`:
 * exactly the matching archives past retention, through the queue; the
 * retained ones listed with their retainUntil). Real processes for the
 * command line; on SQLite and on PostgreSQL.
 */
jest.setTimeout(120_000);

const TOKEN = 'personal-data-token-0123456789';

describe.each(['sqlite', 'postgres'] as const)('personal data (%s)', (kind) => {
  const temp = new TempDirs();
  let redis: RedisServer;
  let database: TestDatabase | undefined;
  let worker: InProcessWorker | undefined;
  let storage: StorageAPI | undefined;
  let http: DepotHttpServer | undefined;
  let manager: ArchivingManager;
  let config: Config;
  let configFile: string;
  let work: string;
  const archives: Record<string, StoreResult> = {};
  const future = new Date(Date.now() + 365 * 86_400_000).toISOString();

  // The config file names the token by ${API_TOKEN}: every command gets it.
  const depot = (args: string[]) => runDepot(args, configFile, { API_TOKEN: TOKEN });
  const key = (r: StoreResult) => `${r.ref.driver}:${r.ref.key}`;
  const keys = (refs: Array<{ ref: StorageRef }>) => refs.map((a) => `${a.ref.driver}:${a.ref.key}`).sort();
  const named = (...names: string[]) => names.map((n) => key(archives[n])).sort();

  beforeAll(async () => {
    redis = await startRedis();
    database = kind === 'postgres' ? await createTestDatabase() : undefined;
    work = await temp.make();
    const raw = {
      redis: { url: redis.url },
      queue: { attempts: 2, backoffMs: 20 },
      defaultDriver: 'local',
      drivers: { local: { type: 'filesystem', root: path.join(work, 'local') }, other: { type: 'filesystem', root: path.join(work, 'other') } },
      http: { port: 0, tokens: ['${API_TOKEN}'] },
      catalog: { url: database ? database.url : `sqlite:${path.join(work, 'db', 'catalog.sqlite')}` },
    };
    config = testConfig(raw, work, { API_TOKEN: TOKEN });
    configFile = await writeConfigFile(work, raw);
    worker = await startInProcessWorker(config);
    manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 }, catalog: config.catalog.url });
    const store = async (name: string, driver: string, metadata: Record<string, string | string[]>, extra: Record<string, string> = {}) => {
      const handle = await manager.store({ base64: Buffer.from(name).toString('base64') }, { name, driver, metadata, ...extra });
      archives[name] = await handle.result(20_000);
    };
    await store('a.zip', 'local', { userId: '34', courseId: '12' });
    await store('b.zip', 'other', { userId: ['33', '34'], courseId: '12' });
    await store('c.zip', 'local', { userId: '35', courseId: '12' });
    await store('d.zip', 'other', { userId: '34', courseId: '13' }, { retainUntil: future });
    await store('e.zip', 'local', { userId: '340', courseId: '12' });
    storage = new StorageAPI(config, defaultDriverFactory(), silentLogger());
    http = await startHttpServer(config, storage, silentLogger(), { checkIntervalMs: 3_600_000 });
  });

  afterAll(async () => {
    await cleanupAll(
      () => http?.close(),
      () => storage?.close(),
      () => manager?.close(),
      () => worker?.close(),
      () => database?.drop(),
      () => redis?.stop(),
      () => temp.cleanup(),
    );
  });

  const get = async (pathAndQuery: string, token: string | null = TOKEN) => {
    const response = await fetch(`${http?.url}${pathAndQuery}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  test('an access request: exactly the matching archives, across drivers, by one key and by several', async () => {
    const list = async (...args: string[]) => {
      const run = await depot(['list', '--json', ...args]);
      expect(run.code).toBe(0);
      return jsonOf<{ archives: ListedArchive[]; next: string | null }>(run);
    };
    expect(keys((await list('--meta', 'userId=34')).archives)).toEqual(named('a.zip', 'b.zip', 'd.zip'));
    expect(keys((await list('--meta', 'userId=34', '--meta', 'courseId=12')).archives)).toEqual(named('a.zip', 'b.zip'));
    expect(keys((await list('--meta', 'userId=34', '--driver', 'other')).archives)).toEqual(named('b.zip', 'd.zip'));
    expect((await list('--meta', 'userId=3')).archives).toEqual([]);

    const first = await list('--meta', 'courseId=12', '--limit', '2');
    expect(first.archives).toHaveLength(2);
    expect(first.next).toEqual(expect.any(String));
    const second = await list('--meta', 'courseId=12', '--limit', '2', '--cursor', first.next ?? '');
    expect(second.next).toBeNull();
    expect(keys([...first.archives, ...second.archives])).toEqual(named('a.zip', 'b.zip', 'c.zip', 'e.zip'));

    const b = archives['b.zip'];
    expect((await list('--meta', 'userId=33')).archives).toEqual([
      { ref: b.ref, name: 'b.zip', size: b.size, sha256: b.sha256, storedAt: b.storedAt, metadata: { userId: ['33', '34'], courseId: '12' } },
    ]);

    const over = await get('/v1/archives?meta.userId=34&meta.courseId=12');
    expect(over.status).toBe(200);
    expect(keys(over.body.archives as ListedArchive[])).toEqual(named('a.zip', 'b.zip'));
    expect(over.body.next).toBeNull();
    expect((await get('/v1/archives?driver=other&meta.userId=34&limit=1')).body).toMatchObject({ archives: [expect.anything()], next: expect.any(String) });

    const found: ListedArchive[] = [];
    for await (const archive of manager.find({ metadata: { userId: '34' }, pageSize: 1 })) found.push(archive);
    expect(keys(found)).toEqual(named('a.zip', 'b.zip', 'd.zip'));
    expect(found.find((f) => f.name === 'd.zip')).toMatchObject({ retainUntil: future });
  });

  test('over HTTP: a bearer token is required; bad parameters are 400 naming them', async () => {
    expect((await get('/v1/archives', null)).status).toBe(401);
    expect((await get('/v1/audit?taskId=x', 'wrong-token-wrong-token')).status).toBe(401);
    expect(await get('/v1/archives?limit=0')).toMatchObject({ status: 400, body: { ok: false, error: { code: 'invalid_task', field: 'limit' } } });
    expect(await get('/v1/archives?cursor=nope')).toMatchObject({ status: 400, body: { error: { code: 'invalid_task', field: 'cursor' } } });
    expect(await get('/v1/archives?user=34')).toMatchObject({ status: 400, body: { error: { code: 'invalid_task', field: 'user' } } });
    expect(await get('/v1/audit?since=yesterday')).toMatchObject({ status: 400, body: { error: { code: 'invalid_task', field: 'since' } } });
    expect((await fetch(`${http?.url}/v1/archives`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(405);
  });

  test('the audit trail by task, over the command line and HTTP; a task queued over HTTP has actor http:token-0', async () => {
    const a = archives['a.zip'];
    const run = await depot(['audit', '--task', a.taskId, '--json']);
    expect(run.code).toBe(0);
    expect(jsonOf(run)).toEqual({
      entries: [{ at: expect.any(String), operation: 'store', taskId: a.taskId, ref: a.ref, outcome: 'ok', actor: 'queue' }],
      next: null,
    });

    const posted = await fetch(`${http?.url}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ operation: 'retrieve', task: { ref: a.ref, target: { inline: true } } }),
    });
    const { taskId } = (await posted.json()) as { taskId: string };
    let entries: unknown[] = [];
    for (let i = 0; i < 200 && !entries.length; i++) {
      entries = (await get(`/v1/audit?taskId=${taskId}`)).body.entries as unknown[];
      if (!entries.length) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(entries).toEqual([{ at: expect.any(String), operation: 'retrieve', taskId, ref: a.ref, outcome: 'ok', actor: 'http:token-0' }]);
    const byArchive = await depot(['audit', '--driver', 'local', '--key', a.ref.key, '--json']);
    expect(jsonOf<{ entries: Array<{ operation: string }> }>(byArchive).entries.map((e) => e.operation)).toEqual(['store', 'retrieve']);
    expect((await depot(['audit', '--key', a.ref.key])).code).toBe(2);
  });

  test('an erasure request: --dry-run deletes nothing; then exactly the matching archives past retention go, the retained one is listed', async () => {
    expect((await depot(['erase'])).code).toBe(2);
    const dry = await depot(['erase', '--meta', 'userId=34', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    const planned = jsonOf<{ dryRun: boolean; deleted: StorageRef[]; retained: Array<{ ref: StorageRef; retainUntil: string }>; failed: unknown[] }>(dry);
    expect(planned.dryRun).toBe(true);
    expect(keys(planned.deleted.map((ref) => ({ ref })))).toEqual(named('a.zip', 'b.zip'));
    expect(planned.retained).toEqual([{ ref: archives['d.zip'].ref, retainUntil: future }]);
    for (const name of ['a.zip', 'b.zip']) expect(existsSync(path.join(work, archives[name].ref.driver, ...archives[name].ref.key.split('/')))).toBe(true);

    const run = await depot(['erase', '--meta', 'userId=34', '--json']);
    expect(run.code).toBe(0);
    const done = jsonOf<typeof planned>(run);
    expect(done).toMatchObject({ dryRun: false, failed: [], retained: [{ ref: archives['d.zip'].ref, retainUntil: future }] });
    expect(keys(done.deleted.map((ref) => ({ ref })))).toEqual(named('a.zip', 'b.zip'));
    expect(await archiveKeysBelow(path.join(work, 'local'))).toEqual([archives['c.zip'].ref.key, archives['e.zip'].ref.key].sort());
    expect(await archiveKeysBelow(path.join(work, 'other'))).toEqual([archives['d.zip'].ref.key]);

    const catalog = await openCatalog(config.catalog, 'read');
    try {
      expect(keys((await catalog.findArchives({ metadata: [['userId', '34']] })).items)).toEqual(named('d.zip'));
      const trail = await catalog.findAudit({ driver: 'local', key: archives['a.zip'].ref.key });
      expect(trail.items.map((e) => [e.operation, e.outcome, e.actor])).toEqual([
        ['store', 'ok', 'queue'],
        ['retrieve', 'ok', 'http:token-0'],
        ['erase', 'ok', 'cli'],
      ]);
      expect((await catalog.stats()).counters.filter((c) => c.name === 'erased').reduce((n, c) => n + c.value, 0)).toBe(2);
    } finally {
      await catalog.close();
    }
    // Nothing left to erase but the retained one: still no failure.
    expect(jsonOf(await depot(['erase', '--meta', 'userId=34', '--json']))).toMatchObject({ deleted: [], failed: [] });
  });
});

describe('catalog commands without a catalog', () => {
  const temp = new TempDirs();
  afterAll(() => temp.cleanup());

  test('list and audit never create one: an error that says where they looked; erase refuses an unfilled one', async () => {
    const work = await temp.make();
    const file = path.join(work, 'nowhere', 'catalog.sqlite');
    const configFile = await writeConfigFile(work, {
      drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
      catalog: { url: `sqlite:${file}` },
    });
    for (const args of [['list'], ['audit', '--json'], ['erase', '--meta', 'userId=1']]) {
      const run = await runDepot(args, configFile);
      expect(run.code).toBe(1);
      expect(`${run.stdout}${run.stderr}`).toContain(`no catalog at sqlite:${file} (config catalog.url)`);
    }
    expect(existsSync(path.dirname(file))).toBe(false);

    const catalog = await openCatalog({ target: { kind: 'sqlite', file }, location: `sqlite:${file}` }, 'write');
    await catalog.close();
    const refused = await runDepot(['erase', '--meta', 'userId=1'], configFile);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/unavailable: erasure waits until the catalog at sqlite:.* has been filled from the manifests/);
  });
});
