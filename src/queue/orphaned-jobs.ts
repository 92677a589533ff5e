import { Job, Queue } from 'bullmq';
import type { RedisClient } from './connection';
import { processAlive } from '../support/process-alive';
import { countStall, jobLockToken, stalledCount, workerConnections } from './bullmq-internals';

export interface OrphanSearch {
  /** This host's name, as worker names begin with it (`<host>:<pid>`). */
  host: string;
  /** The starting worker's own pid: a job still marked with it belonged to a predecessor (a restarted container is pid 1 again). */
  selfPid: number;
  /** How often a job may stall before BullMQ fails it; a hand-back counts as a stall. */
  maxStalledCount: number;
  isAlive?: (pid: number) => boolean;
  /** Seconds this process has run: connections under its own name that are older belong to someone else. */
  uptimeSeconds?: number;
}

export interface HandedBack {
  jobId: string;
  worker: string;
}

/**
 * ErrorHandler.restartWorker (the design's name): what a dead worker was
 * running is taken up again. Run by a worker as it starts, before it takes any
 * job: active jobs whose
 * worker was a process of this host that is gone (killed, crashed, OOM) go
 * back to the queue at once instead of waiting for their lock to expire and
 * the stalled-job check to notice — a restart then costs about a second, not
 * lockDurationMs. Only jobs whose worker is provably dead are touched: same
 * host name, no process with its pid here, and no connection of that worker
 * open on Redis (so a machine with the same host name elsewhere is left
 * alone). A hand-back counts as a stall, so a task that kills its worker every
 * time still ends failed after maxStalledCount, as with BullMQ's own check.
 */
export async function restartWorker(queue: Queue, client: RedisClient, search: OrphanSearch): Promise<HandedBack[]> {
  const isAlive = search.isAlive ?? processAlive;
  const active = await queue.getJobs(['active']);
  if (active.length === 0) return [];
  // The oldest open connection of each worker name. A starting worker's own connections carry its
  // name too (BullMQ opens them in its constructor): under our own name only older ones count.
  const oldest = new Map<string, number>();
  for (const { name, ageSeconds } of await workerConnections(queue)) {
    if (name) oldest.set(name, Math.max(oldest.get(name) ?? 0, ageSeconds));
  }
  const ownName = `${search.host}:${search.selfPid}`;
  const uptime = search.uptimeSeconds ?? process.uptime();
  const isConnected = (name: string) => oldest.has(name) && (name !== ownName || (oldest.get(name) ?? 0) > uptime + 1);
  const handedBack: HandedBack[] = [];
  for (const job of active) {
    const worker = job.processedBy;
    if (!job.id || !worker || isConnected(worker)) continue;
    const pid = workerPid(worker, search.host);
    if (pid === undefined || (pid !== search.selfPid && isAlive(pid))) continue;
    if (await handBack(queue, client, job, search.maxStalledCount)) handedBack.push({ jobId: job.id, worker });
  }
  return handedBack;
}

/**
 * restartWorker triggered by a supervisor (`depot worker --processes N`,
 * src/process/supervisor.ts) the moment its child `worker` has died: the
 * supervisor saw it exit, so no pid or host needs checking, only that Redis
 * has dropped the child's connections (the kernel closed them; Redis may take
 * a moment to notice). Its active jobs go back to the queue at once, each
 * counted as a stall as in restartWorker. Connections still open after
 * `waitMs` (a half-open TCP connection of a lost host) leave the jobs to the
 * stalled-job check.
 */
export async function handBackJobsOf(
  queue: Queue,
  client: RedisClient,
  worker: string,
  options: { maxStalledCount: number; waitMs?: number },
): Promise<HandedBack[]> {
  const until = Date.now() + (options.waitMs ?? 2_000);
  while ((await workerConnections(queue)).some((c) => c.name === worker)) {
    if (Date.now() > until) return [];
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const handedBack: HandedBack[] = [];
  for (const job of await queue.getJobs(['active'])) {
    if (!job.id || job.processedBy !== worker) continue;
    if (await handBack(queue, client, job, options.maxStalledCount)) handedBack.push({ jobId: job.id, worker });
  }
  return handedBack;
}

async function handBack(queue: Queue, client: RedisClient, job: Job, maxStalledCount: number): Promise<boolean> {
  const jobId = job.id ?? '';
  const token = await jobLockToken(client, queue, jobId);
  // No lock left: it expired, and the stalled-job check takes the job as usual.
  if (!token) return false;
  if ((await stalledCount(client, queue, jobId)) + 1 > maxStalledCount) return false;
  try {
    // The stored token proves nobody else holds the job; a concurrent hand-back or stalled check makes this fail, harmlessly.
    await job.moveToWait(token);
  } catch {
    return false;
  }
  await countStall(client, queue, jobId);
  return true;
}

/** The pid of a worker named `<host>:<pid>` on this host, or undefined. */
function workerPid(worker: string, host: string): number | undefined {
  const at = worker.lastIndexOf(':');
  if (at < 0 || worker.slice(0, at) !== host) return undefined;
  const pid = Number(worker.slice(at + 1));
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
