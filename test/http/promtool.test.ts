import { ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import { ArchivingManager } from '../../src/archiving/manager';
import { cleanupAll, depotCommand, eventually, PROJECT_ROOT, spawnWorkerProcess, TempDirs, WorkerProcess, writeConfigFile } from '../helpers/queue-harness';
import { freePort, RedisServer, startRedis } from '../helpers/redis-server';

/**
 * /metrics as Prometheus reads it: the real `depot serve` process, after a
 * real worker ran stores (one failed, one failed over) and kept its expiry
 * scheduler, piped into `promtool check metrics`. Any error or lint warning
 * fails the test.
 */
jest.setTimeout(90_000);

const temp = new TempDirs();
let redis: RedisServer;
let serve: ChildProcess | undefined;
let worker: WorkerProcess | undefined;
let manager: ArchivingManager | undefined;
let producer: Queue | undefined;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await cleanupAll(
    () => producer?.close(),
    () => manager?.close(),
    () => worker?.kill(),
    () => stop(serve),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** `promtool check metrics` reads the exposition on stdin; it prints lint findings and exits non-zero on errors. */
function promtool(exposition: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(exposition);
  });
}

test('promtool check metrics accepts what depot serve exposes, without a lint warning', async () => {
  const work = await temp.make('depot-promtool-');
  const brokenRoot = path.join(work, 'not-a-dir');
  await writeFile(brokenRoot, 'a file where a directory should be\n');
  const port = await freePort();
  const configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    queue: { attempts: 1, backoffMs: 10 },
    defaultDriver: 'local',
    drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') }, broken: { type: 'filesystem', root: brokenRoot } },
    failover: { broken: ['local'] },
    paths: { allowed: [work] },
    http: { host: '127.0.0.1', port },
  });

  // The worker process also upserts depot's expiry scheduler, as in production.
  worker = spawnWorkerProcess(configFile);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['DEPOT_DATA', 'REDIS_URL', 'LOG_LEVEL', 'NODE_OPTIONS']) delete env[name];
  const run = depotCommand(['serve'], { ...env, DEPOT_CONFIG: configFile, LOG_FORMAT: 'json' });
  serve = spawn(run.command, run.args, { cwd: PROJECT_ROOT, env: run.env, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}/metrics`;
  await eventually(async () => ((await fetch(url).catch(() => undefined))?.ok ? true : undefined), 30_000, 'depot serve to answer /metrics');

  manager = new ArchivingManager({ redisUrl: redis.url, jobOptions: { attempts: 1 } });
  const file = path.join(work, 'exam.zip');
  await writeFile(file, 'exam records for promtool');
  await (await manager.store({ path: file }, { name: 'exam.zip' })).result(30_000);
  await (await manager.store({ path: file }, { name: 'spare.zip', driver: 'broken' })).result(30_000);
  await expect((await manager.store({ path: path.join(work, 'missing.zip') }, { name: 'missing.zip' })).result(30_000)).rejects.toMatchObject({
    code: 'source_unavailable',
  });
  // A plain BullMQ producer's job name depot does not know.
  producer = new Queue('depot', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
  await producer.add('archive-now', {}, { attempts: 1 });

  const text = await eventually(
    async () => {
      const body = await (await fetch(url)).text();
      const finished = body.split('\n').filter((l) => l.startsWith('depot_tasks_total{') && !l.endsWith(' 0'));
      return finished.length >= 3 ? body : undefined;
    },
    20_000,
    'the finished tasks in /metrics',
  );
  // What promtool checks holds every kind of family: labelled hops, histograms, the process's own.
  for (const series of [
    'depot_failovers_total{from="broken",to="local"} 1',
    'depot_task_duration_seconds_bucket{operation="other",le="+Inf"} 1',
    'process_cpu_seconds_total ',
    'process_open_fds ',
  ]) {
    expect(text).toContain(series);
  }
  const checked = await promtool(text);
  expect({ code: checked.code, output: checked.output }).toEqual({ code: 0, output: '' });
});

test('the check is not vacuous: promtool flags what breaks the conventions', async () => {
  const checked = await promtool('# HELP depot_driver_total gauge named like a counter\n# TYPE depot_driver_total gauge\ndepot_driver_total 1\n');
  expect(checked.output).toContain('non-counter metrics should not have "_total" suffix');
  expect(checked.code).not.toBe(0);
});
