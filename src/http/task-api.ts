import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { Job, Queue } from 'bullmq';
import { ArchivingManager, failureFromReason } from '../archiving/manager';
import { DepotError, isOperation, namedDrivers, parseTask, taskIdProblem } from '../contract';
import { jobIdFor } from '../queue/names';
import { errorBody } from '../support/error-handler';
import { shownText } from './job-view';
import { within } from './within';

/** What a request body may hold beyond the largest inline archive (base64 grows it by a third). */
const BODY_OVERHEAD = 64 * 1024;

export type Reply = (status: number, body: unknown) => void;

/**
 * CONTRACT §6 task API: `POST /v1/tasks` queues `{ operation, task, options? }`
 * (validated exactly as the queue's workers would: a bad task is 400 naming the
 * field, never queued; a taskId that exists is 409 with that task's state),
 * `GET /v1/tasks/:taskId` reports its state and result.
 */
export class TaskApi {
  private readonly bodyLimit: number;
  private readonly drivers: ReadonlySet<string>;

  constructor(
    private readonly manager: ArchivingManager,
    private readonly queue: Queue,
    inlineBytes: number,
    /** config `paths.allowed`: the API takes no path sources or targets without it. */
    private readonly allowedPaths: string[] | undefined,
    private readonly answerMs: number,
    /** The configured drivers' names: a task naming another is refused here, not failed later by a worker. */
    driverNames: readonly string[],
  ) {
    this.bodyLimit = Math.ceil((inlineBytes * 4) / 3) + BODY_OVERHEAD;
    this.drivers = new Set(driverNames);
  }

  /** `closeAfterReply`: a body refused before its end is not read further; the connection closes after the answer. */
  async create(request: IncomingMessage, reply: Reply, closeAfterReply: () => void): Promise<void> {
    const tooLarge = () => reply(413, failure('invalid_task', `the body is larger than ${this.bodyLimit} bytes`, 'body'));
    // Refused before its end: the connection is closed after the answer instead of reading the rest.
    if (Number(request.headers['content-length'] ?? 0) > this.bodyLimit) return (request.pause(), closeAfterReply(), tooLarge());
    let raw: string;
    try {
      raw = await readBody(request, this.bodyLimit);
    } catch {
      closeAfterReply();
      return tooLarge();
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return reply(400, failure('invalid_task', 'is not JSON', 'body'));
    }
    const { operation, task, options } = (typeof body === 'object' && body !== null ? body : {}) as { operation?: unknown; task?: unknown; options?: unknown };
    if (typeof operation !== 'string' || !isOperation(operation))
      return reply(400, failure('invalid_task', 'must be one of store, retrieve, delete, check', 'operation'));
    if (typeof task !== 'object' || task === null || Array.isArray(task)) return reply(400, failure('invalid_task', 'must be an object', 'task'));
    const jobOptions = parseOptions(options);
    if (typeof jobOptions === 'string') return reply(400, failure('invalid_task', jobOptions, 'options'));
    const refused = this.refusedPath(task as Record<string, unknown>);
    if (refused) return reply(400, failure('invalid_task', refused.message, refused.field));
    // Validated as the worker would, first, so a task that is wrong in several ways is told about its form first.
    let parsed;
    try {
      parsed = parseTask(operation, task);
    } catch (error) {
      if (error instanceof DepotError) return reply(400, { ok: false, error: { ...errorBody(error), ...(error.field ? { field: error.field } : {}) } });
      throw error;
    }
    const unknown = namedDrivers(operation, parsed).find(({ driver }) => !this.drivers.has(driver));
    if (unknown) return reply(400, failure('unknown_driver', `no driver named '${unknown.driver}' is configured`, unknown.field));
    try {
      const handle = await this.manager.enqueue(operation, task as Record<string, unknown>, jobOptions);
      if (handle.existed) return await this.taken(handle.taskId, reply);
      reply(202, { ok: true, taskId: handle.taskId, jobId: handle.jobId });
    } catch (error) {
      if (error instanceof DepotError && error.code === 'conflict') return this.taken(String((task as { taskId?: unknown }).taskId), reply);
      const e = { ...errorBody(error), ...(error instanceof DepotError && error.field ? { field: error.field } : {}) };
      reply(e.code === 'invalid_task' ? 400 : 503, { ok: false, error: e });
    }
  }

  async status(taskId: string, reply: Reply): Promise<void> {
    const job = await this.find(taskId);
    if (!job) return reply(404, failure('not_found', `no task ${taskId} (unknown, or finished and removed)`, 'taskId'));
    reply(200, await within(describe(job, taskId), this.answerMs, 'the task'));
  }

  /** CONTRACT §6: a taskId that exists is never queued again, nor silently accepted: 409 with that task as GET shows it. */
  private async taken(taskId: string, reply: Reply): Promise<void> {
    const job = await this.find(taskId);
    const body = failure('conflict', `task ${taskId} already exists; choose another taskId`, 'taskId');
    reply(409, job ? { ...body, task: await within(describe(job, taskId), this.answerMs, 'the task') } : body);
  }

  /** The job of a taskId; none for what cannot be a taskId, so no request reads another key of the queue. */
  private async find(taskId: string): Promise<Job | undefined> {
    if (taskIdProblem(taskId)) return undefined;
    return within(this.queue.getJob(jobIdFor(taskId)), this.answerMs, 'the task');
  }

  /**
   * CONTRACT §2: over HTTP, a path source or target must lie in `paths.allowed`
   * (and none is taken when it is not set). Checked on the path as written; the
   * worker checks it again with symlinks resolved.
   */
  private refusedPath(task: Record<string, unknown>): { field: string; message: string } | undefined {
    const source = task.source as { path?: unknown } | undefined;
    const target = task.target as { path?: unknown } | undefined;
    for (const [field, value] of [
      ['source.path', source?.path],
      ['target.path', target?.path],
    ] as const) {
      if (typeof value !== 'string') continue;
      if (!this.allowedPaths?.length) return { field, message: 'the HTTP API takes no paths unless paths.allowed is configured' };
      const resolved = path.resolve(value);
      if (!this.allowedPaths.some((dir) => resolved === path.resolve(dir) || resolved.startsWith(path.resolve(dir) + path.sep))) {
        return { field, message: 'must lie inside one of paths.allowed' };
      }
    }
    return undefined;
  }
}

async function describe(job: Job, taskId: string): Promise<Record<string, unknown>> {
  const state = await job.getState();
  const out: Record<string, unknown> = { ok: true, taskId, jobId: job.id, operation: job.name, state, attempts: job.attemptsMade };
  if (typeof job.progress === 'object' && job.progress !== null) out.progress = job.progress;
  // The result is the producer's own, as the worker made it (secrets masked); a failure may quote anything, so is shown as the dashboard shows it.
  if (state === 'completed') out.result = job.returnvalue;
  if (state === 'failed') out.error = failureFromReason(shownText(job.failedReason ?? '')).toJSON();
  return out;
}

/** Only what a producer may choose: a priority and a delay. */
function parseOptions(options: unknown): { priority?: number; delay?: number } | string {
  // PHP's json_encode writes an empty options array as [].
  if (options === undefined || (Array.isArray(options) && options.length === 0)) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return 'must be an object';
  const { priority, delay, ...rest } = options as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length) return `unknown option ${unknown[0]} (allowed: priority, delay)`;
  if (priority !== undefined && (!Number.isInteger(priority) || (priority as number) < 0 || (priority as number) > 2_097_152))
    return 'priority must be an integer from 0 to 2097152';
  if (delay !== undefined && (!Number.isInteger(delay) || (delay as number) < 0)) return 'delay must be a non-negative integer of milliseconds';
  return { ...(priority !== undefined ? { priority: priority as number } : {}), ...(delay !== undefined ? { delay: delay as number } : {}) };
}

function failure(code: string, message: string, field: string): { ok: false; error: { code: string; message: string; field: string } } {
  return { ok: false, error: { code, message: `${field}: ${message}`, field } };
}

function readBody(request: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.off('data', onData);
        request.pause();
        reject(new DepotError('invalid_task', 'body too large'));
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}
