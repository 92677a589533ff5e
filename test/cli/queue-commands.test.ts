import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import path from 'node:path';
import type { StoreResult } from '../../src/contract';
import {
  cleanupAll,
  depotCommand,
  PROJECT_ROOT,
  spawnWorkerProcess,
  TempDirs,
  WorkerProcess,
  writeConfigFile,
  archiveKeysBelow,
  eventually,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * `depot store | retrieve | delete | status` against a real worker process and
 * a private Redis: what an operator types, and the exit codes of CONTRACT §5.
 */
// Each command is a process of its own (about a second each, more on a loaded machine).
jest.setTimeout(400_000);
const temp = new TempDirs();
let redis: RedisServer;
let worker: WorkerProcess | undefined;
let configFile: string;
let root: string;
let work: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function depot(args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, DEPOT_CONFIG: configFile, LOG_FORMAT: 'json' };
  for (const name of ['DEPOT_DATA', 'REDIS_URL', 'LOG_LEVEL']) delete env[name];
  return new Promise((resolve, reject) => {
    const run = depotCommand(args, env);
    const child = spawn(run.command, run.args, { cwd: PROJECT_ROOT, env: run.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    // A command that waits for a task no worker finishes must fail the test, not hang it.
    let snapshot = '';
    const timer = setTimeout(() => {
      void queueSnapshot().then((s) => {
        snapshot = s;
        child.kill('SIGKILL');
      });
    }, 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout,
        stderr: code === null ? `${stderr}\n[killed after 60 s; queue:]\n${snapshot}\n[worker output:]\n${worker?.output() ?? ''}` : stderr,
      });
    });
  });
}

async function queueSnapshot(): Promise<string> {
  const queue = new Queue('depot', { connection: { host: '127.0.0.1', port: redis.port } });
  try {
    const jobs = await queue.getJobs(['active', 'waiting', 'completed', 'failed', 'delayed', 'prioritized', 'waiting-children']);
    const lines = await Promise.all(
      jobs.map(async (j) =>
        JSON.stringify({
          id: j.id,
          name: j.name,
          state: await j.getState(),
          finishedOn: j.finishedOn,
          processedOn: j.processedOn,
          attemptsMade: j.attemptsMade,
          failedReason: j.failedReason,
          returnvalue: j.returnvalue,
        }),
      ),
    );
    const raw = new IORedis(redis.url);
    const events = await raw.xrange('bull:depot:events', '-', '+').finally(() => raw.disconnect());
    return `${lines.join('\n')}\n[events]\n${events.map((event) => JSON.stringify(event)).join('\n')}`;
  } finally {
    await queue.close();
  }
}

/** The worker process is connected to the queue, as `depot status` sees it. */
async function workerConnected(): Promise<void> {
  await eventually(
    async () => {
      const status = await depot(['status', '--json']);
      const report = JSON.parse(status.stdout || '{}') as { workers?: unknown[] };
      return report.workers?.length === 1 ? true : undefined;
    },
    60_000,
    `the worker to connect (worker output: ${worker?.output() ?? ''})`,
  );
}

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make();
  root = path.join(work, 'archive');
  configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    queue: { attempts: 2, backoffMs: 50 },
    drivers: { local: { type: 'filesystem', root } },
    paths: { allowed: [work] },
  });
});

afterAll(async () => {
  await cleanupAll(
    () => worker?.kill(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

test('without a worker, store --no-wait queues the task and status counts it', async () => {
  const file = path.join(work, 'queued.zip');
  await writeFile(file, 'queued while no worker runs');
  const queued = await depot(['store', file, '--no-wait', '--json']);
  expect(queued.code).toBe(0);
  const { ok, taskId, jobId } = JSON.parse(queued.stdout) as { ok: boolean; taskId: string; jobId: string };
  expect(ok).toBe(true);
  expect(jobId).toBe(`task-${taskId}`);

  const status = await depot(['status', '--json']);
  expect(status.code).toBe(0);
  const report = JSON.parse(status.stdout) as { counts: Record<string, number>; workers: unknown[]; webhooks: Record<string, number> };
  expect(report.counts.waiting).toBe(1);
  expect(report.workers).toEqual([]);
  expect(report.webhooks).toEqual({ waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0 });
});

test('store, retrieve and delete through a worker; status names the worker', async () => {
  worker = spawnWorkerProcess(configFile);
  await workerConnected();
  const file = path.join(work, 'exam.zip');
  const bytes = Buffer.from('exam records '.repeat(1000));
  await writeFile(file, bytes);

  const stored = await depot(['store', file, '--meta', 'courseId=12', '--json']);
  expect(stored.stderr).not.toContain('killed after');
  expect(stored.code).toBe(0);
  const result = (JSON.parse(stored.stdout) as { result: StoreResult }).result;
  expect(result).toMatchObject({ name: 'exam.zip', size: bytes.length, metadata: { courseId: '12' }, ref: { driver: 'local' } });

  const status = JSON.parse((await depot(['status', '--json'])).stdout) as { counts: Record<string, number>; workers: Array<{ name: string }> };
  expect(status.workers[0].name).toContain(`:${worker.pid}`);
  // The task queued by the previous test ran too, once the worker came.
  await eventually(async () => ((await archiveKeysBelow(root)).length === 2 ? true : undefined), 10_000, 'both archives stored');
  // The worker's expiry scheduler keeps its next run on the queue; status counts tasks only.
  const idle = JSON.parse((await depot(['status', '--json'])).stdout) as { counts: Record<string, number> };
  expect(idle.counts).toMatchObject({ waiting: 0, active: 0, delayed: 0 });

  const out = path.join(work, 'copy.zip');
  const retrieved = await depot(['retrieve', 'local', result.ref.key, '--out', out]);
  if (retrieved.code !== 0) console.error(`retrieve: code ${retrieved.code}\n${retrieved.stdout}\n${retrieved.stderr}`);
  expect(retrieved.code).toBe(0);
  expect(retrieved.stdout).toContain('verified');
  expect(await readFile(out)).toEqual(bytes);

  // The same bytes already there: done (a retrieve run again after it published). Other bytes are never
  // replaced: exit 1 with the contract's code, the file as it was.
  const again = await depot(['retrieve', 'local', result.ref.key, '--out', out, '--json']);
  expect(again.code).toBe(0);
  const other = path.join(work, 'other.zip');
  await writeFile(other, 'a file of someone else');
  const clash = await depot(['retrieve', 'local', result.ref.key, '--out', other, '--json']);
  expect(clash.code).toBe(1);
  expect(JSON.parse(clash.stdout)).toMatchObject({ ok: false, error: { code: 'conflict' } });
  expect(await readFile(other, 'utf8')).toBe('a file of someone else');

  const deleted = await depot(['delete', 'local', result.ref.key, '--json']);
  expect(deleted.code).toBe(0);
  expect(JSON.parse(deleted.stdout)).toMatchObject({ ok: true, result: { deleted: true, ref: result.ref } });
  expect(await archiveKeysBelow(root)).not.toContain(result.ref.key);

  const missing = await depot(['delete', 'local', result.ref.key]);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('not_found');
});

test('an invalid task is refused before it is queued (exit 2); a store the worker fails exits 1', async () => {
  const refused = await depot(['store', path.join(work, 'exam.zip'), '--name', '../escape', '--json']);
  expect(refused.code).toBe(2);
  expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, error: { code: 'invalid_task', message: expect.stringContaining('name') } });

  // The path is valid but outside paths.allowed: only the worker can tell.
  const outside = await depot(['store', path.join(PROJECT_ROOT, 'package.json'), '--json']);
  expect(outside.code).toBe(1);
  expect(JSON.parse(outside.stdout)).toMatchObject({ ok: false, error: { code: 'invalid_task', message: expect.stringContaining('paths.allowed') } });

  const badMeta = await depot(['store', path.join(work, 'exam.zip'), '--meta', 'novalue']);
  expect(badMeta.code).toBe(2);
  expect(badMeta.stderr).toContain('--meta');
});
