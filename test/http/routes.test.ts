import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import IORedis from 'ioredis';
import { DepotHttpServer, startHttpServer } from '../../src/http/server';
import { StorageAPI } from '../../src/storage/api';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { silentLogger } from '../../src/support/logging';
import { cleanupAll, TempDirs, testConfig } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * What `depot serve` answers to each kind of request (CONTRACT §6 and "depot
 * serve"), byte for byte: status, headers and body of every error reply, on
 * every route and around them (wrong methods, paths beside a route, bad
 * escapes, missing credentials). Written before the route table replaced the
 * hand-written dispatch (issue 11), so that it proves the table answers as
 * the dispatch did.
 */
jest.setTimeout(60_000);

const TOKEN = 'routes-token-0123456789abcdef';
const DASHBOARD = { user: 'operator', password: 'routes-dashboard-password' };
const BEARER = { authorization: `Bearer ${TOKEN}` };
const JSON_POST = { ...BEARER, 'content-type': 'application/json' };
const temp = new TempDirs();
const logger = silentLogger();
let redis: RedisServer;
let work: string;
const servers: Array<{ http: DepotHttpServer; storage: StorageAPI }> = [];
let api: DepotHttpServer;
/** A second Redis, for the test that makes it refuse commands. */
let refusing: RedisServer | undefined;

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make('depot-routes-');
  api = await serve(redis, { paths: { allowed: [path.join(work, 'allowed')] } });
});

afterAll(async () => {
  await cleanupAll(
    () => Promise.allSettled(servers.map(async (s) => (await s.http.close(), await s.storage.close()))),
    () => redis?.stop(),
    () => refusing?.stop(),
    () => temp.cleanup(),
  );
});

async function serve(on: RedisServer, settings: { paths?: { allowed: string[] }; dashboard?: boolean }): Promise<DepotHttpServer> {
  const tokensFile = path.join(work, `tokens-${servers.length}.txt`);
  await writeFile(tokensFile, `${TOKEN}\n`);
  const passwordFile = path.join(work, `password-${servers.length}.txt`);
  await writeFile(passwordFile, `${DASHBOARD.password}\n`);
  const config = testConfig(
    {
      redis: { url: on.url },
      defaultDriver: 'local',
      drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
      http: { port: 0, tokensFile, ...(settings.dashboard ? { auth: { user: DASHBOARD.user, passwordFile } } : {}) },
      ...(settings.paths ? { paths: settings.paths } : {}),
    },
    work,
  );
  const storage = new StorageAPI(config, defaultDriverFactory(), logger);
  const http = await startHttpServer(config, storage, logger);
  servers.push({ http, storage });
  await http.health.settled();
  return http;
}

interface Answer {
  status: number;
  /** Every header as sent, in order, except Date and the Connection: close this client asks for. */
  headers: string[];
  body: string;
}

/** One request as sent (no client-side normalising of the target), over a fresh connection. */
function send(http: DepotHttpServer, method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const { hostname, port } = new URL(http.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path: target, headers, agent: false }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      response.on('end', () => {
        const sent: string[] = [];
        for (let i = 0; i < response.rawHeaders.length; i += 2) sent.push(`${response.rawHeaders[i]}: ${response.rawHeaders[i + 1]}`);
        resolve({ status: response.statusCode ?? 0, headers: sent.filter((h) => !/^date:/i.test(h) && h !== 'Connection: close'), body: text });
      });
    });
    req.on('error', reject);
    // A declared length with no body is a request refused before its end.
    if (body !== undefined && headers['content-length'] === undefined) req.end(body);
    else req.end();
  });
}

/** The contract's error body, keys in the order depot writes them. */
function error(code: string, message: string, field?: string): string {
  return JSON.stringify({ ok: false, error: { code, message, ...(field ? { field } : {}) } });
}

/** Status, body and headers of a JSON answer; `head`: a HEAD request, whose body is not sent. */
function jsonAnswer(status: number, body: string, extraHeaders: string[] = [], head = false): Answer {
  return {
    status,
    headers: [...extraHeaders, 'content-type: application/json', `content-length: ${Buffer.byteLength(body)}`, 'cache-control: no-store'],
    body: head ? '' : body,
  };
}

const NO_TOKEN = error('auth', 'a valid bearer token (config http.tokens) is required');
const ASK_BEARER = ['www-authenticate: Bearer'];
const DASHBOARD_OFF = error('not_found', 'the dashboard is off: configure http.auth (user, password)');

test.each<[string, string, Record<string, string>, Answer]>([
  // Paths that are no route: 404, whatever the method and credentials.
  ['GET', '/nothing-here', {}, jsonAnswer(404, error('not_found', 'no route /nothing-here'))],
  ['POST', '/nothing-here', BEARER, jsonAnswer(404, error('not_found', 'no route /nothing-here'))],
  ['GET', '/health/', {}, jsonAnswer(404, error('not_found', 'no route /health/'))],
  ['GET', '/Health', {}, jsonAnswer(404, error('not_found', 'no route /Health'))],
  ['GET', '/%68ealth', {}, jsonAnswer(404, error('not_found', 'no route /%68ealth'))],
  ['GET', '/v1', BEARER, jsonAnswer(404, error('not_found', 'no route /v1'))],
  ['GET', '/v1/other', {}, jsonAnswer(404, error('not_found', 'no route /v1/other'))],
  ['GET', '/v1/tasksx', BEARER, jsonAnswer(404, error('not_found', 'no route /v1/tasksx'))],
  ['GET', '/v1/tasks/..', BEARER, jsonAnswer(404, error('not_found', 'no route /v1/'))],
  ['GET', '/queuesx', {}, jsonAnswer(404, error('not_found', 'no route /queuesx'))],
  // A request target that is not a URL.
  ['GET', '//', {}, jsonAnswer(400, error('invalid_task', 'not a request target'))],
  // /health and /metrics: GET and HEAD only.
  ['POST', '/health', {}, jsonAnswer(405, error('invalid_task', 'POST is not allowed on /health'), ['allow: GET, HEAD'])],
  ['PUT', '/metrics', {}, jsonAnswer(405, error('invalid_task', 'PUT is not allowed on /metrics'), ['allow: GET, HEAD'])],
  ['DELETE', '/metrics', BEARER, jsonAnswer(405, error('invalid_task', 'DELETE is not allowed on /metrics'), ['allow: GET, HEAD'])],
  // The task API: credentials first, on every path under /v1/tasks.
  ['GET', '/v1/tasks', {}, jsonAnswer(401, NO_TOKEN, ASK_BEARER)],
  ['GET', '/v1/tasks', { authorization: 'Basic dXNlcjpwYXNz' }, jsonAnswer(401, NO_TOKEN, ASK_BEARER)],
  ['GET', '/v1/tasks/', {}, jsonAnswer(401, NO_TOKEN, ASK_BEARER)],
  ['GET', '/v1/tasks/x', {}, jsonAnswer(401, NO_TOKEN, ASK_BEARER)],
  ['GET', '/v1/tasks/%E0', {}, jsonAnswer(401, NO_TOKEN, ASK_BEARER)],
  ['POST', '/v1/tasks', { authorization: 'Bearer wrong-token-0123456789abcdef' }, jsonAnswer(401, NO_TOKEN, ASK_BEARER)],
  // Then: what is not POST /v1/tasks or GET /v1/tasks/:taskId is 405 (no Allow header), an empty taskId 404.
  ['GET', '/v1/tasks', BEARER, jsonAnswer(405, error('invalid_task', 'GET /v1/tasks is not a route'))],
  ['GET', '/v1/tasks?x=1', BEARER, jsonAnswer(405, error('invalid_task', 'GET /v1/tasks is not a route'))],
  ['DELETE', '/v1/tasks', BEARER, jsonAnswer(405, error('invalid_task', 'DELETE /v1/tasks is not a route'))],
  ['HEAD', '/v1/tasks', BEARER, jsonAnswer(405, error('invalid_task', 'HEAD /v1/tasks is not a route'), [], true)],
  ['GET', '/v1/tasks/', BEARER, jsonAnswer(404, error('invalid_task', 'GET /v1/tasks/ is not a route'))],
  ['POST', '/v1/tasks/', BEARER, jsonAnswer(404, error('invalid_task', 'POST /v1/tasks/ is not a route'))],
  ['GET', '/v1/tasks/a/b', BEARER, jsonAnswer(405, error('invalid_task', 'GET /v1/tasks/a/b is not a route'))],
  ['GET', '/v1/tasks/a/', BEARER, jsonAnswer(405, error('invalid_task', 'GET /v1/tasks/a/ is not a route'))],
  ['GET', '/v1/tasks/a%2Fb', BEARER, jsonAnswer(405, error('invalid_task', 'GET /v1/tasks/a%2Fb is not a route'))],
  ['POST', '/v1/tasks/x', BEARER, jsonAnswer(405, error('invalid_task', 'POST /v1/tasks/x is not a route'))],
  ['HEAD', '/v1/tasks/x', BEARER, jsonAnswer(405, error('invalid_task', 'HEAD /v1/tasks/x is not a route'), [], true)],
  // A taskId that is not valid percent-encoding: 404, whatever the method.
  ['GET', '/v1/tasks/%E0%A4%A', BEARER, jsonAnswer(404, error('not_found', 'not a task id'))],
  ['POST', '/v1/tasks/%E0', BEARER, jsonAnswer(404, error('not_found', 'not a task id'))],
  ['GET', '/v1/tasks/%E0/x', BEARER, jsonAnswer(404, error('not_found', 'not a task id'))],
  ['GET', '/v1/tasks/x/%E0', BEARER, jsonAnswer(404, error('not_found', 'not a task id'))],
  // Unknown tasks, and what cannot be a taskId.
  [
    'GET',
    '/v1/tasks/01a2b3c4-0000-7000-8000-00000000dead',
    BEARER,
    jsonAnswer(404, error('not_found', 'taskId: no task 01a2b3c4-0000-7000-8000-00000000dead (unknown, or finished and removed)', 'taskId')),
  ],
  ['GET', '/v1/tasks/a%3Ab', BEARER, jsonAnswer(404, error('not_found', 'taskId: no task a:b (unknown, or finished and removed)', 'taskId'))],
  // The dashboard, off without http.auth: 404 on every path under /queues.
  ['GET', '/queues', {}, jsonAnswer(404, DASHBOARD_OFF)],
  ['GET', '/queues/', BEARER, jsonAnswer(404, DASHBOARD_OFF)],
  ['POST', '/queues/api/queues', {}, jsonAnswer(404, DASHBOARD_OFF)],
])('%s %s %j', async (method, target, headers, expected) => {
  expect(await send(api, method, target, headers)).toEqual(expected);
});

test.each<[string, Answer]>([
  ['not json', jsonAnswer(400, error('invalid_task', 'body: is not JSON', 'body'))],
  ['[]', jsonAnswer(400, error('invalid_task', 'operation: must be one of store, retrieve, delete, check', 'operation'))],
  ['null', jsonAnswer(400, error('invalid_task', 'operation: must be one of store, retrieve, delete, check', 'operation'))],
  [
    JSON.stringify({ operation: 'archive', task: {} }),
    jsonAnswer(400, error('invalid_task', 'operation: must be one of store, retrieve, delete, check', 'operation')),
  ],
  [JSON.stringify({ operation: 'check', task: [] }), jsonAnswer(400, error('invalid_task', 'task: must be an object', 'task'))],
  [
    JSON.stringify({ operation: 'check', task: { driver: 'local' }, options: { attempts: 9 } }),
    jsonAnswer(400, error('invalid_task', 'options: unknown option attempts (allowed: priority, delay)', 'options')),
  ],
  [
    JSON.stringify({ operation: 'check', task: { driver: 'local' }, options: { priority: -1 } }),
    jsonAnswer(400, error('invalid_task', 'options: priority must be an integer from 0 to 2097152', 'options')),
  ],
  [
    JSON.stringify({ operation: 'check', task: { driver: 'local' }, options: 'x' }),
    jsonAnswer(400, error('invalid_task', 'options: must be an object', 'options')),
  ],
  [
    JSON.stringify({ operation: 'store', task: { name: 'a.zip', source: { path: '/etc/passwd' } } }),
    jsonAnswer(400, error('invalid_task', 'source.path: must lie inside one of paths.allowed', 'source.path')),
  ],
  [
    JSON.stringify({ operation: 'store', task: { name: '../escape', source: { base64: '' } } }),
    jsonAnswer(400, error('invalid_task', "name: must not contain '/'", 'name')),
  ],
  [
    JSON.stringify({ operation: 'store', task: { name: 'a.zip', driver: 'nowhere', source: { base64: '' } } }),
    jsonAnswer(400, error('unknown_driver', "driver: no driver named 'nowhere' is configured", 'driver')),
  ],
  [
    JSON.stringify({ operation: 'check', task: { driver: 'local', taskId: 'a:b' } }),
    jsonAnswer(400, error('invalid_task', 'taskId: must be 1-128 characters of A-Z a-z 0-9 . _ -', 'taskId')),
  ],
])('POST /v1/tasks %s', async (body, expected) => {
  expect(await send(api, 'POST', '/v1/tasks', JSON_POST, body)).toEqual(expected);
});

test('POST /v1/tasks: a body declared too large is 413 and the connection closes', async () => {
  const answer = await send(api, 'POST', '/v1/tasks', { ...JSON_POST, 'content-length': '99999999' });
  const body = error('invalid_task', 'body: the body is larger than 1463638 bytes', 'body');
  expect(answer).toEqual({ ...jsonAnswer(413, body), headers: ['connection: close', ...jsonAnswer(413, body).headers] });
});

test('POST /v1/tasks: 202 with the taskId, then 409 with the task as GET shows it', async () => {
  const check = JSON.stringify({ operation: 'check', task: { driver: 'local', taskId: 'routes-twice' } });
  expect(await send(api, 'POST', '/v1/tasks', JSON_POST, check)).toEqual(
    jsonAnswer(202, JSON.stringify({ ok: true, taskId: 'routes-twice', jobId: 'task-routes-twice' })),
  );
  const task = { ok: true, taskId: 'routes-twice', jobId: 'task-routes-twice', operation: 'check', state: 'waiting', attempts: 0 };
  const conflict = JSON.stringify({
    ...JSON.parse(error('conflict', 'taskId: task routes-twice already exists; choose another taskId', 'taskId')),
    task,
  });
  expect(await send(api, 'POST', '/v1/tasks', JSON_POST, check)).toEqual(jsonAnswer(409, conflict));
  const other = JSON.stringify({ operation: 'store', task: { name: 'a.zip', taskId: 'routes-twice', source: { base64: '' } } });
  expect(await send(api, 'POST', '/v1/tasks', JSON_POST, other)).toEqual(jsonAnswer(409, conflict));
  expect(await send(api, 'GET', '/v1/tasks/routes-twice', BEARER)).toEqual(jsonAnswer(200, JSON.stringify(task)));
});

test('/health and /metrics answer GET and HEAD', async () => {
  const health = await send(api, 'GET', '/health');
  expect(health).toMatchObject({
    status: 200,
    headers: ['content-type: application/json', expect.stringMatching(/^content-length: /), 'cache-control: no-store'],
  });
  expect(await send(api, 'HEAD', '/health')).toEqual({ ...health, body: '' });
  const metrics = await send(api, 'GET', '/metrics');
  expect(metrics).toMatchObject({
    status: 200,
    headers: ['content-type: text/plain; version=0.0.4; charset=utf-8', expect.stringMatching(/^content-length: /), 'cache-control: no-store'],
  });
  expect(await send(api, 'HEAD', '/metrics')).toMatchObject({
    status: 200,
    headers: metrics.headers.map((h) => (h.startsWith('content-length') ? expect.any(String) : h)),
    body: '',
  });
});

test('the dashboard: basic credentials asked for, with the contract error body', async () => {
  const board = await serve(redis, { dashboard: true });
  const asked = ['www-authenticate: Basic realm="depot", charset="UTF-8"'];
  const refused = error('auth', 'the dashboard needs http.auth credentials');
  expect(await send(board, 'GET', '/queues')).toEqual(jsonAnswer(401, refused, asked));
  expect(await send(board, 'GET', '/queues/api/queues', BEARER)).toEqual(jsonAnswer(401, refused, asked));
  const wrong = { authorization: `Basic ${Buffer.from(`${DASHBOARD.user}:wrong`).toString('base64')}` };
  expect(await send(board, 'GET', '/queues', wrong)).toEqual(jsonAnswer(401, refused, asked));
  const right = { authorization: `Basic ${Buffer.from(`${DASHBOARD.user}:${DASHBOARD.password}`).toString('base64')}` };
  expect(await send(board, 'GET', '/queues', right)).toMatchObject({
    status: 200,
    headers: expect.arrayContaining([expect.stringMatching(/^content-security-policy: /)]),
  });
});

test('Redis refusing the commands: the routes that read it answer 503 unavailable with its error', async () => {
  refusing = await startRedis();
  const http = await serve(refusing, {});
  const admin = new IORedis(refusing.url);
  // Every command but PING (so /health stays up) is refused, as a Redis that cannot serve would refuse it.
  await admin.call('ACL', 'SETUSER', 'default', '-@all', '+ping', '+acl');
  try {
    for (const [method, target, headers, body, message] of [
      ['GET', '/metrics', {}, undefined, /^NOPERM /],
      ['GET', '/v1/tasks/some-task', BEARER, undefined, /^NOPERM /],
      ['POST', '/v1/tasks', JSON_POST, JSON.stringify({ operation: 'check', task: { driver: 'local' } }), /^cannot queue the task: NOPERM /],
    ] as const) {
      const answer = await send(http, method, target, headers, body);
      expect({ target, ...answer, body: JSON.parse(answer.body) as unknown }).toEqual({
        target,
        status: 503,
        headers: ['content-type: application/json', `content-length: ${Buffer.byteLength(answer.body)}`, 'cache-control: no-store'],
        body: { ok: false, error: { code: 'unavailable', message: expect.stringMatching(message) } },
      });
      expect(Object.keys(JSON.parse(answer.body) as object)).toEqual(['ok', 'error']);
    }
  } finally {
    await admin.call('ACL', 'SETUSER', 'default', '+@all');
    admin.disconnect();
  }
});

test('paths.allowed: ["/"] lets every absolute path in; a root never holds its namesake sibling (/srv/a is not inside /srv/ab)', async () => {
  // Issue 11: the task API refused every path with paths.allowed ["/"] (it looked for "//" at their start).
  const everywhere = await serve(redis, { paths: { allowed: ['/'] } });
  const store = JSON.stringify({ operation: 'store', task: { name: 'a.zip', source: { path: path.join(work, 'anywhere', 'a.zip') } } });
  expect(await send(everywhere, 'POST', '/v1/tasks', JSON_POST, store)).toMatchObject({ status: 202 });
  const retrieve = JSON.stringify({
    operation: 'retrieve',
    task: { ref: { driver: 'local', key: '2026/11/27/01a2b3c4-0000-7000-8000-000000000001/x.zip' }, target: { path: '/x.zip' } },
  });
  expect(await send(everywhere, 'POST', '/v1/tasks', JSON_POST, retrieve)).toMatchObject({ status: 202 });

  const sibling = JSON.stringify({ operation: 'store', task: { name: 'a.zip', source: { path: path.join(work, 'allowed-not', 'a.zip') } } });
  expect(await send(api, 'POST', '/v1/tasks', JSON_POST, sibling)).toEqual(
    jsonAnswer(400, error('invalid_task', 'source.path: must lie inside one of paths.allowed', 'source.path')),
  );
  const inside = JSON.stringify({ operation: 'store', task: { name: 'a.zip', source: { path: path.join(work, 'allowed', 'a.zip') } } });
  expect(await send(api, 'POST', '/v1/tasks', JSON_POST, inside)).toMatchObject({ status: 202 });
});
