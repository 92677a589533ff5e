import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { ArchivingManager } from '../../src/archiving/manager';
import type { StoreResult } from '../../src/contract';
import { DepotHttpServer, startHttpServer } from '../../src/http/server';
import { StorageAPI } from '../../src/storage/api';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { silentLogger } from '../../src/support/logging';
import { cleanupAll, eventually, InProcessWorker, startInProcessWorker, startTestRedis, TempDirs, TestRedis, testConfig } from '../helpers/queue-harness';

/**
 * `depot serve` (CONTRACT §6): /health says whether Redis and every driver's
 * last connection check are fine; /metrics exposes the queue, the drivers and
 * what the workers did, in the Prometheus text format. On a redis-server, and
 * on a Redis Cluster (test/redis/cluster-serve.test.ts runs this file there).
 */
jest.setTimeout(60_000);

const temp = new TempDirs();
const logger = silentLogger();
let redis: TestRedis;
let work: string;
let worker: InProcessWorker | undefined;
let manager: ArchivingManager | undefined;
const servers: Array<{ http: DepotHttpServer; storage: StorageAPI }> = [];

beforeAll(async () => {
  redis = await startTestRedis();
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

async function serve(drivers: Record<string, unknown>, tokens: string[] = [], auth?: { user: string; password: string }): Promise<DepotHttpServer> {
  // Tokens are secrets: only from a file (or ${ENV}), as an operator must give them.
  const tokensFile = path.join(work, `tokens-${servers.length}.txt`);
  await writeFile(tokensFile, tokens.join('\n') + '\n');
  const passwordFile = path.join(work, `password-${servers.length}.txt`);
  if (auth) await writeFile(passwordFile, `${auth.password}\n`);
  const httpSettings = { port: 0, ...(tokens.length ? { tokensFile } : {}), ...(auth ? { auth: { user: auth.user, passwordFile } } : {}) };
  const config = testConfig(
    { redis: redis.config, queue: { prefix: redis.prefix }, defaultDriver: 'local', drivers, http: httpSettings, paths: { allowed: [work] } },
    work,
  );
  const storage = new StorageAPI(config, defaultDriverFactory(), logger);
  const http = await startHttpServer(config, storage, logger);
  servers.push({ http, storage });
  await http.health.settled();
  return http;
}

async function get(
  http: DepotHttpServer,
  route: string,
  method = 'GET',
  init: RequestInit = {},
): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(`${http.url}${route}`, { method, ...init });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

/** One raw HTTP/1.1 request line (fetch refuses malformed targets); resolves to the raw answer. */
function rawRequest(http: DepotHttpServer, requestLine: string): Promise<string> {
  const { hostname, port } = new URL(http.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(`${requestLine}\r\nHost: depot\r\nConnection: close\r\n\r\n`));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
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
  const config = testConfig(
    {
      redis: redis.config,
      queue: { prefix: redis.prefix, attempts: 1 },
      drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
      paths: { allowed: [work] },
    },
    work,
  );
  worker = await startInProcessWorker(config);
  const http = await serve({ local: { type: 'filesystem', root: path.join(work, 'archive') } });
  manager = new ArchivingManager({ redis: redis.target, prefix: redis.prefix, jobOptions: { attempts: 1 } });
  const file = path.join(work, 'exam.zip');
  await writeFile(file, 'exam records for the metrics');
  const stored = await (await manager.store({ path: file }, { name: 'exam.zip' })).result(30_000);
  await expect((await manager.store({ path: path.join(work, 'missing.zip') }, { name: 'missing.zip' })).result(30_000)).rejects.toMatchObject({
    code: 'source_unavailable',
  });

  const text = await eventually(
    async () => {
      const m = await get(http, '/metrics');
      return sample(m.text, 'depot_tasks_total{operation="store",outcome="failed"}') === 1 ? m.text : undefined;
    },
    10_000,
    'the finished stores in /metrics',
  );
  expect(sample(text, 'depot_tasks_total{operation="store",outcome="completed"}')).toBe(1);
  expect(sample(text, 'depot_stored_bytes_total{driver="local"}')).toBe(stored.size);
  expect(sample(text, 'depot_task_duration_seconds_count{operation="store"}')).toBe(2);
  expect(sample(text, 'depot_task_duration_seconds_bucket{operation="store",le="+Inf"}')).toBe(2);
  expect(sample(text, 'depot_queue_jobs{queue="depot",state="completed"}')).toBeGreaterThanOrEqual(1);
  expect(sample(text, 'depot_queue_jobs{queue="depot",state="failed"}')).toBeGreaterThanOrEqual(1);
  expect(sample(text, 'depot_workers{queue="depot"}')).toBe(1);
  // Failovers are labelled with from and to (issue 10): none happened, so no hop counts.
  expect(text).toContain('# TYPE depot_failovers_total counter');
  expect(text.split('\n').filter((l) => l.startsWith('depot_failovers_total'))).toEqual([]);
  expect(text).toContain('# TYPE depot_tasks_total counter');
  // Every sample line is `name{labels} number`.
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? (-?[0-9.e+]+|NaN)$/);

  const page = await get(http, '/metrics');
  expect(page.status).toBe(200);
  expect(page.type).toContain('text/plain; version=0.0.4');
  expect((await get(http, '/nothing-here')).status).toBe(404);
  expect((await get(http, '/metrics', 'POST')).status).toBe(405);
});

test('task API: a bearer token queues a task (202) and GET reports it; bad input is 400 naming the field; no valid token is 401', async () => {
  const TOKEN = 'api-token-0123456789abcdef';
  if (!worker) {
    const config = testConfig(
      {
        redis: redis.config,
        queue: { prefix: redis.prefix },
        drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
        paths: { allowed: [work] },
      },
      work,
    );
    worker = await startInProcessWorker(config);
  }
  const http = await serve({ local: { type: 'filesystem', root: path.join(work, 'archive') } }, [TOKEN]);
  const post = (body: unknown, token = TOKEN) =>
    get(http, '/v1/tasks', 'POST', {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const bytes = Buffer.from('archive sent over HTTP');

  expect((await get(http, '/v1/tasks', 'POST', { body: '{}' })).status).toBe(401);
  expect((await post({ operation: 'check', task: { driver: 'local' } }, 'wrong-token-0123456789abcdef')).status).toBe(401);

  const queued = await post({
    operation: 'store',
    task: { name: 'http.zip', source: { base64: bytes.toString('base64') }, metadata: { courseId: '7' } },
    options: { priority: 1 },
  });
  expect(queued.status).toBe(202);
  const { taskId, jobId } = JSON.parse(queued.text) as { taskId: string; jobId: string };
  expect(jobId).toBe(`task-${taskId}`);
  const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
  const done = await eventually(
    async () => {
      const report = JSON.parse((await get(http, `/v1/tasks/${taskId}`, 'GET', auth)).text) as { state: string; result?: StoreResult };
      return report.state === 'completed' ? report : undefined;
    },
    20_000,
    'the HTTP task to complete',
  );
  expect(done).toMatchObject({
    ok: true,
    taskId,
    operation: 'store',
    result: { name: 'http.zip', size: bytes.length, metadata: { courseId: '7' }, ref: { driver: 'local' } },
  });
  expect((await get(http, `/v1/tasks/${taskId}`)).status).toBe(401);

  const invalid = await post({ operation: 'store', task: { name: '../escape', source: { base64: '' } } });
  expect(invalid.status).toBe(400);
  expect(JSON.parse(invalid.text)).toMatchObject({ ok: false, error: { code: 'invalid_task', field: 'name' } });
  expect(JSON.parse((await post({ operation: 'archive', task: {} })).text)).toMatchObject({ error: { field: 'operation' } });
  expect(JSON.parse((await post({ operation: 'check', task: { driver: 'local' }, options: { attempts: 99 } })).text)).toMatchObject({
    error: { field: 'options' },
  });
  expect((await post('not json')).status).toBe(400);
  // Paths over HTTP only inside paths.allowed (the worker checks again, symlinks resolved).
  const outside = await post({ operation: 'store', task: { name: 'secret.zip', source: { path: '/etc/passwd' } } });
  expect(outside.status).toBe(400);
  expect(JSON.parse(outside.text)).toMatchObject({ error: { code: 'invalid_task', field: 'source.path' } });
  const sneaky = await post({
    operation: 'retrieve',
    task: { ref: { driver: 'local', key: '2026/11/27/01a2b3c4-0000-7000-8000-000000000001/x.zip' }, target: { path: path.join(work, '..', 'escape.zip') } },
  });
  expect(JSON.parse(sneaky.text)).toMatchObject({ error: { field: 'target.path' } });
  // Request targets that are not URLs, or bad escapes, are answered, and the server stays up.
  expect((await rawRequest(http, 'GET // HTTP/1.1')).startsWith('HTTP/1.1 400')).toBe(true);
  expect((await get(http, '/v1/tasks/%E0%A4%A', 'GET', auth)).status).toBe(404);
  expect((await get(http, '/health')).status).toBe(200);
  expect((await post({ operation: 'check', task: { driver: 'local' }, padding: 'x'.repeat(2 * 1024 * 1024) })).status).toBe(413);
  // Also when the size is not declared up front (a chunked body): the answer still arrives.
  const chunked = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < 40; i++) controller.enqueue(new Uint8Array(64 * 1024).fill(0x20));
      controller.close();
    },
  });
  const streamed = await fetch(`${http.url}/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}` },
    body: chunked,
    duplex: 'half',
  });
  expect(streamed.status).toBe(413);
  expect((await get(http, '/v1/tasks/01a2b3c4-0000-7000-8000-00000000dead', 'GET', auth)).status).toBe(404);
  expect((await get(http, '/v1/tasks', 'PUT', auth)).status).toBe(405);

  // Without tokens in the config the API lets nobody in.
  const closed = await serve({ local: { type: 'filesystem', root: path.join(work, 'archive') } });
  expect((await get(closed, '/v1/tasks', 'POST', { headers: { authorization: `Bearer ${TOKEN}` }, body: '{}' })).status).toBe(401);
});

test('task API: a taskId that exists is 409 with its state, never a silent 202; taskIds named like BullMQ keys are tasks like any', async () => {
  const TOKEN = 'api-token-409-0123456789abcdef';
  if (!worker) {
    const config = testConfig(
      {
        redis: redis.config,
        queue: { prefix: redis.prefix },
        drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
        paths: { allowed: [work] },
      },
      work,
    );
    worker = await startInProcessWorker(config);
  }
  const http = await serve({ local: { type: 'filesystem', root: path.join(work, 'archive') } }, [TOKEN]);
  const auth = { authorization: `Bearer ${TOKEN}` };
  const post = (body: unknown) => get(http, '/v1/tasks', 'POST', { headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const status = async (taskId: string) => get(http, `/v1/tasks/${taskId}`, 'GET', { headers: auth });
  const store = (taskId: string, text: string) => ({
    operation: 'store',
    task: { taskId, name: 'twice.txt', source: { base64: Buffer.from(text).toString('base64') } },
  });
  const completed = (taskId: string) =>
    eventually(
      async () => {
        const report = JSON.parse((await status(taskId)).text) as { state?: string };
        return report.state === 'completed' ? report : undefined;
      },
      20_000,
      `task ${taskId} to complete`,
    );

  expect((await post(store('posted-twice', 'first'))).status).toBe(202);
  const first = await completed('posted-twice');
  for (const again of [
    store('posted-twice', 'second'),
    store('posted-twice', 'first'),
    { operation: 'check', task: { taskId: 'posted-twice', driver: 'local' } },
  ]) {
    const conflict = await post(again);
    expect(conflict.status).toBe(409);
    expect(JSON.parse(conflict.text)).toEqual({
      ok: false,
      error: { code: 'conflict', field: 'taskId', message: expect.stringMatching(/^taskId: /) },
      task: first,
    });
  }
  // Still the first task's result.
  expect(JSON.parse((await status('posted-twice')).text)).toEqual(first);

  // A waiting task is reported with its state too.
  const delayed = { ...store('posted-while-waiting', 'one'), options: { delay: 60_000 } };
  expect((await post(delayed)).status).toBe(202);
  const conflict = await post(store('posted-while-waiting', 'two'));
  expect(conflict.status).toBe(409);
  expect(JSON.parse(conflict.text)).toMatchObject({ error: { code: 'conflict' }, task: { taskId: 'posted-while-waiting', state: 'delayed' } });

  // taskIds that are BullMQ key names: queued, stored, reported; the queue goes on.
  for (const taskId of ['meta', 'wait', 'id']) {
    const queued = await post(store(taskId, `task ${taskId}`));
    expect({ taskId, status: queued.status }).toEqual({ taskId, status: 202 });
    expect(await completed(taskId)).toMatchObject({ taskId, jobId: `task-${taskId}`, result: { taskId } });
  }
  expect((await post(store('after-meta', 'after'))).status).toBe(202);
  await completed('after-meta');
  // What cannot be a taskId is no task (and reads no other key of the queue).
  for (const notATaskId of ['a:b', 'task-5:lock', '..']) expect((await status(encodeURIComponent(notATaskId))).status).toBe(404);
});

test('bull-board at /queues: behind http.auth basic credentials, off without them', async () => {
  const auth = { user: 'operator', password: 'dashboard-password-123' };
  const http = await serve({ local: { type: 'filesystem', root: path.join(work, 'archive') } }, [], auth);
  const basic = (user: string, password: string) => ({ headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } });

  const anonymous = await get(http, '/queues');
  expect(anonymous.status).toBe(401);
  expect((await get(http, '/queues', 'GET', basic('operator', 'wrong'))).status).toBe(401);
  const page = await get(http, '/queues', 'GET', basic(auth.user, auth.password));
  expect(page.status).toBe(200);
  expect(page.type).toContain('text/html');
  // Its assets are addressed relative to <base href> under /queues, where this server hands them to the board.
  const base = /<base href="([^"]+)"/.exec(page.text)?.[1] ?? '';
  const asset = /src="(static\/[^"]+)"/.exec(page.text)?.[1];
  expect(base.replace(/\/$/, '')).toBe('/queues');
  expect(asset).toBeDefined();
  expect((await get(http, `/queues/${asset ?? ''}`, 'GET', basic(auth.user, auth.password))).status).toBe(200);
  // The board's API lists both queues.
  const api = await get(http, '/queues/api/queues', 'GET', basic(auth.user, auth.password));
  expect(api.status).toBe(200);
  const names = (JSON.parse(api.text) as { queues: Array<{ name: string }> }).queues.map((q) => q.name).sort();
  expect(names).toEqual(['depot', 'depot-callbacks']);
  // Read-only: no job can be added (or edited) through the board.
  const add = await get(http, '/queues/api/queues/depot/add', 'POST', {
    headers: { ...basic(auth.user, auth.password).headers, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'store', data: {} }),
  });
  expect(add.status).toBeGreaterThanOrEqual(400);

  const off = await serve({ local: { type: 'filesystem', root: path.join(work, 'archive') } });
  expect((await get(off, '/queues', 'GET', basic(auth.user, auth.password))).status).toBe(404);
});
