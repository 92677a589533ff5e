import { spawn } from 'node:child_process';
import { chmod, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import { ArchivingManager } from '../../src/archiving/manager';
import { verifyArchives } from '../../src/archiving/fixity';
import { runnerSettings } from '../../src/archiving/runner-settings';
import { TaskRunner } from '../../src/archiving/task-runner';
import { createCallbackQueue } from '../../src/queue/callbacks';
import { NotificationService } from '../../src/support/notifications';
import type { Catalog } from '../../src/catalog/catalog';
import { openCatalog } from '../../src/catalog/open';
import type { Config } from '../../src/config/load';
import type { StoreResult } from '../../src/contract';
import { DepotHttpServer, startHttpServer } from '../../src/http/server';
import { StorageAPI } from '../../src/storage/api';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { silentLogger } from '../../src/support/logging';
import { jsonOf, runDepot } from '../helpers/depot-cli';
import { createTestDatabase, TestDatabase } from '../helpers/postgres';
import { cleanupAll, eventually, InProcessWorker, startInProcessWorker, taskContext, TempDirs, testConfig, writeConfigFile } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { expectedMac, parseSignature, startWebhookReceiver, WebhookReceiver } from '../helpers/webhook-receiver';

/**
 * CONTRACT §8, fixity: `depot verify` and the scheduled `verify` run find an
 * archive altered on disk and one deleted behind depot's back, mark nothing
 * intact as corrupt, record each result, count them in /metrics and send
 * `archive.corrupt` (signed, like §4's events); the byte rate holds. On
 * SQLite and on PostgreSQL.
 */
jest.setTimeout(120_000);

const SECRET = 'fixity-webhook-secret-0123456789';
const KiB = 1024;

describe.each(['sqlite', 'postgres'] as const)('fixity (%s)', (kind) => {
  const temp = new TempDirs();
  let redis: RedisServer;
  let database: TestDatabase | undefined;
  let receiver: WebhookReceiver;
  let worker: InProcessWorker | undefined;
  let manager: ArchivingManager;
  let config: Config;
  let configFile: string;
  let root: string;
  const stored: StoreResult[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    database = kind === 'postgres' ? await createTestDatabase() : undefined;
    receiver = await startWebhookReceiver();
    const work = await temp.make();
    root = path.join(work, 'archive');
    const raw = {
      redis: { url: redis.url },
      queue: { attempts: 2, backoffMs: 20 },
      drivers: { local: { type: 'filesystem', root } },
      callbacks: { url: `${receiver.base}/hook`, secret: '${HOOK_SECRET}' },
      http: { port: 0 },
      fixity: { intervalMs: 0, bytesPerSecond: 64 * 1024 * 1024 },
      catalog: { url: database ? database.url : `sqlite:${path.join(work, 'db', 'catalog.sqlite')}` },
    };
    config = testConfig(raw, work, { HOOK_SECRET: SECRET });
    configFile = await writeConfigFile(work, raw);
    worker = await startInProcessWorker(config);
    manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 } });
    for (let i = 0; i < 6; i++) {
      const bytes = Buffer.alloc(48 * KiB + i, i + 1);
      stored.push(await (await manager.store({ base64: bytes.toString('base64') }, { name: `exam-${i}.zip`, metadata: { userId: String(i) } })).result(20_000));
    }
  });

  afterAll(async () => {
    await cleanupAll(
      () => manager?.close(),
      () => worker?.close(),
      () => receiver?.close(),
      () => database?.drop(),
      () => redis?.stop(),
      () => temp.cleanup(),
    );
  });

  const file = (result: StoreResult) => path.join(root, ...result.ref.key.split('/'));

  async function withCatalog<T>(work: (catalog: Catalog) => Promise<T>): Promise<T> {
    const catalog = await openCatalog(config.catalog, 'read');
    try {
      return await work(catalog);
    } finally {
      await catalog.close();
    }
  }

  test('depot verify: everything intact is ok, and nothing is marked otherwise', async () => {
    const run = await runDepot(['verify', '--json'], configFile, { HOOK_SECRET: SECRET });
    expect(run.code).toBe(0);
    expect(jsonOf(run)).toEqual({ verified: 6, ok: 6, corrupt: [], missing: [] });
    await withCatalog(async (catalog) => {
      for (const result of stored) expect(await catalog.get(result.ref)).toMatchObject({ verifyStatus: 'ok', lastVerifiedAt: expect.any(String) as unknown });
      expect((await catalog.findAudit({ taskId: stored[0].taskId })).items.map((e) => [e.operation, e.outcome, e.actor])).toEqual([
        ['store', 'ok', 'queue'],
        ['verify', 'ok', 'cli'],
      ]);
    });
  });

  test('an archive altered on disk and one deleted behind depot’s back: found, marked, audited, counted, announced; the rest ok', async () => {
    const [altered, deleted] = [stored[1], stored[4]];
    // Same size, other bytes: only the hash can tell.
    await chmod(file(altered), 0o644);
    await writeFile(file(altered), Buffer.alloc(altered.size, 0xee));
    await rm(file(deleted));
    await rm(`${file(deleted)}.depot.json`);

    // The schedule's job (`verify`, no data) on the worker: the cycle is 90 days, nothing is due yet, nothing is read.
    const queue = new Queue('depot', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
    try {
      const job = await queue.add('verify', {});
      const result = await eventually(
        async () => ((await job.isCompleted()) ? (await queue.getJob(job.id ?? ''))?.returnvalue : undefined),
        30_000,
        'the verify run',
      );
      expect(result).toEqual({ verified: 0, ok: 0, corrupt: [], missing: [] });
    } finally {
      await queue.close();
    }

    // The scheduled run with a cycle that makes every archive due, as the worker runs it (actor fixity, webhooks).
    {
      const catalog = await openCatalog(config.catalog, 'read');
      const storage = new StorageAPI(config, defaultDriverFactory(), silentLogger());
      const callbacks = createCallbackQueue(redis.url, 'bull', [SECRET]);
      try {
        const runner = new TaskRunner(
          storage,
          { ...runnerSettings(config), fixity: { intervalMs: 0, bytesPerSecond: 64 * 1024 * 1024, cycleDays: 0 } },
          silentLogger(),
          catalog,
          new NotificationService((d, id) => callbacks.enqueue(d, id), config.callbacks?.url),
        );
        const ctx = taskContext('fixity-1');
        expect(await runner.processTask('verify', {}, ctx)).toEqual({ verified: 6, ok: 4, corrupt: [altered.ref], missing: [deleted.ref] });
      } finally {
        await callbacks.close();
        await storage.close();
        await catalog.close();
      }
    }

    const run = await runDepot(['verify', '--json'], configFile, { HOOK_SECRET: SECRET });
    expect(run.code).toBe(1);
    expect(jsonOf(run)).toEqual({ verified: 6, ok: 4, corrupt: [altered.ref], missing: [deleted.ref] });
    expect(run.stderr).toContain(`"level":"error","message":"fixity: local:${altered.ref.key} is corrupt`);

    await withCatalog(async (catalog) => {
      expect(await catalog.get(altered.ref)).toMatchObject({ verifyStatus: 'corrupt' });
      expect(await catalog.get(deleted.ref)).toMatchObject({ verifyStatus: 'missing' });
      for (const intact of stored.filter((s) => s !== altered && s !== deleted)) expect(await catalog.get(intact.ref)).toMatchObject({ verifyStatus: 'ok' });
      expect((await catalog.findAudit({ taskId: altered.taskId })).items.map((e) => [e.operation, e.outcome, e.actor])).toEqual([
        ['store', 'ok', 'queue'],
        ['verify', 'ok', 'cli'],
        ['verify', 'integrity', 'fixity'],
        ['verify', 'integrity', 'cli'],
      ]);
      expect((await catalog.findAudit({ taskId: deleted.taskId })).items.map((e) => e.outcome)).toEqual(['ok', 'ok', 'not_found', 'not_found']);
    });

    // archive.corrupt, signed and delivered by the worker's callback worker like the task events.
    const corrupt = await eventually(
      () => (receiver.received.filter((r) => r.body.event === 'archive.corrupt').length >= 4 ? receiver.received : undefined),
      30_000,
      'four archive.corrupt',
    );
    // The scheduled run's two (the command's two follow, with their own verifiedAt).
    const bodies = corrupt.filter((r) => r.body.event === 'archive.corrupt').slice(0, 2);
    expect(bodies.map((r) => r.body).sort((a, b) => String(a.taskId).localeCompare(String(b.taskId)))).toEqual(
      [
        {
          event: 'archive.corrupt',
          ref: altered.ref,
          taskId: altered.taskId,
          expectedSha256: altered.sha256,
          foundSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
          verifiedAt: expect.any(String),
          timestamp: expect.any(String),
        },
        {
          event: 'archive.corrupt',
          ref: deleted.ref,
          taskId: deleted.taskId,
          expectedSha256: deleted.sha256,
          foundSha256: null,
          verifiedAt: expect.any(String),
          timestamp: expect.any(String),
        },
      ].sort((a, b) => a.taskId.localeCompare(b.taskId)),
    );
    expect(bodies.find((r) => r.body.taskId === altered.taskId)?.body.foundSha256).not.toBe(altered.sha256);
    for (const r of bodies) {
      const { t, v1 } = parseSignature(r.headers['depot-signature']);
      expect(v1).toEqual([expectedMac(SECRET, t, r.raw)]);
    }

    // /metrics: the catalog's figures, as Prometheus' own checker reads them.
    const storage = new StorageAPI(config, defaultDriverFactory(), silentLogger());
    let http: DepotHttpServer | undefined;
    try {
      http = await startHttpServer(config, storage, silentLogger(), { checkIntervalMs: 3_600_000 });
      const text = await (await fetch(`${http.url}/metrics`)).text();
      for (const line of [
        'depot_catalog_up 1',
        'depot_catalog_archives{driver="local"} 6',
        `depot_catalog_archive_bytes{driver="local"} ${stored.reduce((n, s) => n + s.size, 0)}`,
        'depot_catalog_verified_archives{driver="local",status="ok"} 4',
        'depot_catalog_verified_archives{driver="local",status="corrupt"} 1',
        'depot_catalog_verified_archives{driver="local",status="missing"} 1',
        'depot_catalog_verifications_total{driver="local",outcome="ok"} 14',
        'depot_catalog_verifications_total{driver="local",outcome="corrupt"} 2',
        'depot_catalog_verifications_total{driver="local",outcome="missing"} 2',
        'depot_catalog_deletions_total{driver="local",reason="erase"} 0',
      ]) {
        expect(text).toContain(`${line}\n`);
      }
      expect(await promtool(text)).toEqual({ code: 0, output: '' });
    } finally {
      await http?.close();
      await storage.close();
    }
  });

  test('the byte rate holds: the archives read at 32 KiB/s take as long as their bytes need at that rate', async () => {
    await withCatalog(async (catalog) => {
      const storage = new StorageAPI(config, defaultDriverFactory(), silentLogger());
      try {
        // The three verified longest ago come next; the missing one among them has no bytes to read.
        const next = await catalog.verificationDue(new Date(), 3);
        const bytes = next.reduce((n, p) => n + (p.entry.verifyStatus === 'missing' ? 0 : p.entry.size), 0);
        expect(bytes).toBeGreaterThan(64 * KiB);
        const rate = 32 * KiB;
        const started = Date.now();
        const report = await verifyArchives(storage, catalog, { dueBefore: new Date(), limit: 3, bytesPerSecond: rate, actor: 'cli', logger: silentLogger() });
        const elapsed = Date.now() - started;
        expect(report.verified).toBe(3);
        // Every chunk waits for its bytes' time, the first included: never faster than the rate, and not much slower.
        expect(elapsed).toBeGreaterThanOrEqual((bytes / rate) * 1000 - 50);
        expect(elapsed).toBeLessThan((bytes / rate) * 1000 + 1500);
      } finally {
        await storage.close();
      }
    });
  });
});

function promtool(exposition: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(exposition);
  });
}
