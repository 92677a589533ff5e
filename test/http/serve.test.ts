import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ArchivingManager } from '../../src/archiving/manager';
import type { StoreResult } from '../../src/contract';
import { DepotHttpServer, startHttpServer } from '../../src/http/server';
import { StorageAPI } from '../../src/storage/api';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { silentLogger } from '../../src/support/logging';
import { cleanupAll, eventually, InProcessWorker, startInProcessWorker, TempDirs, testConfig } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * `depot serve` (CONTRACT §6): /health says whether Redis and every driver's
 * last connection check are fine; /metrics exposes the queue, the drivers and
 * what the workers did, in the Prometheus text format.
 */
jest.setTimeout(60_000);

const temp = new TempDirs();
const logger = silentLogger();
let redis: RedisServer;
let work: string;
let worker: InProcessWorker | undefined;
let manager: ArchivingManager | undefined;
const servers: Array<{ http: DepotHttpServer; storage: StorageAPI }> = [];

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make();
});

afterAll(async () => {
  await cleanupAll(
    () => Promise.allSettled(servers.map(async (s) => (await s.http.close(), await s.storage.close()))),
    () => manager?.close(),
    () => worker?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

async function serve(drivers: Record<string, unknown>): Promise<DepotHttpServer> {
  const config = testConfig({ redis: { url: redis.url }, defaultDriver: 'local', drivers, http: { port: 0 }, paths: { allowed: [work] } }, work);
  const storage = new StorageAPI(config, defaultDriverFactory(), logger);
  const http = await startHttpServer(config, storage, logger);
  servers.push({ http, storage });
  await http.health.settled();
  return http;
}

async function get(http: DepotHttpServer, route: string, method = 'GET'): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(`${http.url}${route}`, { method });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

/** The value of one sample line, e.g. `depot_workers{queue="depot"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('health: 200 when Redis and every driver are fine; 503 naming the driver whose check fails', async () => {
  const good = await serve({ local: { type: 'filesystem', root: path.join(work, 'good') } });
  const ok = await get(good, '/health');
  expect(ok.status).toBe(200);
  expect(JSON.parse(ok.text)).toMatchObject({ ok: true, redis: { ok: true }, drivers: [{ driver: 'local', ok: true }] });

  const brokenRoot = path.join(work, 'not-a-dir');
  await writeFile(brokenRoot, 'a file where a directory should be\n');
  const mixed = await serve({ local: { type: 'filesystem', root: path.join(work, 'good') }, broken: { type: 'filesystem', root: brokenRoot } });
  const bad = await get(mixed, '/health');
  expect(bad.status).toBe(503);
  const body = JSON.parse(bad.text) as { ok: boolean; drivers: Array<{ driver: string; ok: boolean; error?: { code: string } }> };
  expect(body.ok).toBe(false);
  expect(body.drivers.find((d) => d.driver === 'local')).toMatchObject({ ok: true });
  expect(body.drivers.find((d) => d.driver === 'broken')).toMatchObject({ ok: false, error: { code: expect.any(String) } });

  const metrics = await get(mixed, '/metrics');
  expect(sample(metrics.text, 'depot_driver_up{driver="local"}')).toBe(1);
  expect(sample(metrics.text, 'depot_driver_up{driver="broken"}')).toBe(0);
  expect(sample(metrics.text, 'depot_driver_free_bytes{driver="local"}')).toBeGreaterThan(0);
});

test('metrics: queue counts, workers, and the stores the workers finished, with bytes and durations', async () => {
  const config = testConfig({ redis: { url: redis.url }, queue: { attempts: 1 }, drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } }, paths: { allowed: [work] } }, work);
  worker = await startInProcessWorker(config);
  const http = await serve({ local: { type: 'filesystem', root: path.join(work, 'archive') } });
  manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 } });
  const file = path.join(work, 'exam.zip');
  await writeFile(file, 'exam records for the metrics');
  const stored = (await (await manager.store({ path: file }, { name: 'exam.zip' })).result(30_000)) as StoreResult;
  await expect((await manager.store({ path: path.join(work, 'missing.zip') }, { name: 'missing.zip' })).result(30_000)).rejects.toMatchObject({ code: 'source_unavailable' });

  const text = await eventually(
    async () => {
      const m = await get(http, '/metrics');
      return sample(m.text, 'depot_tasks_total{operation="store",outcome="failed"}') === 1 ? m.text : undefined;
    },
    10_000,
    'the finished stores in /metrics',
  );
  expect(sample(text, 'depot_tasks_total{operation="store",outcome="completed"}')).toBe(1);
  expect(sample(text, 'depot_bytes_stored_total{driver="local"}')).toBe(stored.size);
  expect(sample(text, 'depot_task_duration_seconds_count{operation="store"}')).toBe(2);
  expect(sample(text, 'depot_task_duration_seconds_bucket{operation="store",le="+Inf"}')).toBe(2);
  expect(sample(text, 'depot_queue_jobs{queue="depot",state="completed"}')).toBeGreaterThanOrEqual(1);
  expect(sample(text, 'depot_queue_jobs{queue="depot",state="failed"}')).toBeGreaterThanOrEqual(1);
  expect(sample(text, 'depot_workers{queue="depot"}')).toBe(1);
  expect(sample(text, 'depot_failovers_total')).toBe(0);
  expect(text).toContain('# TYPE depot_tasks_total counter');
  // Every sample line is `name{labels} number`.
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? (-?[0-9.e+]+|NaN)$/);

  const page = await get(http, '/metrics');
  expect(page.status).toBe(200);
  expect(page.type).toContain('text/plain; version=0.0.4');
  expect((await get(http, '/nothing-here')).status).toBe(404);
  expect((await get(http, '/metrics', 'POST')).status).toBe(405);
});
