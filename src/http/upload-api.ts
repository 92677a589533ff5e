import type { IncomingMessage } from 'node:http';
import type { Job, Queue } from 'bullmq';
import { DepotError, ErrorCode, namedDrivers, newTaskId, parseTask, taskIdProblem } from '../contract';
import { jobIdFor } from '../queue/names';
import { errorBody } from '../support/error-handler';
import type { Logger } from '../support/logging';
import { redactor } from '../support/redaction';
import type { BearerAuth } from './bearer-auth';
import { MultipartError, MultipartReader } from './multipart';
import { sendError } from './reply';
import type { Exchange } from './router';
import { ReceivedFile, Spool, SpoolUse, UploadTooLarge } from './spool';
import { parseOptions, TaskApi } from './task-api';
import { ScopeRefusal, TaskScopes } from './task-scope';
import { within } from './within';

/** The `task` part: JSON, small. */
const TASK_PART_BYTES = 1024 * 1024;
/** What a form holds beside the file: the task part, boundaries, part headers. */
const FORM_OVERHEAD = TASK_PART_BYTES + 64 * 1024;

export interface UploadSettings {
  maxUploadBytes: number;
  /** An upload that sends nothing for this long is cut off. */
  idleMs: number;
  answerMs: number;
  driverNames: readonly string[];
}

/**
 * CONTRACT §9: `POST /v1/tasks` as `multipart/form-data`, part `task` (JSON
 * `{ operation: "store", task, options? }`, the task without `source`), then
 * part `file`. The task is checked (form, drivers, the token's scope, a
 * taskId that exists: 409) before a byte of the file is taken; the file is
 * streamed into the spool, hashed on arrival and fsynced; only a form that
 * closed properly, whose bytes match the task's `sha256`/`size`, is queued,
 * with source `{ spool: <id> }` and the received sha256 and size. Nothing is
 * queued, and no file stays, on any other path.
 */
export class UploadApi {
  private readonly drivers: ReadonlySet<string>;

  constructor(
    private readonly tasks: TaskApi,
    private readonly scopes: TaskScopes,
    private readonly bearer: BearerAuth,
    private readonly spool: Spool,
    private readonly settings: UploadSettings,
    private readonly logger: Logger,
  ) {
    this.drivers = new Set(settings.driverNames);
  }

  async create({ request, response }: Exchange, boundary: string): Promise<void> {
    const refuse = (status: number, code: ErrorCode, message: string, field?: string) => {
      // The rest of the body is not read: the connection goes once the answer is out.
      if (!request.readableEnded) {
        response.setHeader('connection', 'close');
        response.once('finish', () => request.destroy());
      }
      if (!response.headersSent) sendError(response, status, { code, message, ...(field ? { field } : {}) });
      else request.destroy();
    };
    const limit = this.settings.maxUploadBytes;
    if (Number(request.headers['content-length'] ?? 0) > limit + FORM_OVERHEAD)
      return refuse(413, 'invalid_task', `the upload is larger than http.maxUploadBytes (${limit} bytes)`, 'file');
    // A slow client is fine, one that stops sending is not: the socket's idle time is bounded while the body arrives.
    request.setTimeout(this.settings.idleMs, () => request.destroy(new Error(`no byte for ${this.settings.idleMs} ms`)));
    const token = this.bearer.token(request);
    let received: ReceivedFile | undefined;
    let queued = false;
    try {
      const reader = new MultipartReader(request, boundary);
      const first = await reader.nextPart();
      if (first?.name !== 'task') return refuse(400, 'invalid_task', 'the first part of the form must be "task" (JSON), then "file"', 'task');
      let body: unknown;
      try {
        body = JSON.parse(await reader.text(TASK_PART_BYTES));
      } catch (error) {
        if (error instanceof MultipartError) throw error;
        return refuse(400, 'invalid_task', 'is not JSON', 'task');
      }
      const { operation, task: raw, options } = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
      if (operation !== 'store') return refuse(400, 'invalid_task', 'a multipart upload is a store: operation must be "store"', 'operation');
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return refuse(400, 'invalid_task', 'must be an object', 'task');
      const task = raw as Record<string, unknown>;
      if (Object.hasOwn(task, 'source')) return refuse(400, 'invalid_task', 'a multipart upload has no source: the "file" part is the archive', 'task.source');
      const jobOptions = parseOptions(options);
      if (typeof jobOptions === 'string') return refuse(400, 'invalid_task', jobOptions, 'options');
      if (typeof task.taskId === 'string' && taskIdProblem(task.taskId)) return refuse(400, 'invalid_task', taskIdProblem(task.taskId) ?? '', 'task.taskId');
      const taskId = typeof task.taskId === 'string' ? task.taskId : newTaskId();
      const id = this.spool.newId(taskId);
      // Checked in full, as the worker will, before the file is taken.
      let parsed;
      try {
        parsed = parseTask('store', { ...task, taskId, source: { spool: id } });
      } catch (error) {
        if (error instanceof DepotError) return refuse(400, error.code, plainMessage(error), error.field);
        throw error;
      }
      const unknown = namedDrivers('store', parsed).find(({ driver }) => !this.drivers.has(driver));
      if (unknown) return refuse(400, 'unknown_driver', `no driver named '${unknown.driver}' is configured`, unknown.field);
      let scoped: Record<string, unknown>;
      try {
        scoped = await this.scopes.apply(token, 'store', parsed, { ...task, taskId });
      } catch (error) {
        if (error instanceof ScopeRefusal) return refuse(error.status, error.error.code, plainMessage(error.error), error.error.field);
        throw error;
      }
      if (await this.tasks.exists(taskId)) {
        response.setHeader('connection', 'close');
        response.once('finish', () => request.destroy());
        return await this.tasks.taken(taskId, response, token);
      }
      const second = await reader.nextPart();
      if (second?.name !== 'file') return refuse(400, 'invalid_task', 'the second part of the form must be "file"', 'file');
      await this.spool.prepare();
      received = await this.spool.receive(id, reader.body(), limit);
      if ((await reader.nextPart()) !== null) return refuse(400, 'invalid_task', 'the form holds more than "task" and "file"', 'file');
      request.setTimeout(0);
      const declared = parsed;
      if (declared.sha256 !== undefined && declared.sha256 !== received.sha256)
        return refuse(400, 'integrity', `the file's sha256 is ${received.sha256}, the task says ${declared.sha256}`, 'sha256');
      if (declared.size !== undefined && declared.size !== received.size)
        return refuse(400, 'integrity', `the file has ${received.size} bytes, the task says ${declared.size}`, 'size');
      const queuedTask = { ...scoped, source: { spool: id }, sha256: received.sha256, size: received.size };
      queued = await this.tasks.queueTask(response, 'store', queuedTask, jobOptions, token, { size: received.size, sha256: received.sha256 });
      if (queued) await received.commit();
    } catch (error) {
      if (error instanceof MultipartError) return refuse(400, 'invalid_task', error.message, 'body');
      if (error instanceof UploadTooLarge) return refuse(413, 'invalid_task', error.message, 'file');
      if (queued) {
        // The task is queued but its file could not be moved into the spool: it fails once its retries are spent.
        this.logger.error(`upload: spool file of a queued task not committed: ${redactor.redact((error as Error).message)}`);
        return;
      }
      if (request.destroyed || request.readableAborted) {
        this.logger.info(`upload cut off: ${redactor.redact((error as Error).message)}`);
        return refuse(400, 'invalid_task', 'the upload was cut off', 'body');
      }
      const body = errorBody(error);
      return refuse(503, body.code, body.message);
    } finally {
      request.setTimeout(0);
      if (!queued) await received?.discard().catch((e: Error) => this.logger.warn(`upload: spool file not removed: ${redactor.redact(e.message)}`));
      else if (received) this.spool.release(received.id);
    }
  }
}

/** The message without the `field: ` DepotError puts in front (the reply names the field on its own). */
function plainMessage(error: DepotError): string {
  return error.field && error.message.startsWith(`${error.field}: `) ? error.message.slice(error.field.length + 2) : error.message;
}

/** What the queue says of a spool id's job (for Spool.sweep and the end of a task). */
export async function spoolUse(queue: Queue, id: string, answerMs: number): Promise<SpoolUse> {
  const job: Job | undefined = await within(queue.getJob(jobIdFor(Spool.taskIdOf(id))), answerMs, 'the job of a spool file');
  const source = (job?.data as { source?: { spool?: unknown } } | undefined)?.source;
  if (!job || source?.spool !== id) return 'none';
  const state = await within(job.getState(), answerMs, 'the state of a job');
  return state === 'completed' || state === 'failed' || state === 'unknown' ? 'ended' : 'pending';
}

/** IncomingMessage carries no type for it: whether a POST is a form upload. */
export function isUpload(request: IncomingMessage): boolean {
  return /^multipart\/form-data\s*(;|$)/i.test(request.headers['content-type'] ?? '');
}
