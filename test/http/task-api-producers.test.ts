import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ArchivingManager } from '../../src/archiving/manager';
import type { DepotError, StoreResult } from '../../src/contract';
import { DepotHttpServer, startHttpServer } from '../../src/http/server';
import { StorageAPI } from '../../src/storage/api';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { silentLogger } from '../../src/support/logging';
import { cleanupAll, eventually, HttpSource, InProcessWorker, startHttpSource, startInProcessWorker, TempDirs, testConfig } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * The task API as producers other than depot's own meet it (issue 10,
 * CONTRACT §6 second round): a PHP producer's JSON, a driver that is not
 * configured, a webhook URL that delivery would refuse.
 */
jest.setTimeout(60_000);

const TOKEN = 'producers-token-0123456789abcdef';
const temp = new TempDirs();
let redis: RedisServer;
let work: string;
let root: string;
let worker: InProcessWorker | undefined;
let source: HttpSource | undefined;
let http: DepotHttpServer;
let storage: StorageAPI;
const archive = Buffer.from('quiz attempts of course 12, as Moodle exported them');

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make('depot-producers-');
  root = path.join(work, 'archive');
  const config = testConfig(
    {
      redis: { url: redis.url },
      defaultDriver: 'local',
      drivers: { local: { type: 'filesystem', root }, spare: { type: 'filesystem', root: path.join(work, 'spare') } },
      http: { port: 0, tokensFile: await tokensFile() },
      paths: { allowed: [work] },
    },
    work,
  );
  worker = await startInProcessWorker(config);
  storage = new StorageAPI(config, defaultDriverFactory(), silentLogger());
  http = await startHttpServer(config, storage, silentLogger());
  source = await startHttpSource((_req, res) => {
    res.writeHead(200, { 'content-length': String(archive.length) }).end(archive);
  });
});

afterAll(async () => {
  await cleanupAll(
    () => http?.close(),
    () => storage?.close(),
    () => worker?.close(),
    () => source?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

async function tokensFile(): Promise<string> {
  const file = path.join(work, 'tokens.txt');
  await writeFile(file, `${TOKEN}\n`);
  return file;
}

async function post(
  body: string,
): Promise<{ status: number; body: { ok: boolean; taskId?: string; error?: { code: string; field: string; message: string } } }> {
  const response = await fetch(`${http.url}/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body,
  });
  return {
    status: response.status,
    body: (await response.json()) as { ok: boolean; taskId?: string; error?: { code: string; field: string; message: string } },
  };
}

async function taskState(taskId: string): Promise<{ status: number; state?: string; result?: StoreResult }> {
  const response = await fetch(`${http.url}/v1/tasks/${taskId}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: response.status, ...((await response.json()) as { state?: string; result?: StoreResult }) };
}

/**
 * What PHP's json_encode makes of `$task` with default flags: `/` escaped as
 * `\/`, an empty array as `[]`, integers and booleans bare. When php-cli is
 * installed, the test checks that PHP itself writes exactly this.
 */
function phpJson(value: unknown): string {
  return JSON.stringify(value).replace(/\//g, '\\/');
}

function phpAvailable(): boolean {
  try {
    execFileSync('php', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('a store as a PHP producer sends it (metadata numbers and booleans, headers [], options []) is queued and stored with string metadata', async () => {
  const url = source!.url('/pluginfile.php/12/quiz.zip');
  const body = phpJson({
    operation: 'store',
    task: { name: 'quiz-12.zip', source: { url, headers: [] }, metadata: { courseId: 12, userId: 34, final: true, graded: false } },
    options: [],
  });
  expect(body).toContain('"headers":[]');
  expect(body).toContain('"courseId":12');
  if (phpAvailable()) {
    const php = `echo json_encode(['operation' => 'store', 'task' => ['name' => 'quiz-12.zip', 'source' => ['url' => $argv[1], 'headers' => []], 'metadata' => ['courseId' => 12, 'userId' => 34, 'final' => true, 'graded' => false]], 'options' => []]);`;
    expect(execFileSync('php', ['-r', php, url], { encoding: 'utf8' })).toBe(body);
  }
  const queued = await post(body);
  expect(queued).toMatchObject({ status: 202, body: { ok: true } });
  const taskId = queued.body.taskId ?? '';
  const done = await eventually(
    async () => {
      const report = await taskState(taskId);
      return report.state === 'completed' || report.state === 'failed' ? report : undefined;
    },
    20_000,
    'the PHP task to finish',
  );
  expect(done).toMatchObject({
    state: 'completed',
    result: { name: 'quiz-12.zip', size: archive.length, metadata: { courseId: '12', userId: '34', final: 'true', graded: 'false' } },
  });
});

test('metadata [] from PHP is an empty map; a list where a map belongs is 400 naming the field, with what is wanted', async () => {
  const base64 = archive.toString('base64');
  const empty = await post(phpJson({ operation: 'store', task: { name: 'empty-meta.zip', source: { base64 }, metadata: [] } }));
  expect(empty.status).toBe(202);
  const list = await post(phpJson({ operation: 'store', task: { name: 'list-meta.zip', source: { base64 }, metadata: ['12', '34'] } }));
  expect(list).toMatchObject({
    status: 400,
    body: {
      ok: false,
      error: { code: 'invalid_task', field: 'metadata', message: 'metadata: must be an object of names to values (PHP: an associative array)' },
    },
  });
});

test('a task naming a driver that is not configured is 400 unknown_driver naming the field, and nothing is queued', async () => {
  const key = '2026/11/27/01a2b3c4-0000-7000-8000-000000000001/x.zip';
  const base64 = archive.toString('base64');
  const cases: Array<[unknown, string]> = [
    [{ operation: 'store', task: { taskId: 'no-such-driver', name: 'a.zip', source: { base64 }, driver: 'nope' } }, 'driver'],
    [{ operation: 'store', task: { taskId: 'no-such-fallback', name: 'a.zip', source: { base64 }, fallbacks: ['spare', 'nope'] } }, 'fallbacks[1]'],
    [{ operation: 'store', task: { taskId: 'object-property-driver', name: 'a.zip', source: { base64 }, driver: 'constructor' } }, 'driver'],
    [{ operation: 'retrieve', task: { taskId: 'no-such-ref-driver', ref: { driver: 'nope', key }, target: { inline: true } } }, 'ref.driver'],
    [{ operation: 'delete', task: { taskId: 'no-such-delete-driver', ref: { driver: 'nope', key } } }, 'ref.driver'],
    [{ operation: 'check', task: { taskId: 'no-such-check-driver', driver: 'nope' } }, 'driver'],
  ];
  for (const [body, field] of cases) {
    const answer = await post(JSON.stringify(body));
    expect({ field, status: answer.status, error: answer.body.error }).toEqual({
      field,
      status: 400,
      error: {
        code: 'unknown_driver',
        field,
        message: expect.stringMatching(new RegExp(`^${field.replace(/[[\]]/g, '\\$&')}: no driver named '(nope|constructor)'`)),
      },
    });
    const taskId = (body as { task: { taskId: string } }).task.taskId;
    expect((await taskState(taskId)).status).toBe(404);
  }
  // A form error comes first, as the worker would report it.
  const both = await post(JSON.stringify({ operation: 'store', task: { name: '../x', source: { base64 }, driver: 'nope' } }));
  expect(both.body.error).toMatchObject({ code: 'invalid_task', field: 'name' });
  // Configured drivers, named or as fallbacks, are taken.
  expect((await post(JSON.stringify({ operation: 'store', task: { name: 'b.zip', source: { base64 }, driver: 'spare', fallbacks: ['local'] } }))).status).toBe(
    202,
  );
});

test('a callbackUrl that webhook delivery would refuse is refused when queued: 400 invalid_task on callbackUrl (API and ArchivingManager)', async () => {
  const base64 = archive.toString('base64');
  for (const callbackUrl of [
    'http://169.254.169.254/latest/meta-data/',
    'http://[fe80::1]/hook',
    'http://0xA9FEA9FE/hook',
    'http://[::ffff:169.254.169.254]/hook',
    'http://[64:ff9b::a9fe:a9fe]/hook',
  ]) {
    const answer = await post(JSON.stringify({ operation: 'store', task: { taskId: 'bad-hook', name: 'hook.zip', source: { base64 }, callbackUrl } }));
    expect({ callbackUrl, status: answer.status, error: answer.body.error }).toMatchObject({
      callbackUrl,
      status: 400,
      error: { code: 'invalid_task', field: 'callbackUrl' },
    });
  }
  expect((await taskState('bad-hook')).status).toBe(404);

  const manager = new ArchivingManager({ redisUrl: redis.url });
  try {
    const refused = await manager.store({ base64 }, { name: 'hook.zip', callbackUrl: 'http://169.254.169.254/' }).then(
      () => undefined,
      (error: DepotError) => error,
    );
    expect(refused).toMatchObject({ code: 'invalid_task', field: 'callbackUrl' });
    await expect(
      manager.delete({ driver: 'local', key: '2026/11/27/01a2b3c4-0000-7000-8000-000000000001/x.zip' }, { callbackUrl: 'http://[fe80::1]/' }),
    ).rejects.toMatchObject({
      code: 'invalid_task',
      field: 'callbackUrl',
    });
  } finally {
    await manager.close();
  }
  // A host name is left to delivery, which checks what it resolves to at every attempt.
  expect(
    (await post(JSON.stringify({ operation: 'store', task: { name: 'hook.zip', source: { base64 }, callbackUrl: 'https://moodle.example.org/depot-hook' } })))
      .status,
  ).toBe(202);
});
