import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { PROJECT_ROOT } from './env';

/** A worker process under test; its stdout and stderr go to a log file in its run directory. */
export interface WorkerProcess {
  pid: number;
  logFile: string;
  /** VmHWM (peak resident set) from /proc/<pid>/status, in bytes. */
  peakRss(): number;
  /** User + system CPU seconds the process has used so far. */
  cpuSeconds(): number;
  /** SIGKILL, as a crash would. */
  crash(): void;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  exited: Promise<void>;
  /** The process itself (its IPC channel, for children started with one). */
  child: ChildProcess;
}

export interface DepotWorkerConfig {
  redisUrl: string;
  queue: string;
  root: string;
  /** Directory that path sources must lie in (paths.allowed, as production sets it). */
  allowedPath: string;
  concurrency: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Settings of the one driver instead of a filesystem driver at `root` (secrets as `${ENV}` references). */
  driver?: Record<string, unknown>;
  /** The `http` section, for `depot serve` on the same config (port, spoolDir, tokens as `${ENV}` references). */
  http?: Record<string, unknown>;
}

/** The YAML config an operator would write for one driver (filesystem unless `driver` says otherwise). */
export async function writeDepotConfig(dir: string, config: DepotWorkerConfig): Promise<string> {
  const file = path.join(dir, 'depot.yaml');
  const queue: Record<string, unknown> = { name: config.queue, concurrency: config.concurrency };
  if (config.lockDurationMs !== undefined) queue.lockDurationMs = config.lockDurationMs;
  if (config.stalledIntervalMs !== undefined) queue.stalledIntervalMs = config.stalledIntervalMs;
  const raw = {
    redis: { url: config.redisUrl },
    queue,
    defaultDriver: 'bench',
    drivers: { bench: config.driver ?? { type: 'filesystem', root: config.root } },
    paths: { allowed: [config.allowedPath] },
    ...(config.http ? { http: config.http } : {}),
  };
  await writeFile(file, YAML.stringify(raw));
  return file;
}

/**
 * The command operators run. BENCH_DEPOT_BIN measures another build against the same load: the bin/depot
 * of another copy (e.g. .bench-variant/bin/depot beside a patched copy of dist/ in .bench-variant/dist/).
 */
const depotBin = () => process.env.BENCH_DEPOT_BIN ?? path.join(PROJECT_ROOT, 'bin', 'depot');
const BARE_ENTRY = path.join(PROJECT_ROOT, 'bench', 'bare-worker.ts');
const UPLOADER_ENTRY = path.join(PROJECT_ROOT, 'bench', 'lib-storage-uploader.ts');
const FTP_UPLOADER_ENTRY = path.join(PROJECT_ROOT, 'bench', 'basic-ftp-uploader.ts');
const NATS_UPLOADER_ENTRY = path.join(PROJECT_ROOT, 'bench', 'nats-obj-uploader.ts');
const FSYNC_SERVER_ENTRY = path.join(PROJECT_ROOT, 'bench', 'fsync-http-server.ts');

/**
 * `depot worker` as production runs it, compiled (dist/, never the source: DEPOT_FROM_SOURCE is dropped),
 * reading its config from DEPOT_CONFIG; `extraEnv` e.g. for secrets the config references.
 */
export function startDepotWorker(configFile: string, logFile: string, nodeArgs: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<WorkerProcess> {
  return startDepotCommand('worker', configFile, logFile, nodeArgs, extraEnv, 'storage worker ready');
}

/** `depot serve` on the same terms as startDepotWorker: compiled, its config from DEPOT_CONFIG (which must have an `http` section). */
export function startDepotServe(configFile: string, logFile: string, nodeArgs: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<WorkerProcess> {
  return startDepotCommand('serve', configFile, logFile, nodeArgs, extraEnv, 'serving /health');
}

function startDepotCommand(
  command: string,
  configFile: string,
  logFile: string,
  nodeArgs: string[],
  extraEnv: NodeJS.ProcessEnv,
  readyLine: string,
): Promise<WorkerProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv, DEPOT_CONFIG: configFile, LOG_FORMAT: 'json', LOG_LEVEL: 'info' };
  for (const name of ['DEPOT_DATA', 'REDIS_URL', 'NODE_OPTIONS', 'DEPOT_FROM_SOURCE']) delete env[name];
  return startProcess([...nodeArgs, depotBin(), command], env, logFile, readyLine);
}

/** bench/bare-worker.ts: a plain BullMQ worker that writes and fsyncs each job's bytes. */
export function startBareWorker(redisUrl: string, queue: string, dir: string, concurrency: number, logFile: string): Promise<WorkerProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS;
  return startProcess(['--import', 'tsx', BARE_ENTRY, redisUrl, queue, dir, String(concurrency)], env, logFile, 'bare worker ready');
}

/**
 * bench/lib-storage-uploader.ts: lib-storage's Upload on its own, the S3 peer of depot. It uploads a file
 * when sent `{ file, key }` over its IPC channel and answers `{ ok, error? }`.
 */
export function startLibStorageUploader(args: string[], env: NodeJS.ProcessEnv, logFile: string): Promise<WorkerProcess> {
  return startBenchScript(UPLOADER_ENTRY, args, env, logFile, 'lib-storage uploader ready');
}

/**
 * bench/basic-ftp-uploader.ts: basic-ftp's uploadFrom on its own, the FTP peer of depot. It uploads a file
 * when sent `{ file, remotePath }` over its IPC channel and answers `{ ok, error? }`.
 */
export function startBasicFtpUploader(args: string[], env: NodeJS.ProcessEnv, logFile: string): Promise<WorkerProcess> {
  return startBenchScript(FTP_UPLOADER_ENTRY, args, env, logFile, 'basic-ftp uploader ready');
}

/**
 * bench/nats-obj-uploader.ts: @nats-io/obj's `put` on its own, the NATS peer of depot. It stores a file
 * when sent `{ file, name }` over its IPC channel and answers `{ ok, error? }`.
 */
export function startNatsObjUploader(args: string[], logFile: string): Promise<WorkerProcess> {
  return startBenchScript(NATS_UPLOADER_ENTRY, args, {}, logFile, 'nats obj uploader ready');
}

/** bench/fsync-http-server.ts: a minimal Node HTTP server that writes each PUT body to a file and fsyncs it before answering. */
export function startFsyncHttpServer(args: string[], logFile: string): Promise<WorkerProcess> {
  return startBenchScript(FSYNC_SERVER_ENTRY, args, {}, logFile, 'fsync http server ready');
}

/** A script of bench/ in a Node process of its own (through tsx), with an IPC channel to this one. */
function startBenchScript(entry: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, readyLine: string): Promise<WorkerProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.NODE_OPTIONS;
  return startProcess(['--import', 'tsx', entry, ...args], childEnv, logFile, readyLine, true);
}

/**
 * One request to a script of bench/ over its IPC channel (an upload by a peer); resolves when it
 * answers `{ ok: true }`, rejects with its error, or when it exits first.
 */
export function askScript(script: WorkerProcess, request: object, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onExit = () => reject(new Error(`the ${what} exited; see ${script.logFile}`));
    void script.exited.then(onExit);
    script.child.once('message', (reply: { ok: boolean; error?: string }) => (reply.ok ? resolve() : reject(new Error(`${what}: ${reply.error}`))));
    script.child.send(request);
  });
}

/** Fields of /proc/<pid>/stat after the parenthesised name (field 3, the state, is [0]). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU seconds process `pid` has used so far. */
export function cpuSecondsOf(pid: number): number {
  // Fields 14 and 15 of /proc/<pid>/stat: utime and stime in clock ticks.
  const fields = statFields(pid);
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The pids of `pid`'s live children. */
function childrenOf(pid: number): number[] {
  const pids: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      pids.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    } catch {
      // the thread ended meanwhile
    }
  }
  return pids;
}

/**
 * User + system CPU seconds of process `pid` and all its descendants so far: its own time, the time of
 * the children it has reaped (fields 16 and 17, cutime and cstime) and that of the ones still running.
 * A child that ends and is reaped between the reads is counted twice or not at all, so the reads are
 * repeated until the set of children stays the same across them.
 */
export function treeCpuSecondsOf(pid: number): number {
  const tree = (p: number): { seconds: number; pids: number[] } => {
    const fields = statFields(p);
    let seconds = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
    const pids = [p];
    for (const child of childrenOf(p)) {
      try {
        const sub = tree(child);
        seconds += sub.seconds;
        pids.push(...sub.pids);
      } catch {
        // gone meanwhile: its time is in its parent's cutime/cstime at the next try
        pids.push(-child);
      }
    }
    return { seconds, pids };
  };
  for (let attempt = 0; ; attempt++) {
    const first = tree(pid);
    const again = tree(pid);
    if (attempt >= 10 || first.pids.join() === again.pids.join()) return again.seconds;
  }
}

/** The pids of this process's children named `comm` (the kernel's short name, /proc/<pid>/comm). */
export function childPidsNamed(comm: string): number[] {
  return childrenOf(process.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm;
    } catch {
      return false;
    }
  });
}

/** The pids of this process's children whose command line contains `marker`. */
export function childPids(marker: string): number[] {
  return childrenOf(process.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** Every worker process started and not yet exited, so that an interrupted run leaves none behind. */
const running = new Set<WorkerProcess>();
let refusing = false;

/** Kills every worker process and refuses to start more. */
export function killAllWorkers(): void {
  refusing = true;
  for (const worker of running) worker.crash();
}

async function startProcess(args: string[], env: NodeJS.ProcessEnv, logFile: string, readyLine: string, ipc = false): Promise<WorkerProcess> {
  if (refusing) throw new Error('the benchmark is stopping');
  const out = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env, stdio: ipc ? ['ignore', out, out, 'ipc'] : ['ignore', out, out] });
  } finally {
    closeSync(out);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${args.join(' ')}`);
  let gone = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve())).then(() => {
    gone = true;
  });
  const worker: WorkerProcess = {
    pid,
    logFile,
    exited,
    child,
    peakRss: () => {
      const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (!match) throw new Error(`no VmHWM for pid ${pid}`);
      return Number(match[1]) * 1024;
    },
    cpuSeconds: () => cpuSecondsOf(pid),
    crash: () => {
      if (!gone) child.kill('SIGKILL');
    },
    stop: async () => {
      if (!gone) child.kill('SIGTERM');
      await exited;
    },
  };
  running.add(worker);
  void exited.then(() => running.delete(worker));
  const deadline = Date.now() + 20_000;
  while (!readFileSync(logFile, 'utf8').includes(readyLine)) {
    if (gone || Date.now() > deadline) {
      worker.crash();
      throw new Error(`worker did not start (${args.join(' ')}):\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return worker;
}
