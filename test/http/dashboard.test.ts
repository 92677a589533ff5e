import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { DepotHttpServer, startHttpServer } from '../../src/http/server';
import { StorageAPI } from '../../src/storage/api';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { silentLogger } from '../../src/support/logging';
import { cleanupAll, eventually, PROJECT_ROOT, TempDirs, testConfig } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * What `depot serve` shows an operator's browser (issue 10): bull-board's
 * pages and API as the browser fetches them, over real HTTP. No producer
 * credential, inline archive bytes or install path reaches it, and the page
 * makes the browser ask no other host for anything.
 */
jest.setTimeout(60_000);

const URL_TOKEN = 'pluginfile-token-5e8d1c';
const HEADER_TOKEN = 'Bearer header-token-a91f77';
const HOOK_TOKEN = 'hook-token-3c2b1a';
const DASHBOARD = { user: 'operator', password: 'dashboard-password-123' };
const API_TOKEN = 'dashboard-api-token-0123456789';
const temp = new TempDirs();
let redis: RedisServer;
let work: string;
let http: DepotHttpServer;
let storage: StorageAPI;
let tasks: Queue;
let callbacks: Queue;

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make('depot-dashboard-');
  const passwordFile = path.join(work, 'password.txt');
  await writeFile(passwordFile, `${DASHBOARD.password}\n`);
  const tokensFile = path.join(work, 'tokens.txt');
  await writeFile(tokensFile, `${API_TOKEN}\n`);
  const config = testConfig(
    {
      redis: { url: redis.url },
      drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
      http: { port: 0, tokensFile, auth: { user: DASHBOARD.user, passwordFile } },
    },
    work,
  );
  storage = new StorageAPI(config, defaultDriverFactory(), silentLogger());
  http = await startHttpServer(config, storage, silentLogger());
  const connection = { host: '127.0.0.1', port: redis.port };
  tasks = new Queue('depot', { connection, prefix: 'bull' });
  callbacks = new Queue('depot-callbacks', { connection, prefix: 'bull' });
});

afterAll(async () => {
  await cleanupAll(
    () => http?.close(),
    () => storage?.close(),
    () => tasks?.close(),
    () => callbacks?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

const basic = { authorization: `Basic ${Buffer.from(`${DASHBOARD.user}:${DASHBOARD.password}`).toString('base64')}` };

async function fetchText(route: string, headers: Record<string, string> = basic): Promise<{ status: number; type: string; csp: string | null; text: string }> {
  const response = await fetch(new URL(route, http.url), { headers });
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    csp: response.headers.get('content-security-policy'),
    text: await response.text(),
  };
}

/** Runs the queue's next job with `processor` in a plain BullMQ worker (as a depot worker would have), then stops it. */
async function runOnce(queue: string, processor: () => Promise<unknown>, jobId: string): Promise<void> {
  const connection = { host: '127.0.0.1', port: redis.port };
  const worker = new Worker(queue, processor, { connection, prefix: 'bull' });
  const reader = new Queue(queue, { connection, prefix: 'bull' });
  try {
    await eventually(async () => ((await reader.getJob(jobId))?.finishedOn ? true : undefined), 10_000, `job ${jobId}`);
  } finally {
    await Promise.all([worker.close(), reader.close()]);
  }
}

test("bull-board's API shows no producer credentials, inline bytes or install paths: listing and single job, both queues", async () => {
  const inline = Buffer.alloc(48 * 1024, 7).toString('base64');
  // Waiting, with credentials a retry would still need (delayed, so nothing takes it).
  await tasks.add(
    'store',
    {
      taskId: 'waiting',
      name: 'quiz.zip',
      source: { url: `https://moodle.example.org/webservice/pluginfile.php/1/quiz.zip?token=${URL_TOKEN}`, headers: { Authorization: HEADER_TOKEN } },
      callbackUrl: `https://hooks.example.org/depot?token=${HOOK_TOKEN}`,
    },
    { jobId: 'task-waiting', delay: 600_000 },
  );
  await tasks.add('store', { taskId: 'inline', name: 'inline.bin', source: { base64: inline } }, { jobId: 'task-inline', delay: 600_000 });
  // Failed, with a stack trace through this install's files and a message quoting a URL with its token.
  await tasks.add('store', { taskId: 'failing', name: 'f.zip', source: { path: '/srv/f.zip' } }, { jobId: 'task-failing' });
  await runOnce(
    'depot',
    async () => {
      throw new UnrecoverableError(`source_unavailable: https://moodle.example.org/x.zip?token=${URL_TOKEN} answered HTTP 500`);
    },
    'task-failing',
  );
  // Completed inline retrieve: its result holds the archive's bytes.
  await tasks.add(
    'retrieve',
    { taskId: 'retrieved', ref: { driver: 'local', key: '2026/11/27/t/x.bin' }, target: { inline: true } },
    { jobId: 'task-retrieved' },
  );
  await runOnce(
    'depot',
    async () => ({ taskId: 'retrieved', ref: { driver: 'local', key: '2026/11/27/t/x.bin' }, size: 49152, sha256: 'a'.repeat(64), base64: inline }),
    'task-retrieved',
  );
  // A webhook delivery to a URL with a token, carrying a result.
  await callbacks.add(
    'task.completed',
    { url: `https://hooks.example.org/depot?token=${HOOK_TOKEN}`, notification: { event: 'task.completed', taskId: 'retrieved', result: { base64: inline } } },
    { jobId: 'retrieved.task.completed.x', delay: 600_000 },
  );

  const pages: string[] = [];
  for (const queue of ['depot', 'depot-callbacks']) {
    for (const status of ['latest', 'delayed', 'failed', 'completed']) {
      const listing = await fetchText(`/queues/api/queues?activeQueue=${queue}&status=${status}&page=1&jobsPerPage=50`);
      expect(listing.status).toBe(200);
      pages.push(listing.text);
    }
  }
  for (const jobId of ['task-waiting', 'task-inline', 'task-failing', 'task-retrieved']) {
    const one = await fetchText(`/queues/api/queues/depot/${jobId}`);
    expect({ jobId, status: one.status }).toEqual({ jobId, status: 200 });
    pages.push(one.text);
  }
  pages.push((await fetchText('/queues/api/queues/depot-callbacks/retrieved.task.completed.x')).text);
  const everything = pages.join('\n');

  // Named, not printed whole: the pages are long.
  const shown = [URL_TOKEN, 'header-token-a91f77', HOOK_TOKEN, inline.slice(0, 200), PROJECT_ROOT, 'node_modules'].filter((secret) =>
    everything.includes(secret),
  );
  expect(shown).toEqual([]);
  // What is shown instead.
  const waiting = JSON.parse((await fetchText('/queues/api/queues/depot/task-waiting')).text) as { job: { data: unknown } };
  expect(waiting.job.data).toEqual({
    taskId: 'waiting',
    name: 'quiz.zip',
    source: { url: 'https://moodle.example.org/webservice/pluginfile.php/1/quiz.zip?token=***', headers: { Authorization: '***' } },
    callbackUrl: 'https://hooks.example.org/depot?token=***',
  });
  const failing = JSON.parse((await fetchText('/queues/api/queues/depot/task-failing')).text) as { job: { failedReason: string; stacktrace: string[] } };
  expect(failing.job.failedReason).toBe('source_unavailable: https://moodle.example.org/x.zip?token=*** answered HTTP 500');
  expect(failing.job.stacktrace).toEqual(['UnrecoverableError: source_unavailable: https://moodle.example.org/x.zip?token=*** answered HTTP 500']);
  const retrieved = JSON.parse((await fetchText('/queues/api/queues/depot/task-retrieved')).text) as { job: { returnValue: { base64: string; size: number } } };
  expect(retrieved.job.returnValue).toMatchObject({ size: 49152, base64: '(49152 bytes inline, not shown)' });

  // The task API reports the failure as the dashboard does.
  const report = await fetchText('/v1/tasks/failing', { authorization: `Bearer ${API_TOKEN}` });
  expect(JSON.parse(report.text)).toMatchObject({
    state: 'failed',
    error: { code: 'source_unavailable', message: 'https://moodle.example.org/x.zip?token=*** answered HTTP 500' },
  });
  expect(report.text.includes(URL_TOKEN)).toBe(false);
});

test('the dashboard page and every asset it references ask no other host for anything; a Content-Security-Policy says so to the browser', async () => {
  const page = await fetchText('/queues');
  expect(page.status).toBe(200);
  expect(page.type).toContain('text/html');
  expect(page.csp).toContain("default-src 'self'");
  expect(page.csp).not.toMatch(/https?:/);
  const origin = new URL(http.url).origin;
  const base = new URL(/<base href="([^"]+)"/.exec(page.text)?.[1] ?? '/queues/', origin);

  const outside: string[] = [];
  const fetched: string[] = [];
  /** Every absolute or protocol-relative reference, and whether it points elsewhere. */
  const check = (text: string, from: URL) => {
    const references = [
      ...text.matchAll(/\b(?:href|src)="([^"]+)"/g),
      ...text.matchAll(/url\(\s*['"]?([^'")]+)['"]?\s*\)/g),
      ...text.matchAll(/@import\s+['"]([^'"]+)['"]/g),
    ].map((m) => m[1]);
    const urls = references.filter((ref) => !ref.startsWith('data:') && !ref.startsWith('#')).map((ref) => new URL(ref, from));
    for (const url of urls) if (url.origin !== origin) outside.push(url.href);
    return urls.filter((url) => url.origin === origin);
  };
  const queue = check(page.text, base);
  expect(queue.length).toBeGreaterThanOrEqual(3);
  while (queue.length) {
    const url = queue.shift() as URL;
    if (fetched.includes(url.href)) continue;
    fetched.push(url.href);
    const asset = await fetchText(url.pathname + url.search);
    expect({ url: url.href, status: asset.status }).toEqual({ url: url.href, status: 200 });
    if (asset.type.includes('css')) queue.push(...check(asset.text, url));
  }
  expect(outside).toEqual([]);
  expect(page.text).not.toContain('fonts.googleapis.com');
  expect(page.text).not.toContain('fonts.gstatic.com');
});
