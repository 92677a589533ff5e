import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Job, Queue } from 'bullmq';
import { ArchivingManager, failureFromReason } from '../archiving/manager';
import { DepotError, ErrorCode, isOperation, namedDrivers, parseTask, taskIdProblem } from '../contract';
import { jobIdFor } from '../queue/names';
import { errorBody } from '../support/error-handler';
import { isInsideRoot } from '../support/path-inside';
import { shownText } from './job-view';
import { sendError, sendJson } from './reply';
import type { Exchange } from './router';
import { within } from './within';
import type { HttpToken } from './token-scope';
import { ScopeRefusal, seesTask, TaskScopes } from './task-scope';

/** What a request body may hold beyond the largest inline archive (base64 grows it by a third). */
const BODY_OVERHEAD = 64 * 1024;

/**
 * CONTRACT §6 task API: `POST /v1/tasks` queues `{ operation, task, options? }`
 * (validated exactly as the queue's workers would: a bad task is 400 naming the
 * field, never queued; a taskId that exists is 409 with that task's state),
 * `GET /v1/tasks/:taskId` reports its state and result. Its routes are
 * `POST /v1/tasks`, `GET /v1/tasks/:taskId` and, for every other request
 * under /v1/tasks, `* /v1/tasks/*` (`otherRequest`), all behind bearer tokens.
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
    /** The request's bearer token: tasks are audited as `http:<name>` (CONTRACT §8), its scope limits them (CONTRACT §9). */
    private readonly tokenOf: (request: IncomingMessage) => HttpToken | undefined,
    private readonly scopes: TaskScopes,
    private readonly defaultDriver: string,
  ) {
    this.bodyLimit = Math.ceil((inlineBytes * 4) / 3) + BODY_OVERHEAD;
    this.drivers = new Set(driverNames);
  }

  /** `POST /v1/tasks`. Producers' paths are checked against paths.allowed here too (CONTRACT §2). */
  async create({ request, response }: Exchange): Promise<void> {
    const refuse = (status: number, code: ErrorCode, field: string, message: string) => sendError(response, status, new DepotError(code, message, { field }));
    const tooLarge = () => refuse(413, 'invalid_task', 'body', `the body is larger than ${this.bodyLimit} bytes`);
    const closeAfterReply = () => {
      response.setHeader('connection', 'close');
      response.once('finish', () => request.socket.destroy());
    };
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
      return refuse(400, 'invalid_task', 'body', 'is not JSON');
    }
    const { operation, task, options } = (typeof body === 'object' && body !== null ? body : {}) as { operation?: unknown; task?: unknown; options?: unknown };
    if (typeof operation !== 'string' || !isOperation(operation))
      return refuse(400, 'invalid_task', 'operation', 'must be one of store, retrieve, delete, check');
    if (typeof task !== 'object' || task === null || Array.isArray(task)) return refuse(400, 'invalid_task', 'task', 'must be an object');
    const jobOptions = parseOptions(options);
    if (typeof jobOptions === 'string') return refuse(400, 'invalid_task', 'options', jobOptions);
    const refused = this.refusedPath(task as Record<string, unknown>);
    if (refused) return refuse(400, 'invalid_task', refused.field, refused.message);
    // CONTRACT §9: a spool file is only ever named by depot serve itself, for the file of a multipart upload.
    if (typeof (task as { source?: unknown }).source === 'object' && Object.hasOwn((task as { source: object }).source ?? {}, 'spool'))
      return refuse(400, 'invalid_task', 'source.spool', 'is made by depot serve for a multipart upload only; send the file as multipart/form-data');
    // Validated as the worker would, first, so a task that is wrong in several ways is told about its form first.
    let parsed;
    try {
      parsed = parseTask(operation, task);
    } catch (error) {
      if (error instanceof DepotError) return sendError(response, 400, { ...errorBody(error), field: error.field });
      throw error;
    }
    const unknown = namedDrivers(operation, parsed).find(({ driver }) => !this.drivers.has(driver));
    if (unknown) return refuse(400, 'unknown_driver', unknown.field, `no driver named '${unknown.driver}' is configured`);
    const token = this.tokenOf(request);
    let scoped: Record<string, unknown>;
    try {
      scoped = await this.scopes.apply(token, operation, parsed, task as Record<string, unknown>);
    } catch (error) {
      if (error instanceof ScopeRefusal) return sendError(response, error.status, { ...errorBody(error.error), field: error.error.field });
      throw error;
    }
    await this.queueTask(response, operation, scoped, jobOptions, token);
  }

  /**
   * Queues a task that was checked and scoped: 202 `{ taskId, jobId }` and
   * `more`; a taskId that exists is 409 (CONTRACT §6). Returns whether it was queued.
   */
  async queueTask(
    response: ServerResponse,
    operation: Parameters<ArchivingManager['enqueue']>[0],
    task: Record<string, unknown>,
    jobOptions: { priority?: number; delay?: number },
    token: HttpToken | undefined,
    more: Record<string, unknown> = {},
  ): Promise<boolean> {
    try {
      const handle = await this.manager.enqueue(operation, task, jobOptions, token ? { actor: `http:${token.name}` } : undefined);
      if (handle.existed) {
        await this.taken(handle.taskId, response, token);
        return false;
      }
      sendJson(response, 202, { ok: true, taskId: handle.taskId, jobId: handle.jobId, ...more });
      return true;
    } catch (error) {
      if (error instanceof DepotError && error.code === 'conflict') {
        await this.taken(String(task.taskId), response, token);
        return false;
      }
      const e = { ...errorBody(error), field: error instanceof DepotError ? error.field : undefined };
      sendError(response, e.code === 'invalid_task' ? 400 : 503, e);
      return false;
    }
  }

  /** Whether a job holds this taskId already (a multipart upload is answered 409 before its file is received). */
  async exists(taskId: string): Promise<boolean> {
    return (await this.find(taskId)) !== undefined;
  }

  /** `GET /v1/tasks/:taskId`: a task outside the token's scope is unknown to it. */
  async status({ request, response, params }: Exchange): Promise<void> {
    const { taskId } = params;
    const job = await this.find(taskId);
    if (!job || !seesTask(this.tokenOf(request), job, this.defaultDriver))
      return sendError(response, 404, new DepotError('not_found', `no task ${taskId} (unknown, or finished and removed)`, { field: 'taskId' }));
    sendJson(response, 200, await within(describe(job, taskId, this.queue), this.answerMs, 'the task'));
  }

  /**
   * Every other request under /v1/tasks, answered as since the task API began
   * (the route table's generic 404 and 405 came later): a rest of the path that
   * is not valid percent-encoding is 404 `not_found`, an empty taskId
   * (`/v1/tasks/`) 404 `invalid_task`, anything else 405 `invalid_task`
   * without an Allow header.
   */
  otherRequest({ request, response, path, params }: Exchange): void {
    let taskId: string;
    try {
      taskId = decodeURIComponent(params['*']);
    } catch {
      return sendError(response, 404, { code: 'not_found', message: 'not a task id' });
    }
    sendError(response, path === '/v1/tasks' || taskId ? 405 : 404, { code: 'invalid_task', message: `${request.method} ${path} is not a route` });
  }

  /** CONTRACT §6: a taskId that exists is never queued again, nor silently accepted: 409 with that task as GET shows it. */
  async taken(taskId: string, response: ServerResponse, token: HttpToken | undefined): Promise<void> {
    const job = await this.find(taskId);
    const error = new DepotError('conflict', `task ${taskId} already exists; choose another taskId`, { field: 'taskId' });
    // Another site's task is not shown (CONTRACT §9): only that the taskId is taken.
    const shown = job && seesTask(token, job, this.defaultDriver);
    sendError(response, 409, error, shown ? { body: { task: await within(describe(job, taskId, this.queue), this.answerMs, 'the task') } } : {});
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
      if (!this.allowedPaths.some((root) => isInsideRoot(resolved, path.resolve(root)))) {
        return { field, message: 'must lie inside one of paths.allowed' };
      }
    }
    return undefined;
  }
}

async function describe(read: Job, taskId: string, queue: Queue): Promise<Record<string, unknown>> {
  const state = await read.getState();
  // Read while it still ran, finished by the time its state was asked: its result and failure are read again.
  const job = (state === 'completed' || state === 'failed') && read.finishedOn === undefined ? ((await queue.getJob(read.id ?? '')) ?? read) : read;
  const out: Record<string, unknown> = { ok: true, taskId, jobId: job.id, operation: job.name, state, attempts: job.attemptsMade };
  if (typeof job.progress === 'object' && job.progress !== null) out.progress = job.progress;
  // The result is the producer's own, as the worker made it (secrets masked); a failure may quote anything, so is shown as the dashboard shows it.
  if (state === 'completed') out.result = job.returnvalue;
  if (state === 'failed') out.error = failureFromReason(shownText(job.failedReason ?? '')).toJSON();
  return out;
}

/** Only what a producer may choose: a priority and a delay. */
export function parseOptions(options: unknown): { priority?: number; delay?: number } | string {
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
