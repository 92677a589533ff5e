import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer, request as httpRequest, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { CallbackQueue, createCallbackQueue, startCallbackWorker } from '../../src/queue/callbacks';
import type { TaskNotification } from '../../src/support/notifications';
import { cleanupAll, eventually, PROJECT_ROOT, TempDirs } from '../helpers/queue-harness';
import { freePort, RedisServer, startRedis } from '../helpers/redis-server';
import { memoryLogger, parseSignature } from '../helpers/webhook-receiver';

/**
 * The PHP receiver the docs quote (examples/webhook-receiver.php), run by
 * php-cli's own server, and depot's real callback worker delivering to it:
 * what does the PHP side accept, and what does it refuse?
 *
 * depot → recording proxy (may alter a body, or lose an answer) → php -S.
 */
jest.setTimeout(60_000);

const RECEIVER = path.join(PROJECT_ROOT, 'examples', 'webhook-receiver.php');
const OLD = 'hook-secret-old-0123456789abcdef';
const NEW = 'neuer-Schlüssel-äöü-0123456789';
const OTHER = 'hook-secret-unknown-0123456789ab';

const temp = new TempDirs();
let redis: RedisServer;
let php: ChildProcess;
let phpPort: number;
let proxy: Server;
let proxyBase: string;
let inbox: string;
const senders: Array<{ queue: CallbackQueue; worker: { close(): Promise<void> } }> = [];

interface Exchange {
  path: string;
  delivery: string;
  t: number;
  /** What the PHP receiver answered. */
  status: number;
}
const exchanges: Exchange[] = [];
/** Paths whose first answer the proxy loses: depot sees a 503 and retries. */
const loseFirstAnswer = new Set(['/lost-answer']);

function phpAvailable(): boolean {
  try {
    execFileSync('php', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  if (!phpAvailable()) throw new Error('php-cli is missing: run scripts/test-servers.sh (Debian package php-cli)');
  redis = await startRedis();
  const dir = await temp.make();
  await mkdir(path.join(dir, 'state'));
  inbox = path.join(dir, 'inbox.jsonl');
  phpPort = await freePort();
  php = spawn('php', ['-S', `127.0.0.1:${phpPort}`, RECEIVER], {
    env: { PATH: process.env.PATH, DEPOT_WEBHOOK_SECRETS: `${OLD}\n${NEW}\n`, DEPOT_WEBHOOK_STATE: path.join(dir, 'state'), DEPOT_WEBHOOK_INBOX: inbox },
    stdio: 'ignore',
  });
  await eventually(
    () =>
      forward('/', 'GET', {}, Buffer.alloc(0)).then(
        (status) => (status === 405 ? true : undefined),
        () => undefined,
      ),
    10_000,
    'php -S to answer',
  );

  proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const route = req.url ?? '/';
      const body = Buffer.concat(chunks);
      // One byte changed in flight, the length kept: size 12 becomes 13.
      if (route === '/tampered') body[body.indexOf('"size":12') + 8] = 0x33;
      void forward(route, 'POST', req.headers as Record<string, string>, body).then((status) => {
        const delivery = String(req.headers['depot-delivery']);
        exchanges.push({ path: route, delivery, t: parseSignature(req.headers['depot-signature']).t, status });
        const lost = loseFirstAnswer.has(route) && exchanges.filter((e) => e.delivery === delivery).length === 1;
        res.writeHead(lost ? 503 : status).end();
      });
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyBase = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await cleanupAll(
    ...senders.flatMap((s) => [() => s.worker.close(), () => s.queue.close()]),
    () => new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve())),
    async () => {
      php?.kill('SIGKILL');
    },
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

/** One request to the PHP server; resolves with its status. */
function forward(route: string, method: string, headers: Record<string, string>, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: phpPort, path: route, method, headers: { ...headers, host: `127.0.0.1:${phpPort}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A depot process's webhook side — queue and callback worker — with these secrets and this clock, on a queue of its own. */
function depotWith(secrets: string[], options: { skewSeconds?: number; firstDelayMs?: number } = {}): CallbackQueue {
  const prefix = `php${senders.length}`;
  const queue = createCallbackQueue(redis.url, prefix, secrets);
  const now = () => Date.now() + (options.skewSeconds ?? 0) * 1000;
  // Refused deliveries would be retried; a minute later the test is over.
  const worker = startCallbackWorker({ redis: redis.url, prefix, secrets, now, firstDelayMs: options.firstDelayMs ?? 60_000 }, memoryLogger().logger);
  senders.push({ queue, worker });
  return queue;
}

const completed = (taskId: string): TaskNotification => ({
  event: 'task.completed',
  taskId,
  jobId: `task-${taskId}`,
  operation: 'store',
  result: { taskId, ref: { driver: 'local', key: `2026/01/02/${taskId}/exam.zip` }, size: 12, sha256: 'ab'.repeat(32) },
  attempt: 1,
  timestamp: '2026-01-02T03:04:05.000Z',
});

async function send(queue: CallbackQueue, route: string, taskId: string): Promise<Exchange[]> {
  await queue.enqueue({ url: `${proxyBase}${route}`, notification: completed(taskId) }, `${taskId}.task.completed`);
  return eventually(
    () => {
      const found = exchanges.filter((e) => e.delivery === `${taskId}.task.completed`);
      return found.length ? found : undefined;
    },
    20_000,
    `the delivery of ${taskId}`,
  );
}

async function handled(): Promise<Array<{ delivery: string; event: { taskId: string } }>> {
  const text = await readFile(inbox, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { delivery: string; event: { taskId: string } });
}

test('a genuine delivery is accepted and handled once', async () => {
  const [exchange] = await send(depotWith([NEW]), '/hook', 'genuine');
  expect(exchange.status).toBe(204);
  expect((await handled()).filter((h) => h.event.taskId === 'genuine')).toEqual([expect.objectContaining({ delivery: 'genuine.task.completed' })]);
});

test('a retry (the first answer lost) comes with a new t, is accepted, and is not handled twice', async () => {
  const queue = depotWith([NEW], { firstDelayMs: 1_500 });
  await send(queue, '/lost-answer', 'retried');
  const tries = await eventually(
    () => {
      const found = exchanges.filter((e) => e.delivery === 'retried.task.completed');
      return found.length >= 2 ? found : undefined;
    },
    20_000,
    'the retry',
  );
  expect(tries[1].t).toBeGreaterThan(tries[0].t);
  expect(tries.map((e) => e.status)).toEqual([204, 200]);
  expect((await handled()).filter((h) => h.event.taskId === 'retried')).toHaveLength(1);
});

test('during a rotation: signed with an unknown and a known secret, it is accepted (every v1= is tried)', async () => {
  const [exchange] = await send(depotWith([OTHER, OLD]), '/hook', 'rotation');
  expect(exchange.status).toBe(204);
});

test('refused: a body altered in flight, an unknown secret, no signature, a t more than 300 s off', async () => {
  const refused = await Promise.all([
    send(depotWith([NEW]), '/tampered', 'tampered'),
    send(depotWith([OTHER]), '/hook', 'unknown-secret'),
    send(depotWith([]), '/hook', 'unsigned'),
    send(depotWith([NEW], { skewSeconds: -301 }), '/hook', 'stale'),
    send(depotWith([NEW], { skewSeconds: 301 }), '/hook', 'future'),
  ]);
  expect(refused.map(([e]) => e.status)).toEqual([401, 401, 401, 401, 401]);
  // Within the tolerance, a clock that is a little off is fine.
  expect((await send(depotWith([NEW], { skewSeconds: -200 }), '/hook', 'late-but-fine'))[0].status).toBe(204);
  const taskIds = (await handled()).map((h) => h.event.taskId);
  for (const taskId of ['tampered', 'unknown-secret', 'unsigned', 'stale', 'future']) expect(taskIds).not.toContain(taskId);
  expect(taskIds).toContain('late-but-fine');
});

test("the docs quote the receiver's verification function as it is in the example", () => {
  const example = readFileSync(RECEIVER, 'utf8');
  const verify = /^function local_depot_webhook_verify\([\s\S]*?^}$/m.exec(example)?.[0];
  expect(verify).toBeDefined();
  for (const doc of ['README.md', path.join('docs', 'CONTRACT.md')]) expect(readFileSync(path.join(PROJECT_ROOT, doc), 'utf8')).toContain(verify);
});
