import { z } from 'zod';
import { archiveNameProblem, taskIdProblem } from './archive-name';
import { isCalendarDate, parseArchiveKey } from './archive-key';
import { DepotError } from './depot-error';
import { fieldIssues } from './field-issues';
import { taskIdTimeProblem } from './task-id';

/** The StorageTask jobs of CONTRACT §2: the job name is the operation, the data the task. */
export const OPERATIONS = ['store', 'retrieve', 'delete', 'check'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** The job name of depot's own scheduled automatic deletion run; not a task for producers. */
export const EXPIRE_OPERATION = 'expire';

const taskId = z.string().superRefine((value, ctx) => {
  const problem = taskIdProblem(value) ?? taskIdTimeProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const archiveName = z.string().superRefine((value, ctx) => {
  const problem = archiveNameProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const driverName = z.string().min(1, 'must not be empty').max(64, 'must be at most 64 characters');

const archiveKey = z.string().superRefine((value, ctx) => {
  const parsed = parseArchiveKey(value);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

// ISO 8601 date or date-time with zone; a bare local time would mean different moments on different workers.
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/;
const instant = z.string().refine((v) => ISO_INSTANT.test(v) && !Number.isNaN(Date.parse(v)) && isCalendarDate(v.slice(0, 10)), {
  message: 'must be an ISO 8601 date or date-time with a time zone (e.g. 2036-01-31T00:00:00Z)',
});

const httpUrl = z.string().refine(
  (v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  },
  { message: 'must be an http or https URL' },
);

const callbackUrl = httpUrl;

export const storageRefSchema = z.strictObject({ driver: driverName, key: archiveKey });
export type StorageRef = z.infer<typeof storageRefSchema>;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * A map of strings as the producer sent it. zod drops an own `__proto__` key
 * (JSON can carry one) without a word; refusing it keeps the task what was sent.
 */
function stringMap() {
  return z.preprocess((value, ctx) => {
    // `continue`: a union around it (the source) must still report this, not its own summary.
    if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) ctx.addIssue({ code: 'custom', message: "must not have a key '__proto__'", continue: true });
    return value;
  }, z.record(z.string(), z.string()));
}

// RFC 9110 field names are tokens; values are what Node sends (it throws on the rest, which would be retried as internal).
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const headers = stringMap().superRefine((value, ctx) => {
  for (const [name, text] of Object.entries(value)) {
    // A bad name is reported on `headers`: in the field's path it could break the `<field>: <message>` line.
    if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(name)} is not a valid HTTP header name`, path: [] });
    else if (!HEADER_VALUE.test(text)) ctx.addIssue({ code: 'custom', message: 'must not contain CR, LF or other characters illegal in an HTTP header', path: [name] });
  }
});

export const sourceSchema = z.union(
  [
    z.strictObject({ path: z.string().min(1, 'must not be empty') }),
    z.strictObject({ url: httpUrl, headers: headers.optional() }),
    z.strictObject({ base64: z.string().refine((v) => v.length % 4 === 0 && BASE64.test(v), 'must be base64') }),
  ],
  { error: 'must be exactly one of { path }, { url, headers? } or { base64 }' },
);
export type Source = z.infer<typeof sourceSchema>;

export const storeTaskSchema = z.strictObject({
  taskId: taskId.optional(),
  driver: driverName.optional(),
  fallbacks: z.array(driverName).max(16).optional(),
  source: sourceSchema,
  name: archiveName,
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
    .transform((v) => v.toLowerCase())
    .optional(),
  size: z.number().int('must be a whole number').nonnegative('must not be negative').optional(),
  metadata: stringMap().optional(),
  retainUntil: instant.optional(),
  deleteAfter: instant.optional(),
  callbackUrl: callbackUrl.optional(),
});
export type StoreTask = z.infer<typeof storeTaskSchema>;

export const retrieveTaskSchema = z.strictObject({
  taskId: taskId.optional(),
  ref: storageRefSchema,
  target: z.union([z.strictObject({ path: z.string().min(1, 'must not be empty') }), z.strictObject({ inline: z.literal(true) })], {
    error: 'must be { path } or { inline: true }',
  }),
  callbackUrl: callbackUrl.optional(),
});
export type RetrieveTask = z.infer<typeof retrieveTaskSchema>;

export const deleteTaskSchema = z.strictObject({
  taskId: taskId.optional(),
  ref: storageRefSchema,
  callbackUrl: callbackUrl.optional(),
});
export type DeleteTask = z.infer<typeof deleteTaskSchema>;

export const checkTaskSchema = z.strictObject({
  taskId: taskId.optional(),
  driver: driverName,
});
export type CheckTask = z.infer<typeof checkTaskSchema>;

export interface TaskByOperation {
  store: StoreTask;
  retrieve: RetrieveTask;
  delete: DeleteTask;
  check: CheckTask;
}

const schemas = {
  store: storeTaskSchema,
  retrieve: retrieveTaskSchema,
  delete: deleteTaskSchema,
  check: checkTaskSchema,
} as const;

/** Validates a task; the error is `invalid_task` and names the first wrong field. */
export function parseTask<O extends Operation>(operation: O, data: unknown): TaskByOperation[O] {
  const schema = isOperation(operation) ? schemas[operation] : undefined;
  if (!schema) throw new DepotError('invalid_task', `unknown operation '${String(operation)}'`, { field: 'name' });
  // A plain BullMQ producer can add any JSON as data, null included.
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new DepotError('invalid_task', 'must be an object: the task', { field: 'data' });
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const [first] = fieldIssues(parsed.error);
    throw new DepotError('invalid_task', first.message, { field: first.field });
  }
  return parsed.data as TaskByOperation[O];
}

export function isOperation(value: unknown): value is Operation {
  return typeof value === 'string' && (OPERATIONS as readonly string[]).includes(value);
}
