import { ChildProcess, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { Queue } from 'bullmq';
import type { Config } from '../config/load';
import { createRedis } from '../queue/connection';
import { handBackJobsOf } from '../queue/orphaned-jobs';
import { MAX_STALLED_COUNT } from '../queue/storage-worker';
import { ChildReport, SupervisorRegistry } from '../queue/supervisors';
import { ignoreErrorEvents, ignoreFailure } from '../support/ignore';
import type { Logger } from '../support/logging';
import { redactor } from '../support/redaction';
import { STOP_BOUND_MS } from '../support/stop-deadline';
import { onStopSignals } from './stop-signals';

/**
 * ErrorHandler.restartWorker, the design's supervisor: `depot worker
 * --processes N` (CONTRACT §10). N storage worker processes, each `depot
 * worker` as a direct child inheriting the environment, named
 * `<name>-<index>` (DEPOT_WORKER_NAME). The supervisor:
 *
 * - restarts a child that dies, after a backoff that doubles while the child
 *   keeps dying young (250 ms, 500 ms, … at most 10 s);
 * - hands the dead child's running jobs back to the queue at once
 *   (handBackJobsOf): it saw the child exit, so it needs neither the lock's
 *   expiry nor the stalled-job check;
 * - counts every restart, all children together: more than
 *   `supervisor.maxRestarts` within `supervisor.windowMs` is a crash loop —
 *   it stops the other children cleanly and exits 1, so that the platform
 *   restarts it (or an operator looks);
 * - on SIGTERM or SIGINT passes SIGTERM to every child, which stops cleanly
 *   within `queue.shutdownGraceMs`, and exits 0 once all have exited (1 if
 *   one did not exit cleanly); a second signal passes that on too and exits
 *   1 at once, as a single worker does;
 * - reports itself and its children for `depot status` (SupervisorRegistry).
 *
 * Children run in a process group of their own, so a terminal's Ctrl-C
 * reaches the supervisor only (which stops them in order), and keep an IPC
 * channel to it: a child whose supervisor is gone (killed with SIGKILL)
 * stops as on SIGTERM.
 */

export interface SupervisorOptions {
  processes: number;
  /** The worker name: the children are `<name>-1` … `<name>-N`. */
  name: string;
  /** The command that starts one child (`depot worker`); by default this very program, as it was started. */
  command?: { file: string; args: string[] };
}

const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 10_000;
/** A child that ran this long before dying starts its backoff afresh. */
const HEALTHY_AFTER_MS = 10_000;
const REPORT_EVERY_MS = 5_000;
/** How long a report counts without being renewed. */
const REPORT_TTL_MS = 3 * REPORT_EVERY_MS;

interface Child extends ChildReport {
  process?: ChildProcess;
  exited?: Promise<void>;
  /** Deaths in a row, each within HEALTHY_AFTER_MS of its start. */
  youngDeaths: number;
  startedMs: number;
  timer?: NodeJS.Timeout;
}

/** Runs the supervisor until it stops; resolves with the exit code (0 after a clean stop, 1 after a crash loop). */
export async function runSupervisor(config: Config, logger: Logger, options: SupervisorOptions): Promise<number> {
  const { maxRestarts, windowMs } = config.supervisor;
  const command = options.command ?? { file: process.execPath, args: [...process.execArgv, process.argv[1], 'worker'] };
  const connection = createRedis(config.redis, 'producer');
  ignoreErrorEvents(connection, "the supervisor's Redis calls are best effort: each failure is logged where it matters");
  const queue = new Queue(config.queue.name, { connection, prefix: config.queue.prefix });
  ignoreErrorEvents(queue, "the supervisor's Redis calls are best effort: each failure is logged where it matters");
  const registry = new SupervisorRegistry(connection, { prefix: config.queue.prefix, name: config.queue.name });
  const startedAt = new Date().toISOString();
  const restarts: number[] = [];
  let stopping = false;
  let exitCode = 0;

  const children: Child[] = Array.from({ length: options.processes }, (_, i) => ({
    name: `${options.name}-${i + 1}`,
    index: i + 1,
    state: 'starting',
    restarts: 0,
    youngDeaths: 0,
    startedMs: 0,
  }));

  const report = () => {
    const now = Date.now();
    void ignoreFailure(
      registry.publish({
        name: options.name,
        host: hostname(),
        pid: process.pid,
        startedAt,
        processes: options.processes,
        recentRestarts: restarts.filter((t) => t > now - windowMs).length,
        maxRestarts,
        children: children.map(({ name, index, pid, state, restarts, startedAt }) => ({ name, index, pid, state, restarts, startedAt })),
        updatedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + REPORT_TTL_MS).toISOString(),
      }),
      'the status report is renewed every few seconds; depot status shows the last one that arrived',
    );
  };
  const reporter = setInterval(report, REPORT_EVERY_MS);

  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));

  const start = (child: Child) => {
    child.timer = undefined;
    const proc = spawn(command.file, command.args, {
      env: { ...process.env, DEPOT_WORKER_NAME: child.name },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
    });
    child.process = proc;
    child.pid = proc.pid;
    child.state = 'starting';
    child.startedMs = Date.now();
    child.startedAt = new Date(child.startedMs).toISOString();
    proc.on('message', (message: unknown) => {
      if (typeof message === 'object' && message !== null && (message as { depot?: unknown }).depot === 'ready' && child.state === 'starting') {
        child.state = 'running';
        report();
      }
    });
    proc.on('error', (error) => logger.error(`worker ${child.name} could not be started: ${error.message}`, { worker: child.name }));
    child.exited = new Promise<void>((resolve) => proc.once('exit', (code, signal) => resolve(onExit(child, proc, code, signal))));
    logger.info(`worker ${child.name} started (pid ${proc.pid})`, { worker: child.name, pid: proc.pid });
    report();
  };

  const onExit = (child: Child, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (child.process !== proc) return;
    child.process = undefined;
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    if (stopping) {
      logger.info(`worker ${child.name} (pid ${proc.pid}) ${how}`, { worker: child.name, pid: proc.pid });
      if (code !== 0) exitCode = 1;
      child.pid = undefined;
      return;
    }
    logger.error(`worker ${child.name} (pid ${proc.pid}) ${how}`, { worker: child.name, pid: proc.pid, code, signal });
    child.pid = undefined;
    child.state = 'restarting';
    // What it was running goes back to the queue now, not once its locks expire.
    handBackJobsOf(queue, connection, child.name, { maxStalledCount: MAX_STALLED_COUNT }).then(
      (handedBack) => {
        for (const { jobId } of handedBack)
          logger.info(`job ${jobId} of worker ${child.name}, which died, handed back to the queue`, { jobId, worker: child.name });
      },
      (error: Error) => logger.warn(`jobs of worker ${child.name} not handed back (the stalled-job check will): ${redactor.redact(error.message)}`),
    );
    const now = Date.now();
    restarts.push(now);
    while (restarts.length && restarts[0] <= now - windowMs) restarts.shift();
    if (restarts.length > maxRestarts) {
      logger.error(`crash loop: ${restarts.length} worker restarts within ${windowMs} ms (supervisor.maxRestarts ${maxRestarts}); stopping`, {
        restarts: restarts.length,
      });
      stop(1);
      return;
    }
    child.youngDeaths = now - child.startedMs < HEALTHY_AFTER_MS ? child.youngDeaths + 1 : 1;
    const delay = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (child.youngDeaths - 1));
    child.restarts++;
    logger.info(`restarting worker ${child.name} in ${delay} ms`, { worker: child.name, delayMs: delay });
    child.timer = setTimeout(() => start(child), delay);
    report();
  };

  /** Stops every child (SIGTERM; each finishes or hands back its tasks within its grace), then resolves `finished`. */
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    const bound = setTimeout(
      () => {
        logger.error(`workers still running ${config.queue.shutdownGraceMs + 2 * STOP_BOUND_MS} ms after SIGTERM; killing them`);
        for (const child of children) child.process?.kill('SIGKILL');
      },
      config.queue.shutdownGraceMs + 2 * STOP_BOUND_MS,
    );
    bound.unref();
    for (const child of children) {
      clearTimeout(child.timer);
      child.state = 'stopping';
      child.process?.kill('SIGTERM');
    }
    report();
    void Promise.all(children.flatMap((child) => (child.process && child.exited ? [child.exited] : []))).then(() => {
      clearTimeout(bound);
      finish(exitCode);
    });
  };

  onStopSignals(
    logger,
    (signal) => {
      logger.info(`${signal}: stopping ${options.processes} workers`);
      stop(0);
    },
    'the workers were told to stop at once too; their running tasks come back through stalled-job recovery',
    (signal) => {
      for (const child of children) child.process?.kill(signal);
    },
  );

  logger.info(`supervisor ${options.name} starting ${options.processes} workers`, { processes: options.processes, maxRestarts, windowMs });
  for (const child of children) start(child);
  const code = await finished;
  clearInterval(reporter);
  await ignoreFailure(registry.remove(options.name), 'its report expires by itself');
  await ignoreFailure(queue.close(), 'closing: nothing is left to flush');
  connection.disconnect();
  logger.info(`supervisor ${options.name} stopped`, { exitCode: code });
  return code;
}
