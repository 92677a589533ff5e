import { z } from 'zod';
import { isForbiddenUrl } from '../support/address-guard';
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
/** The job name of depot's own scheduled fixity run (CONTRACT §8); not a task for producers. */
export const FIXITY_OPERATION = 'verify';

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
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.problem });
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

/**
 * Webhook deliveries are refused to forbidden addresses (link-local, metadata
 * services); a literal one is refused here already, so the producer hears of
 * it when queueing. Host names are left to delivery, which checks what they
 * resolve to at every attempt: a check at enqueue would hold only for that
 * moment's DNS, and make queueing wait on it.
 */
const callbackUrl = httpUrl.refine((v) => !URL.canParse(v) || !isForbiddenUrl(new URL(v)), {
  message: 'must not point to a link-local or otherwise forbidden address (169.254.0.0/16, fe80::/10, metadata services)',
});

export const storageRefSchema = z.strictObject({ driver: driverName, key: archiveKey });
export type StorageRef = z.infer<typeof storageRefSchema>;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * A map of names to values as producers send it. zod would drop an own
 * `__proto__` key (JSON can carry one) without a word: refused, so the task
 * stays what was sent. PHP's json_encode writes an empty map as `[]`: taken as
 * an empty map, not a list.
 */
function nameMap<V extends z.ZodType<unknown, unknown>>(value: V) {
  return z.preprocess(
    (input, ctx) => {
      // `continue`: the map's own checks still run and are reported too.
      if (typeof input === 'object' && input !== null && Object.hasOwn(input, '__proto__'))
        ctx.addIssue({ code: 'custom', message: "must not have a key '__proto__'", continue: true });
      return Array.isArray(input) && input.length === 0 ? {} : input;
    },
    z.record(z.string(), value, {
      error: (issue) => (issue.code === 'invalid_type' ? 'must be an object of names to values (PHP: an associative array)' : undefined),
    }),
  );
}

/** At most this many strings in one metadata value that is a list (CONTRACT §8). */
export const MAX_METADATA_LIST = 1000;

/** One metadata value: a string, or a list of strings for an archive that holds several people's data (CONTRACT §8). */
export type MetadataValue = string | string[];
export type Metadata = Record<string, MetadataValue>;

/**
 * A scalar metadata value is stored as a string; PHP writes numbers and
 * booleans as JSON numbers and booleans (`courseId: 12`), stored as their
 * string form (`"12"`, `"true"`).
 */
const scalar = (error: string) => z.union([z.string(), z.number(), z.boolean()], { error }).transform((v) => String(v));
const metadataScalar = scalar('must be a string, number, boolean or a list of them');

/**
 * Metadata values are strings or lists of at most MAX_METADATA_LIST strings
 * (CONTRACT §8: a quiz archive with all its attempts names every userId).
 * List entries follow the scalars' rule, so PHP's `userIds: [34, 35]` is
 * `["34", "35"]`; null, objects and lists inside lists are refused.
 */
const metadataList = z.array(scalar('must be a string, number or boolean')).max(MAX_METADATA_LIST, `must be a list of at most ${MAX_METADATA_LIST} values`);
const metadataValue = z.unknown().transform((value, ctx): MetadataValue => {
  // Chosen by shape, so a problem is told as it is (a list too long, an entry that is null), not as "none of the forms".
  const parsed = Array.isArray(value) ? metadataList.safeParse(value) : metadataScalar.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue({ ...issue });
  return z.NEVER;
});
const metadata = nameMap(metadataValue);

// RFC 9110 field names are tokens; values are what Node sends (it throws on the rest, which would be retried as internal).
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const headers = nameMap(z.string()).superRefine((value, ctx) => {
  for (const [name, text] of Object.entries(value)) {
    // A bad name is reported on `headers`: in the field's path it could break the `<field>: <message>` line.
    if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(name)} is not a valid HTTP header name`, path: [] });
    else if (!HEADER_VALUE.test(text))
      ctx.addIssue({ code: 'custom', message: 'must not contain CR, LF or other characters illegal in an HTTP header', path: [name] });
  }
});

/**
 * A spool file's id (CONTRACT §9): 256 random bits in hex, a '-', then the
 * taskId it was made for. Only `depot serve` creates one, for a multipart
 * upload; the worker takes it only for that taskId and opens it only inside
 * `http.spoolDir` (src/archiving/spool-source.ts). It cannot hold a '/',
 * so it never names anything but a file directly in the spool.
 */
export const SPOOL_ID = /^[0-9a-f]{64}-[A-Za-z0-9._-]{1,128}$/;

const SOURCE_KINDS = {
  path: z.strictObject({ path: z.string().min(1, 'must not be empty') }),
  spool: z.strictObject({ spool: z.string().regex(SPOOL_ID, 'is not a spool id made by depot serve') }),
  url: z.strictObject({ url: httpUrl, headers: headers.optional() }),
  base64: z.strictObject({ base64: z.string().refine((v) => v.length % 4 === 0 && BASE64.test(v), 'must be base64') }),
};
type SourceKind = keyof typeof SOURCE_KINDS;
const SOURCE_MESSAGE = 'must be exactly one of { path }, { url, headers? } or { base64 }';

/**
 * One of the three sources, chosen by its key, so that a problem is reported
 * on the field it is in (`source.headers: …`), not as "none of the three".
 */
export const sourceSchema = z.unknown().transform((value, ctx): z.infer<(typeof SOURCE_KINDS)[SourceKind]> => {
  const kinds =
    typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (Object.keys(SOURCE_KINDS) as SourceKind[]).filter((k) => Object.hasOwn(value, k))
      : [];
  if (kinds.length !== 1) {
    ctx.addIssue({ code: 'custom', message: SOURCE_MESSAGE });
    return z.NEVER;
  }
  const parsed = SOURCE_KINDS[kinds[0]].safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue({ ...issue });
  return z.NEVER;
});
export type Source = z.infer<typeof sourceSchema>;

export const storeTaskSchema = z
  .strictObject({
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
    metadata: metadata.optional(),
    retainUntil: instant.optional(),
    deleteAfter: instant.optional(),
    callbackUrl: callbackUrl.optional(),
  })
  .superRefine((task, ctx) => {
    // A spool file is made for one task: another task (a producer that learnt an id) cannot take it.
    if ('spool' in task.source && !task.source.spool.endsWith(`-${task.taskId ?? ''}`))
      ctx.addIssue({ code: 'custom', message: 'belongs to another task: a spool source is made by depot serve for its own taskId', path: ['source', 'spool'] });
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

/** A driver a task names, and the field that names it (`driver`, `fallbacks[1]`, `ref.driver`). */
export interface NamedDriver {
  field: string;
  driver: string;
}

/** Every driver a valid task names itself; a store's default driver and configured fallbacks are not among them. */
export function namedDrivers<O extends Operation>(operation: O, task: TaskByOperation[O]): NamedDriver[] {
  const t = task as Partial<StoreTask & RetrieveTask & CheckTask>;
  const named: NamedDriver[] = [];
  if ((operation === 'store' || operation === 'check') && t.driver !== undefined) named.push({ field: 'driver', driver: t.driver });
  if (operation === 'store') (t.fallbacks ?? []).forEach((driver, i) => named.push({ field: `fallbacks[${i}]`, driver }));
  if ((operation === 'retrieve' || operation === 'delete') && t.ref) named.push({ field: 'ref.driver', driver: t.ref.driver });
  return named;
}
