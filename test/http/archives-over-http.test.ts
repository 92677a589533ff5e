import { createHash, randomBytes } from 'node:crypto';
import { chmod, open, readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Spool } from '../../src/http/spool';
import { spoolUse } from '../../src/http/upload-api';
import { jobIdFor } from '../../src/queue/names';
import { cleanupAll, eventually, spawnDepotCommand, spawnWorkerProcess, TempDirs, WorkerProcess, writeConfigFile } from '../helpers/queue-harness';
import { freePort, RedisServer, startRedis } from '../helpers/redis-server';

/**
 * CONTRACT §9, archives over HTTP (issue 13), against a real `depot serve`
 * and a real `depot worker` (each its own process) on a private Redis:
 * multipart uploads streamed into the spool, downloads re-verified while
 * sent, `GET /v1/drivers`, and named tokens scoped to one Moodle site.
 */
jest.setTimeout(300_000);

const ADMIN = 'admin-token-0123456789abcdef';
const SITE_A = 'site-a-token-0123456789abcdef';
const SITE_B = 'site-b-token-0123456789abcdef';
const READER = 'reader-token-0123456789abcdef';
const SMALL_LIMIT = 4 * 1024 * 1024;

const temp = new TempDirs();
let redis: RedisServer;
let work: string;
let spoolDir: string;
let serve: WorkerProcess;
let small: WorkerProcess;
let worker: WorkerProcess;
let base: string;
let smallBase: string;
let queue: Queue;

const TOKEN_ENV = { ADMIN_TOKEN: ADMIN, A_TOKEN: SITE_A, R_TOKEN: READER };

async function startServe(configFile: string, port: number): Promise<WorkerProcess> {
  const process = spawnDepotCommand(['serve'], configFile, TOKEN_ENV);
  await eventually(
    async () => {
      if (process.child.exitCode !== null) throw new Error(`depot serve exited: ${process.output()}`);
      return fetch(`http://127.0.0.1:${port}/health`).then(
        () => true,
        () => undefined,
      );
    },
    30_000,
    'depot serve to listen',
  );
  return process;
}

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make('depot-archives-http-');
  spoolDir = path.join(work, 'spool');
  await writeFile(path.join(work, 'site-b.token'), `${SITE_B}\n`);
  const port = await freePort();
  const config = {
    redis: { url: redis.url },
    defaultDriver: 'local',
    drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') }, other: { type: 'filesystem', root: path.join(work, 'other') } },
    catalog: { url: `sqlite:${path.join(work, 'catalog.sqlite')}` },
    queue: { backoffMs: 100 },
    http: {
      port,
      spoolDir: './spool',
      tokens: [
        '${ADMIN_TOKEN}',
        { name: 'site-a', token: '${A_TOKEN}', scope: { metadata: { siteId: 'moodle-a' }, drivers: ['local'] } },
        { name: 'site-b', tokenFile: 'site-b.token', scope: { metadata: { siteId: 'moodle-b' } } },
        { name: 'reader', token: '${R_TOKEN}', scope: { operations: ['list'] } },
      ],
    },
  };
  const configFile = await writeConfigFile(work, config);
  const smallPort = await freePort();
  const smallConfig = await writeConfigFile(await temp.make('depot-archives-http-small-'), {
    ...config,
    http: { ...config.http, port: smallPort, spoolDir, maxUploadBytes: SMALL_LIMIT, tokens: config.http.tokens.slice(0, 1) },
  });
  worker = spawnWorkerProcess(configFile, TOKEN_ENV);
  serve = await startServe(configFile, port);
  small = await startServe(smallConfig, smallPort);
  base = `http://127.0.0.1:${port}`;
  smallBase = `http://127.0.0.1:${smallPort}`;
  queue = new Queue('depot', { connection: { host: '127.0.0.1', port: redis.port } });
});

afterAll(async () => {
  await cleanupAll(
    () => queue?.close(),
    () => serve?.kill(),
    () => small?.kill(),
    () => worker?.kill(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

interface Answer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string; field?: string } };
}

/** A multipart form: part `task`, then part `file` with `file`'s chunks, then (unless `unclosed`) the closing boundary. */
async function* form(task: unknown, file: AsyncIterable<Buffer> | Buffer, boundary: string, unclosed = false): AsyncGenerator<Buffer> {
  yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="task"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(task)}\r\n`);
  yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  if (Buffer.isBuffer(file)) yield file;
  else for await (const chunk of file) yield chunk;
  yield Buffer.from(unclosed ? '\r\n' : `\r\n--${boundary}--\r\n`);
}

/** POSTs a streamed multipart body (chunked) and reads the answer. */
function upload(token: string, task: unknown, file: AsyncIterable<Buffer> | Buffer, options: { at?: string; unclosed?: boolean } = {}): Promise<Answer> {
  const boundary = `----depot${randomBytes(8).toString('hex')}`;
  return new Promise((resolve, reject) => {
    const request = http.request(`${options.at ?? base}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    request.on('response', (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] }));
      response.on('error', reject);
    });
    request.on('error', reject);
    void (async () => {
      try {
        for await (const chunk of form(task, file, boundary, options.unclosed)) {
          if (!request.write(chunk)) await new Promise((r) => request.once('drain', r));
        }
        request.end();
      } catch (error) {
        request.destroy(error as Error);
      }
    })();
  });
}

async function call(token: string | undefined, route: string, init: RequestInit = {}): Promise<Answer & { headers: Headers }> {
  const response = await fetch(`${base}${route}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) } });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Answer['body']) : {} };
}

async function finished(token: string, taskId: string): Promise<Record<string, unknown>> {
  return eventually(
    async () => {
      if (worker.child.exitCode !== null) throw new Error(`depot worker exited: ${worker.output()}`);
      const { body } = await call(token, `/v1/tasks/${taskId}`);
      return body.state === 'completed' || body.state === 'failed' ? body : undefined;
    },
    120_000,
    `task ${taskId} to finish`,
  );
}

async function spoolEntries(): Promise<string[]> {
  const top = (await readdir(spoolDir).catch(() => [] as string[])).filter((e) => e !== 'incoming');
  const incoming = await readdir(path.join(spoolDir, 'incoming')).catch(() => [] as string[]);
  return [...top, ...incoming.map((e) => `incoming/${e}`)];
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Stores `bytes` through a multipart upload with `token` and waits for the result. */
async function store(token: string, bytes: Buffer, task: Record<string, unknown> = {}): Promise<{ driver: string; key: string; taskId: string }> {
  const answer = await upload(token, { operation: 'store', task: { name: 'quiz.mbz', ...task } }, bytes);
  expect(answer.status).toBe(202);
  const done = await finished(token, answer.body.taskId as string);
  expect(done.state).toBe('completed');
  const ref = (done.result as { ref: { driver: string; key: string } }).ref;
  return { ...ref, taskId: answer.body.taskId as string };
}

test('a multipart store is queued with the received sha256 and size, stored, and its spool file removed once the task ended', async () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 17);
  const answer = await upload(
    ADMIN,
    { operation: 'store', task: { name: 'course-12.mbz', sha256: sha256(bytes), size: bytes.length, metadata: [] }, options: [] },
    bytes,
  );
  expect(answer.status).toBe(202);
  expect(answer.body).toMatchObject({ ok: true, size: bytes.length, sha256: sha256(bytes) });
  expect(answer.body.jobId).toBe(jobIdFor(answer.body.taskId as string));
  const done = await finished(ADMIN, answer.body.taskId as string);
  expect(done).toMatchObject({ state: 'completed', result: { sha256: sha256(bytes), size: bytes.length, name: 'course-12.mbz', metadata: {} } });
  const job = await queue.getJob(answer.body.jobId as string);
  expect((job?.data as { source: { spool: string } }).source.spool).toMatch(new RegExp(`^[0-9a-f]{64}-${answer.body.taskId as string}$`));
  await eventually(async () => ((await spoolEntries()).length === 0 ? true : undefined), 10_000, 'the spool to be empty');
});

test('a sha256 or size that does not match the received bytes is 400 integrity: nothing queued, nothing spooled', async () => {
  const bytes = randomBytes(100_000);
  const taskId = `wrong-sha-${Date.now()}`;
  const wrong = await upload(ADMIN, { operation: 'store', task: { taskId, name: 'a.zip', sha256: sha256(Buffer.from('other')) } }, bytes);
  expect(wrong.status).toBe(400);
  expect(wrong.body.error).toMatchObject({ code: 'integrity', field: 'sha256' });
  const short = await upload(ADMIN, { operation: 'store', task: { taskId, name: 'a.zip', size: bytes.length + 1 } }, bytes);
  expect(short.body.error).toMatchObject({ code: 'integrity', field: 'size' });
  expect(await queue.getJob(jobIdFor(taskId))).toBeUndefined();
  expect(await spoolEntries()).toEqual([]);
});

test('a body cut off half-way, or without the closing boundary, queues nothing and leaves no spool file', async () => {
  const taskId = `cut-off-${Date.now()}`;
  const { port } = new URL(base);
  const boundary = 'cutoffboundary';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="task"\r\n\r\n${JSON.stringify({ operation: 'store', task: { taskId, name: 'a.zip' } })}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"\r\n\r\n`,
  );
  const socket = connect(Number(port), '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(
    `POST /v1/tasks HTTP/1.1\r\nHost: depot\r\nAuthorization: Bearer ${ADMIN}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${head.length + 2_000_000}\r\n\r\n`,
  );
  socket.write(head);
  socket.write(randomBytes(1_000_000));
  // The half that arrived is in the spool's incoming/ while the upload runs.
  await eventually(async () => ((await spoolEntries()).length ? true : undefined), 10_000, 'the upload to arrive');
  socket.destroy();
  await eventually(async () => ((await spoolEntries()).length === 0 ? true : undefined), 10_000, 'the spool file to go');
  expect(await queue.getJob(jobIdFor(taskId))).toBeUndefined();

  const unclosed = await upload(ADMIN, { operation: 'store', task: { taskId, name: 'a.zip' } }, randomBytes(10_000), { unclosed: true });
  expect(unclosed.status).toBe(400);
  expect(unclosed.body.error?.code).toBe('invalid_task');
  expect(await queue.getJob(jobIdFor(taskId))).toBeUndefined();
  expect(await spoolEntries()).toEqual([]);
});

test('an upload over http.maxUploadBytes is 413, announced or streamed: nothing queued', async () => {
  const taskId = `too-large-${Date.now()}`;
  async function* chunks() {
    for (let i = 0; i < 5; i++) yield randomBytes(1024 * 1024);
  }
  const streamed = await upload(ADMIN, { operation: 'store', task: { taskId, name: 'a.zip' } }, chunks(), { at: smallBase }).catch((error: Error) => error);
  // The answer may come before the client has sent everything; a client that is cut off while sending sees a reset.
  if ('status' in streamed) {
    expect(streamed.status).toBe(413);
    expect(streamed.body.error?.code).toBe('invalid_task');
  }
  const announced = await fetch(`${smallBase}/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(SMALL_LIMIT * 2) },
    body: Buffer.alloc(SMALL_LIMIT * 2),
  }).catch((error: Error) => error);
  // (fetch's errors come from another realm: told apart by what they are not)
  if (announced instanceof Response) expect(announced.status).toBe(413);
  expect(await queue.getJob(jobIdFor(taskId))).toBeUndefined();
  await eventually(async () => ((await spoolEntries()).length === 0 ? true : undefined), 10_000, 'the spool to be empty');
});

test('a JSON task cannot name a spool file: source.spool is refused', async () => {
  const answer = await call(ADMIN, '/v1/tasks', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ operation: 'store', task: { name: 'a.zip', source: { spool: `${'a'.repeat(64)}-x` } } }),
  });
  expect(answer.status).toBe(400);
  expect(answer.body.error).toMatchObject({ code: 'invalid_task', field: 'source.spool' });
});

test('a download is streamed with Content-Length, Repr-Digest and X-Depot-Sha256; Range resumes it and the pieces match the digest', async () => {
  const bytes = randomBytes(2 * 1024 * 1024 + 5);
  const ref = await store(ADMIN, bytes);
  const route = `/v1/archives/${ref.driver}/${ref.key}/content`;
  const full = await fetch(`${base}${route}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  expect(full.status).toBe(200);
  expect(full.headers.get('content-length')).toBe(String(bytes.length));
  expect(full.headers.get('x-depot-sha256')).toBe(sha256(bytes));
  const digest = createHash('sha256').update(bytes).digest('base64');
  expect(full.headers.get('repr-digest')).toBe(`sha-256=:${digest}:`);
  expect(Buffer.from(await full.arrayBuffer()).equals(bytes)).toBe(true);

  const first = await fetch(`${base}${route}`, { headers: { authorization: `Bearer ${ADMIN}`, range: 'bytes=0-999999' } });
  expect(first.status).toBe(206);
  expect(first.headers.get('content-range')).toBe(`bytes 0-999999/${bytes.length}`);
  const rest = await fetch(`${base}${route}`, { headers: { authorization: `Bearer ${ADMIN}`, range: 'bytes=1000000-' } });
  expect(rest.status).toBe(206);
  const joined = Buffer.concat([Buffer.from(await first.arrayBuffer()), Buffer.from(await rest.arrayBuffer())]);
  expect(`sha-256=:${createHash('sha256').update(joined).digest('base64')}:`).toBe(rest.headers.get('repr-digest'));

  const beyond = await call(ADMIN, route, { headers: { range: `bytes=${bytes.length}-` } });
  expect(beyond.status).toBe(416);
  expect(beyond.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
  const unknown = await call(ADMIN, `/v1/archives/local/2020/01/01/nothing/x.zip/content`);
  expect(unknown.status).toBe(404);
  expect(unknown.body.error?.code).toBe('not_found');
  expect((await call(undefined, route)).status).toBe(401);
});

test('an archive corrupted on disk after storing is never delivered complete: the download is aborted', async () => {
  const bytes = randomBytes(3 * 1024 * 1024);
  const ref = await store(ADMIN, bytes);
  const file = path.join(work, 'archive', ref.key);
  await chmod(file, 0o644);
  const handle = await open(file, 'r+');
  await handle.write(Buffer.from([bytes[bytes.length - 10] ^ 0xff]), 0, 1, bytes.length - 10);
  await handle.close();
  const outcome = await new Promise<{ status: number; received: number; complete: boolean }>((resolve) => {
    const request = http.get(`${base}/v1/archives/${ref.driver}/${ref.key}/content`, { headers: { authorization: `Bearer ${ADMIN}` } }, (response) => {
      let received = 0;
      response.on('data', (chunk: Buffer) => (received += chunk.length));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, received, complete: response.complete }));
      response.on('error', () => resolve({ status: response.statusCode ?? 0, received, complete: false }));
      response.on('aborted', () => resolve({ status: response.statusCode ?? 0, received, complete: false }));
    });
    request.on('error', () => resolve({ status: 0, received: 0, complete: false }));
  });
  expect(outcome.complete).toBe(false);
  expect(outcome.received).toBeLessThan(bytes.length);
  await eventually(() => (/"code":"integrity"/.test(serve.output()) ? true : undefined), 5_000, 'the integrity error in the log');
});

test('GET /v1/drivers: each driver with type, default, health, last check and space; a scoped token sees its drivers only', async () => {
  const all = await eventually(
    async () => {
      const { body } = await call(ADMIN, '/v1/drivers');
      const list = body as unknown as Array<Record<string, unknown>>;
      return list.every((d) => d.lastCheck !== null) ? list : undefined;
    },
    30_000,
    'the first checks',
  );
  expect(all.map((d) => d.name).sort()).toEqual(['local', 'other']);
  const local = all.find((d) => d.name === 'local');
  expect(local).toMatchObject({ type: 'filesystem', default: true, healthy: true, lastCheck: { ok: true } });
  expect(typeof (local?.lastCheck as { at: string }).at).toBe('string');
  expect(local?.space).toEqual(expect.objectContaining({ freeBytes: expect.any(Number) }));
  const scoped = (await call(SITE_A, '/v1/drivers')).body as unknown as Array<{ name: string }>;
  expect(scoped.map((d) => d.name)).toEqual(['local']);
  expect((await call(undefined, '/v1/drivers')).status).toBe(401);
});

test('scoped tokens: a site stores with its siteId forced, and never lists, downloads, retrieves, deletes or sees another site’s archives and tasks', async () => {
  const bytes = randomBytes(50_000);
  const a = await store(SITE_A, bytes, { metadata: { courseId: 12, userIds: [34, 35] } });
  const stored = await finished(SITE_A, a.taskId);
  expect((stored.result as { metadata: Record<string, unknown> }).metadata).toEqual({ courseId: '12', userIds: ['34', '35'], siteId: 'moodle-a' });

  // Forced, and never contradicted.
  const other = await upload(SITE_A, { operation: 'store', task: { name: 'x.zip', metadata: { siteId: 'moodle-b' } } }, bytes);
  expect(other.status).toBe(403);
  expect(other.body.error).toMatchObject({ code: 'auth', field: 'metadata.siteId' });
  // Drivers and operations.
  const elsewhere = await upload(SITE_A, { operation: 'store', task: { name: 'x.zip', driver: 'other' } }, bytes);
  expect(elsewhere.status).toBe(403);
  expect(elsewhere.body.error).toMatchObject({ code: 'auth', field: 'driver' });
  const reader = await upload(READER, { operation: 'store', task: { name: 'x.zip' } }, bytes);
  expect(reader.status).toBe(403);
  expect((await call(READER, '/v1/drivers')).status).toBe(200);

  // Site B sees nothing of it.
  const content = `/v1/archives/${a.driver}/${a.key}/content`;
  expect((await call(SITE_B, content)).status).toBe(404);
  const own = await fetch(`${base}${content}`, { headers: { authorization: `Bearer ${SITE_A}` } });
  expect(own.status).toBe(200);
  expect(Buffer.from(await own.arrayBuffer()).equals(bytes)).toBe(true);
  expect((await call(SITE_B, `/v1/tasks/${a.taskId}`)).status).toBe(404);
  for (const [operation, task] of [
    ['delete', { ref: { driver: a.driver, key: a.key } }],
    ['retrieve', { ref: { driver: a.driver, key: a.key }, target: { inline: true } }],
  ] as const) {
    const refused = await call(SITE_B, '/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ operation, task }),
    });
    expect(refused.status).toBe(404);
    expect(refused.body.error?.code).toBe('not_found');
  }
  await eventually(
    async () => {
      const mine = (await call(SITE_A, '/v1/archives')).body as { archives: Array<{ ref: { key: string } }> };
      return mine.archives.some((x) => x.ref.key === a.key) ? true : undefined;
    },
    10_000,
    'the catalog to list it',
  );
  const theirs = (await call(SITE_B, `/v1/archives?meta.siteId=moodle-a`)).body as { archives: unknown[] };
  expect(theirs.archives).toEqual([]);
  expect((await call(SITE_A, '/v1/archives?driver=other')).status).toBe(403);
  expect((await call(READER, '/v1/audit')).status).toBe(403);

  // The audit trail names the token; site B's view of it holds nothing of site A's.
  const audit = (await call(SITE_A, `/v1/audit?taskId=${a.taskId}`)).body as { entries: Array<{ operation: string; actor: string }> };
  expect(audit.entries).toEqual(expect.arrayContaining([expect.objectContaining({ operation: 'store', actor: 'http:site-a' })]));
  expect(((await call(SITE_B, `/v1/audit?taskId=${a.taskId}`)).body as { entries: unknown[] }).entries).toEqual([]);

  // Site A deletes its own.
  const deleted = await call(SITE_A, '/v1/tasks', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ operation: 'delete', task: { ref: { driver: a.driver, key: a.key } } }),
  });
  expect(deleted.status).toBe(202);
  expect(await finished(SITE_A, deleted.body.taskId as string)).toMatchObject({ state: 'completed' });
});

test('the spool sweep removes a leftover only when no job that may still run refers to it', async () => {
  const dir = await temp.make('depot-spool-sweep-');
  const spool = new Spool(dir);
  await spool.prepare();
  const orphan = spool.newId('orphan-task');
  const waiting = spool.newId('waiting-task');
  const done = spool.newId('done-task');
  const stranger = spool.newId('stranger-task');
  for (const id of [orphan, waiting, done]) await writeFile(path.join(dir, id), 'bytes');
  // Arriving on another host, no job yet: not a leftover. Written by a serve process of this host that no longer runs: a leftover.
  await writeFile(path.join(dir, 'incoming', `${stranger}@elsewhere.example@4242`), 'bytes');
  await writeFile(path.join(dir, 'incoming', `${orphan}@${(await import('node:os')).hostname()}@999999`), 'bytes');
  await writeFile(path.join(dir, 'unrelated.txt'), 'not ours');
  const task = (id: string, taskId: string) => ({ taskId, name: 'a.zip', source: { spool: id } });
  await queue.add('store', task(waiting, 'waiting-task'), { jobId: jobIdFor('waiting-task'), delay: 3_600_000 });
  const finishedJob = await queue.add('store', task(done, 'done-task'), { jobId: jobIdFor('done-task'), delay: 3_600_000 });
  await finishedJob.remove();
  const removed = await spool.sweep((id) => spoolUse(queue, id, 5_000));
  expect(removed.sort()).toEqual([orphan, orphan, done].sort());
  expect((await readdir(dir)).sort()).toEqual(['incoming', waiting, 'unrelated.txt'].sort());
  expect(await readdir(path.join(dir, 'incoming'))).toEqual([`${stranger}@elsewhere.example@4242`]);
  await queue.remove(jobIdFor('waiting-task'));
  expect(await spool.sweep((id) => spoolUse(queue, id, 5_000))).toEqual([waiting]);
  expect(await readFile(path.join(dir, 'unrelated.txt'), 'utf8')).toBe('not ours');
});

test('a 1 GiB upload is streamed: the peak RSS of depot serve stays flat', async () => {
  const size = Number(process.env.DEPOT_UPLOAD_TEST_MIB ?? 1024) * 1024 * 1024;
  const peak = async () => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${serve.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  const before = await peak();
  const hash = createHash('sha256');
  const chunk = randomBytes(1024 * 1024);
  async function* chunks() {
    for (let sent = 0; sent < size; sent += chunk.length) {
      chunk[0] = sent & 0xff;
      hash.update(chunk);
      yield Buffer.from(chunk);
    }
  }
  const started = Date.now();
  const answer = await upload(ADMIN, { operation: 'store', task: { name: 'big.bin' } }, chunks());
  const seconds = (Date.now() - started) / 1000;
  expect(answer.status).toBe(202);
  expect(answer.body).toMatchObject({ size, sha256: hash.digest('hex') });
  const after = await peak();
  console.log(
    `upload of ${size / 1024 ** 2} MiB: ${seconds.toFixed(1)} s; serve peak RSS ${(before / 1024 ** 2).toFixed(0)} MiB before, ${(after / 1024 ** 2).toFixed(0)} MiB after`,
  );
  // Measured: peak 226 MiB after 1 GiB (+73), 219 MiB after 2 GiB (+81): the same peak whatever the size (garbage of the
  // parser's chunk copies before a GC), never near the file's size.
  expect(after - before).toBeLessThan(128 * 1024 * 1024);
  expect(await finished(ADMIN, answer.body.taskId as string)).toMatchObject({ state: 'completed' });
});
