import type { Queue } from 'bullmq';
import type { RedisClient } from './connection';

/**
 * BullMQ's internal names and formats that depot relies on, and nothing else:
 * no other file spells a BullMQ key, a hash field, a client name or a job id
 * of BullMQ's own making. They are not BullMQ's public API and may change in
 * any release: a BullMQ upgrade touches only this file (check each item below
 * against the new version's Lua scripts in src/commands/ and its classes,
 * then run test/queue). package.json pins BullMQ to the minor tested here.
 * Written against bullmq 6.7.
 */

/**
 * A job's lock: `<prefix>:<queue>:<jobId>:lock`, holding the token of the
 * worker running the job (moveToActive, extendLock); it expires unless renewed.
 */
export function jobLockKey(queue: Queue, jobId: string): string {
  return `${queue.toKey(jobId)}:lock`;
}

/** The token of the worker that holds the job, or null once its lock has expired. */
export async function jobLockToken(client: RedisClient, queue: Queue, jobId: string): Promise<string | null> {
  return client.get(jobLockKey(queue, jobId));
}

/**
 * How often a job stalled: field `stc` of the job's hash, which BullMQ's
 * stalled-job check (moveStalledJobsToWait) increments and compares with the
 * worker's maxStalledCount before it fails the job.
 */
const STALLED_COUNT_FIELD = 'stc';

export async function stalledCount(client: RedisClient, queue: Queue, jobId: string): Promise<number> {
  return Number((await client.hget(queue.toKey(jobId), STALLED_COUNT_FIELD)) ?? 0);
}

/** Counts one more stall of the job, as BullMQ's stalled-job check would. */
export async function countStall(client: RedisClient, queue: Queue, jobId: string): Promise<void> {
  await client.hincrby(queue.toKey(jobId), STALLED_COUNT_FIELD, 1);
}

export interface WorkerConnection {
  /** The Worker's `name` option; undefined for a worker started without one. */
  name: string | undefined;
  addr: string;
  /** How long the connection has been open. */
  ageSeconds: number;
}

/**
 * The connections of the queue's workers, each with its worker's name. BullMQ
 * names a worker's connections `<prefix>:<base64 queue name>:w:<name>`
 * (`CLIENT SETNAME`); `queue.getWorkers()` parses `CLIENT LIST` and returns
 * that name as `rawname` (and the queue's name as `name`).
 */
export async function workerConnections(queue: Queue): Promise<WorkerConnection[]> {
  const marker = `:${Buffer.from(queue.name).toString('base64')}:w:`;
  return (await queue.getWorkers()).map((client) => {
    const rawname = client.rawname ?? '';
    const at = rawname.indexOf(marker);
    const name = at < 0 ? '' : rawname.slice(at + marker.length);
    return { name: name === '' ? undefined : name, addr: client.addr, ageSeconds: Number(client.age) || 0 };
  });
}

/** What the id of every job a job scheduler adds starts with: `repeat:<schedulerId>:` then the run's time in ms. */
export function schedulerJobIdPrefix(schedulerId: string): string {
  return `repeat:${schedulerId}:`;
}

/** The id of a scheduler's job for the run due at `nextMillis` (JobScheduler.getSchedulerNextJobId). */
export function schedulerJobId(schedulerId: string, nextMillis: number): string {
  return `${schedulerJobIdPrefix(schedulerId)}${nextMillis}`;
}

/**
 * The queue's event stream (`queue.keys.events`, read by QueueEvents): entries
 * with ids `<ms>-<seq>` and fields as a flat name/value list, among them
 * `event` (e.g. `completed`) and `jobId`.
 */
export function eventStreamIdAt(ms: number): string {
  return `${ms}-0`;
}

/** One field of an event stream entry's flat name/value list. */
export function eventStreamField(fields: string[], name: 'event' | 'jobId'): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/**
 * Who queued a task (CONTRACT §8's audit `actor`: `cli`, `http:<token name>`;
 * `queue` when nobody said) and, for a delete queued by `depot erase`, that
 * it is an erasure. Kept in the job's options under `depot`, beside the task
 * rather than in it: the task is exactly the contract's (its schema is
 * strict, and producers' tasks are compared by it), and BullMQ stores
 * options it does not know as they are (Job.optsAsJSON / optsFromJSON pass
 * unknown names through) and hands them back on every attempt.
 */
export interface Provenance {
  actor: string;
  /** `erase`: a delete on behalf of an erasure request. */
  operation?: 'erase';
}

const PROVENANCE_OPTION = 'depot';
const ACTOR = /^(queue|cli|expiry|fixity|http:[\x21-\x7e]{1,64})$/;

/** Job options with the provenance added. */
export function withProvenance<O extends object>(options: O, provenance: Provenance): O {
  return { ...options, [PROVENANCE_OPTION]: provenance };
}

/** The provenance a job carries; anything malformed (any producer may write options) counts as the queue's. */
export function provenanceOf(job: { opts: object }): Provenance {
  const value: unknown = (job.opts as Record<string, unknown>)[PROVENANCE_OPTION];
  if (typeof value !== 'object' || value === null) return { actor: 'queue' };
  const { actor, operation } = value as Record<string, unknown>;
  return { actor: typeof actor === 'string' && ACTOR.test(actor) ? actor : 'queue', ...(operation === 'erase' ? { operation } : {}) };
}
