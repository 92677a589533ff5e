import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConnectionOptions, Job, Queue, QueueEvents } from 'bullmq';
import YAML from 'yaml';
import type { TaskContext } from '../../src/archiving/task-runner';
import { Config, validateConfig } from '../../src/config/load';
import { startDepotWorker } from '../../src/process/worker';
import { createRedis, RedisClient, RedisTarget } from '../../src/queue/connection';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { createLogger } from '../../src/support/logging';
import { Redactor } from '../../src/support/redaction';
import { startRedisCluster } from './redis-cluster';
import { startRedis } from './redis-server';
import { Digest, patternSource } from './streams';

/**
 * End-to-end plumbing for the queue tests: temp dirs, configs, a storage worker
 * in this process or as its own process, a local HTTP source, and a plain BullMQ
 * client as any producer would use it.
 */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
/** The command operators run; tests run it too, on the source (DEPOT_FROM_SOURCE, see bin/depot). */
export const BIN_DEPOT = path.join(PROJECT_ROOT, 'bin', 'depot');

/**
 * How a test starts `depot ARGS` as its own process: `node bin/depot ARGS` (this
 * Node, process.execPath), with DEPOT_FROM_SOURCE=1 so that bin/depot runs the
 * TypeScript source through tsx rather than the build in dist/, which may be stale.
 */
export function depotCommand(args: string[], env: NodeJS.ProcessEnv): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  return { command: process.execPath, args: [BIN_DEPOT, ...args], env: { ...env, DEPOT_FROM_SOURCE: '1' } };
}
export const STAGING_DIR = '.depot-tmp';

/** Temporary directories under os.tmpdir(), removed by cleanup(). */
export class TempDirs {
  private readonly dirs: string[] = [];

  async make(prefix = 'depot-queue-'): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    // Retried: a process that just ended (a browser's helpers, a server) may still be removing its own files.
    await Promise.all(this.dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 })));
  }
}

/** What a worker gives TaskRunner.processTask, for tests (and benchmarks) that call the runner directly. */
export function taskContext(jobId: string, extra: Partial<TaskContext> = {}): TaskContext {
  return { jobId, createdAt: Date.now(), signal: new AbortController().signal, progress: () => undefined, keepTaskId: () => Promise.resolve(), ...extra };
}

/**
 * A validated config from a raw object, as the worker would load it from a file; `env` for the secrets it references.
 * Without a `catalog` of its own it gets a SQLite catalog in a directory of its own (removed when the test process
 * ends): the default, beside `baseDir`, could land inside a driver's root that a test lists.
 */
export function testConfig(raw: Record<string, unknown>, baseDir: string, env: NodeJS.ProcessEnv = {}): Config {
  const withCatalog = Object.hasOwn(raw, 'catalog') ? raw : { ...raw, catalog: { url: `sqlite:${path.join(catalogDir(), 'catalog.sqlite')}` } };
  return validateConfig(withCatalog, { env, source: 'queue-test', baseDir, factory: defaultDriverFactory(), redactor: new Redactor() });
}

const catalogDirs: string[] = [];

/** A new directory for a test's catalog, removed when the test process exits. */
export function catalogDir(): string {
  if (!catalogDirs.length) process.once('exit', () => catalogDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  const dir = mkdtempSync(path.join(tmpdir(), 'depot-catalog-'));
  catalogDirs.push(dir);
  return dir;
}

/** Log lines, kept in memory so a failing test can show them. */
class LineCollector extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (this.lines.length > 2000) this.lines.splice(0, this.lines.length - 2000);
    callback();
  }
}

export interface InProcessWorker {
  logs: string[];
  close(): Promise<void>;
}

/**
 * The storage worker in this process, assembled by the code `depot worker` runs
 * (startDepotWorker: drivers, task runner, webhooks with the config's callbacks
 * and secrets); without the process's signal handlers and expiry schedule
 * (test/queue/expiry.test.ts schedules its own).
 */
export async function startInProcessWorker(config: Config): Promise<InProcessWorker> {
  const collector = new LineCollector();
  const logger = createLogger({ level: 'warn', format: 'json', stream: collector });
  const worker = startDepotWorker(config, logger, 'queue-test');
  await worker.ready();
  // The worker creates its catalog at start; tests that read it may do so once this has settled.
  await worker.catalog.ready().catch(() => undefined);
  return { logs: collector.lines, close: () => worker.close() };
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout and stderr so far (the tail), for failure messages. */
  output(): string;
  /** SIGKILL unless it already exited; resolves once it is gone. */
  kill(): Promise<void>;
}

const running = new Set<WorkerProcess>();
let exitHookInstalled = false;

/** Should the test process itself go away, its worker processes go with it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const worker of running) worker.child.kill('SIGKILL');
  });
}

/** `depot worker` with DEPOT_CONFIG, as operators run it. */
export function spawnWorkerProcess(configFile: string, extraEnv: NodeJS.ProcessEnv = {}): WorkerProcess {
  return spawnDepotCommand(['worker'], configFile, extraEnv);
}

/** `depot <command>` with DEPOT_CONFIG, e.g. `['serve']`. */
export function spawnDepotCommand(args: string[], configFile: string, extraEnv: NodeJS.ProcessEnv = {}): WorkerProcess {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['DEPOT_DATA', 'REDIS_URL', 'LOG_LEVEL', 'LOG_FORMAT', 'NODE_OPTIONS']) delete base[name];
  const run = depotCommand(args, { ...base, DEPOT_CONFIG: configFile, LOG_FORMAT: 'json', LOG_LEVEL: 'info', ...extraEnv });
  const child = spawn(run.command, run.args, { cwd: PROJECT_ROOT, env: run.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > 64 * 1024) output = output.slice(-64 * 1024);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const handle: WorkerProcess = {
    child,
    pid: child.pid ?? -1,
    exited,
    output: () => output,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  installExitHook();
  running.add(handle);
  void exited.then(() => running.delete(handle));
  return handle;
}

/** SIGKILLs every worker process these helpers spawned that is still running. */
export async function killAllWorkerProcesses(): Promise<void> {
  await Promise.all([...running].map((worker) => worker.kill()));
}

/** Runs every cleanup step even when one fails, then rethrows the first failure. */
export async function cleanupAll(...steps: Array<() => Promise<unknown> | undefined>): Promise<void> {
  let first: unknown;
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      first ??= error;
    }
  }
  if (first !== undefined) throw first instanceof Error ? first : new Error(JSON.stringify(first));
}

/** Resolves with the exit, or rejects after `ms` (the process is left running for the caller's cleanup). */
export async function exitWithin(worker: WorkerProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`worker ${worker.pid} did not exit within ${ms} ms; output:\n${worker.output()}`)), ms);
  });
  try {
    return await Promise.race([worker.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Writes a config file (YAML) for a worker process. */
export async function writeConfigFile(dir: string, config: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, 'depot.yaml');
  await writeFile(file, YAML.stringify(config));
  return file;
}

/** Streams `size` pseudo-random bytes into `file` (never one big buffer) and returns their digest. */
export async function writePatternFile(file: string, size: number, seed: string): Promise<Digest> {
  const source = patternSource(size, seed);
  await pipeline(source.stream, createWriteStream(file));
  return source.sent();
}

export async function digestFile(file: string): Promise<Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Every file below a filesystem driver's root, as keys relative to it, outside
 * the driver's own dot directories (staging, check probes).
 */
export async function filesBelowRoot(root: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(root, { recursive: true, withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return entries
    .filter((entry) => !entry.isDirectory())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .filter((relative) => !relative.startsWith('.depot-'))
    .sort();
}

/** Archive keys below a root: every file that is not a `.depot.json` sidecar. */
export async function archiveKeysBelow(root: string): Promise<string[]> {
  return (await filesBelowRoot(root)).filter((file) => !file.endsWith('.depot.json'));
}

export async function stagingEntries(root: string): Promise<string[]> {
  return readdir(path.join(root, STAGING_DIR)).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
}

export type SourceHandler = (req: IncomingMessage, res: ServerResponse, requestNumber: number) => void | Promise<void>;

export interface HttpSource {
  url(pathname?: string): string;
  /** Requests answered so far. */
  readonly requests: number;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 and a free port, for URL sources. */
export async function startHttpSource(handler: SourceHandler): Promise<HttpSource> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    res.on('error', () => undefined);
    Promise.resolve(handler(req, res, requests)).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return {
    url: (pathname = '/archive.zip') => `http://127.0.0.1:${address.port}${pathname}`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes `body` in `chunkSize` pieces, `intervalMs` apart, unless the client went away. */
export async function trickle(res: ServerResponse, body: Buffer, chunkSize: number, intervalMs: number): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
  for (let offset = 0; offset < body.length; offset += chunkSize) {
    if (res.destroyed) return;
    res.write(body.subarray(offset, offset + chunkSize));
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  if (!res.destroyed) res.end();
}

export interface QueueClient {
  queue: Queue;
  events: QueueEvents;
  close(): Promise<void>;
}

/**
 * A plain BullMQ producer of queue `depot`, as any other service would make one:
 * prefix `bull` on a redis-server's port, or on a TestRedis of any topology
 * (its prefix: hash-tagged on a cluster).
 */
export async function queueClient(at: number | TestRedis, name = 'depot'): Promise<QueueClient> {
  const own: RedisClient[] = [];
  const connection = (): ConnectionOptions | RedisClient => {
    if (typeof at === 'number') return { host: '127.0.0.1', port: at };
    const client = createRedis(at.target, 'worker');
    own.push(client);
    return client;
  };
  const prefix = typeof at === 'number' ? 'bull' : at.prefix;
  const queue = new Queue(name, { connection: connection(), prefix });
  const events = new QueueEvents(name, { connection: connection(), prefix });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  return {
    queue,
    events,
    close: async () => {
      await Promise.allSettled([queue.close(), events.close()]);
      own.forEach((client) => client.disconnect());
    },
  };
}

/**
 * The Redis a queue test runs on, by topology (CONTRACT §10): the same test
 * file runs on a single redis-server, and — imported by test/redis/ after
 * useRedisTopology('cluster') — on a six-node Redis Cluster.
 */
export type TestTopology = 'single' | 'cluster';

export interface TestRedis {
  topology: TestTopology;
  /** The config's `redis` section. */
  config: Record<string, unknown>;
  /** The `queue.prefix` to configure: `bull` on one server, hash-tagged on a cluster. */
  prefix: string;
  /** What ArchivingManager and createRedis take. */
  target: RedisTarget;
  stop(): Promise<void>;
}

let topologyUnderTest: TestTopology = 'single';

/** Selects the topology startTestRedis starts; call it before importing the test files to run on it. */
export function useRedisTopology(topology: TestTopology): void {
  topologyUnderTest = topology;
}

export async function startTestRedis(): Promise<TestRedis> {
  if (topologyUnderTest === 'cluster') {
    const cluster = await startRedisCluster();
    return {
      topology: 'cluster',
      config: cluster.redisConfig,
      prefix: '{depot}',
      target: { kind: 'cluster', nodes: cluster.redisConfig.cluster },
      stop: () => cluster.stop(),
    };
  }
  const server = await startRedis();
  return { topology: 'single', config: { url: server.url }, prefix: 'bull', target: server.url, stop: () => server.stop() };
}

export interface Settled {
  job: Job;
  state: string;
  result?: unknown;
  failedReason?: string;
}

/** Waits until the job finished, either way, and reads it back from Redis. */
export async function settle(client: QueueClient, job: Job, timeoutMs = 20_000): Promise<Settled> {
  let result: unknown;
  try {
    result = await job.waitUntilFinished(client.events, timeoutMs);
  } catch {
    // The job's final state and failedReason are read below.
  }
  const id = job.id ?? '';
  const stored = await Job.fromId(client.queue, id);
  if (!stored) throw new Error(`job ${id} disappeared`);
  const state = await stored.getState();
  return { job: stored, state, result: state === 'completed' ? result : undefined, failedReason: stored.failedReason || undefined };
}

/** UTC day `YYYY/MM/DD` of a moment, as the key scheme writes it. */
export function keyDay(date: Date): string {
  return `${date.getUTCFullYear()}/${String(date.getUTCMonth() + 1).padStart(2, '0')}/${String(date.getUTCDate()).padStart(2, '0')}`;
}

/** The time a UUIDv7 carries (its first 48 bits), read independently of the code under test. */
export function uuidV7Time(taskId: string): Date {
  expectUuidV7(taskId);
  return new Date(parseInt(taskId.replace(/-/g, '').slice(0, 12), 16));
}

function expectUuidV7(taskId: string): void {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(taskId)) throw new Error(`${taskId} is not a UUIDv7`);
}

/** Polls `check` until it returns a value, or fails after `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, ms: number, what: string): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
