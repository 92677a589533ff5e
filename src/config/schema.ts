import { z } from 'zod';
import { DEFAULT_CATALOG_URL } from '../catalog/location';
import { DEFAULT_INLINE_RESULT_SECONDS, DEFAULT_RETENTION, Retention } from '../queue/job-options';

/** CONTRACT §7: everything but the per-type driver settings, which each driver definition checks. */
const name = z.string().min(1, 'must not be empty').max(64, 'must be at most 64 characters');

const hostName = z.string().min(1).max(253);

/**
 * Names every JavaScript object already has (`constructor`, `__proto__`,
 * `toString`, …): a driver so named would be confused with them wherever names
 * are looked up, and zod drops a `__proto__` key without a word. Refused.
 */
export function reservedNameProblem(value: string): string | null {
  return Object.hasOwn(Object.prototype, value) ? `'${value}' is a name every JavaScript object has; choose another driver name` : null;
}

/** Finished jobs kept in Redis: at most `count`, none older than `ageSeconds`. */
function retention(defaults: Retention) {
  return z
    .strictObject({
      count: z.number().int().min(1).max(10_000_000).default(defaults.count),
      ageSeconds: z
        .number()
        .int()
        .min(1)
        .max(10 * 366 * 24 * 3600)
        .default(defaults.ageSeconds),
    })
    .prefault({});
}

const redisNode = z.strictObject({ host: hostName, port: z.number().int().min(1).max(65535) });

/**
 * CONTRACT §10: one of three topologies — `url` (a single server), `sentinels`
 * with the master's `name`, or `cluster` (a few of its nodes; the rest are
 * discovered). Passwords only as `${ENV}` or `passwordFile` /
 * `sentinelPasswordFile` (GLOBAL_SECRET_FIELDS); a single server's go in its URL.
 */
const redisSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional(),
    sentinels: z.array(redisNode).min(1, 'must name at least one sentinel').max(32).optional(),
    /** The master group's name, as the sentinels know it (`sentinel monitor <name> …`). */
    name: z.string().min(1, 'must not be empty').max(200).optional(),
    cluster: z.array(redisNode).min(1, 'must name at least one node').max(64).optional(),
    username: z.string().min(1).max(200).optional(),
    password: z.string().min(1).optional(),
    sentinelPassword: z.string().min(1).optional(),
    db: z.number().int().min(0).max(255).optional(),
    tls: z.boolean().optional(),
  })
  .superRefine((r, ctx) => {
    const forms = (['url', 'sentinels', 'cluster'] as const).filter((form) => r[form] !== undefined);
    if (forms.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: forms.length ? [forms[1]] : [],
        message: forms.length ? `give one of url, sentinels or cluster, not ${forms.join(' and ')}` : 'must give url, sentinels (with name) or cluster',
      });
      return;
    }
    const onlyWith = (field: keyof typeof r, allowed: ReadonlyArray<(typeof forms)[number]>, why: string) => {
      if (r[field] !== undefined && !allowed.includes(forms[0])) ctx.addIssue({ code: 'custom', path: [field], message: why });
    };
    if (r.sentinels !== undefined && r.name === undefined)
      ctx.addIssue({ code: 'custom', path: ['name'], message: "required with sentinels: the master group's name" });
    onlyWith('name', ['sentinels'], 'only with sentinels');
    onlyWith('sentinelPassword', ['sentinels'], 'only with sentinels');
    onlyWith('db', ['sentinels'], 'only with sentinels (Redis Cluster has database 0 only; a single server takes it in its URL: redis://host:port/<db>)');
    for (const field of ['username', 'password', 'tls'] as const)
      onlyWith(field, ['sentinels', 'cluster'], 'only with sentinels or cluster: a single server takes it in its URL');
  });

/** What a scoped token may do (CONTRACT §9); each absent list allows everything of its kind. */
export const TOKEN_OPERATIONS = ['store', 'retrieve', 'delete', 'check', 'list', 'audit'] as const;
export type TokenOperation = (typeof TOKEN_OPERATIONS)[number];

const tokenSecret = z.string().min(16, 'must be at least 16 characters');
const namedToken = z.strictObject({
  /** Not secret: shown in the audit trail as `http:<name>`. */
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -'),
  token: tokenSecret,
  scope: z
    .strictObject({
      operations: z.array(z.enum(TOKEN_OPERATIONS)).min(1, 'must not be empty (leave it out for every operation)').optional(),
      drivers: z.array(name).min(1, 'must not be empty (leave it out for every driver)').optional(),
      /** Forced onto every store, required to match on every list, download, retrieve and delete. */
      metadata: z.record(z.string().min(1), z.string()).optional(),
    })
    .default({}),
});
export type NamedTokenConfig = z.infer<typeof namedToken>;

/** Chosen by shape, so that a problem is told where it is (`http.tokens[1].scope.drivers[0]`), not as "none of the forms". */
const tokenEntry = z.unknown().transform((value, ctx): string | NamedTokenConfig => {
  const parsed = typeof value === 'string' ? tokenSecret.safeParse(value) : namedToken.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue({ ...issue });
  return z.NEVER;
});

export const configSchema = z.strictObject({
  redis: redisSchema.optional(),
  queue: z
    .strictObject({
      name: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -')
        .default('depot'),
      prefix: z.string().min(1).max(64).default('bull'),
      concurrency: z.number().int().min(1).max(1000).default(4),
      attempts: z.number().int().min(1).max(100).default(5),
      backoffMs: z.number().int().min(0).max(3_600_000).default(1000),
      /** How long a worker's lock on a job lasts without renewal; a crashed worker's jobs come back after this. */
      lockDurationMs: z.number().int().min(1000).max(600_000).default(4_000),
      /** How often workers look for jobs whose worker died. */
      stalledIntervalMs: z.number().int().min(500).max(600_000).default(2_000),
      /** On SIGTERM, how long running tasks may finish before they are handed back to the queue. */
      shutdownGraceMs: z.number().int().min(0).max(600_000).default(30_000),
      /** How often archives past their deleteAfter are deleted; 0 turns automatic deletion off. */
      expiryIntervalMs: z
        .number()
        .int()
        .refine((v) => v === 0 || (v >= 60_000 && v <= 7 * 24 * 3_600_000), 'must be 0 (off) or between 60000 and 604800000')
        .default(3_600_000),
      keepCompleted: retention(DEFAULT_RETENTION.completed),
      keepFailed: retention(DEFAULT_RETENTION.failed),
      /** How long an inline retrieve's job, with the archive's bytes in its result, is kept once completed. */
      inlineResultSeconds: z.number().int().min(1).max(86_400).default(DEFAULT_INLINE_RESULT_SECONDS),
    })
    .prefault({}),
  defaultDriver: name.optional(),
  drivers: z.record(name, z.unknown()),
  failover: z.record(name, z.array(name)).default({}),
  callbacks: z
    .strictObject({
      url: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).optional(),
      secret: z.string().min(16, 'must be at least 16 characters').optional(),
      /** During a rotation: every secret signs each delivery (one `v1=` each); receivers accept any. */
      secrets: z.array(z.string().min(16, 'must be at least 16 characters')).min(1, 'must not be empty').max(8).optional(),
    })
    .refine((c) => c.secret === undefined || c.secrets === undefined, { message: 'give either secret or secrets, not both', path: ['secrets'] })
    .optional(),
  http: z
    .strictObject({
      port: z.number().int().min(0).max(65535).default(3000),
      host: z.string().default('127.0.0.1'),
      /** CONTRACT §9: a plain secret (named `token-<index>`, every scope) or a named token with a scope (`tokenFile` is read into `token` first). */
      tokens: z.array(tokenEntry).default([]),
      auth: z.strictObject({ user: z.string().min(1), password: z.string().min(1) }).optional(),
      /** CONTRACT §9: where multipart uploads are spooled for the worker (relative: to the config file's folder). */
      spoolDir: z.string().min(1).default('./data/spool'),
      /** CONTRACT §9: the largest file a multipart upload may carry; larger is 413. */
      maxUploadBytes: z
        .number()
        .int()
        .min(1)
        .default(16 * 1024 ** 3),
      /** An upload that sends no byte for this long is cut off (a slow client is fine, a stalled one is not). */
      uploadIdleMs: z.number().int().min(1000).max(3_600_000).default(60_000),
    })
    .superRefine((http, ctx) => {
      const seen = new Set<string>();
      http.tokens.forEach((entry, i) => {
        const tokenName = typeof entry === 'string' ? `token-${i}` : entry.name;
        if (seen.has(tokenName)) ctx.addIssue({ code: 'custom', message: `the token name '${tokenName}' is used twice`, path: ['tokens', i, 'name'] });
        seen.add(tokenName);
      });
    })
    .prefault({}),
  paths: z.strictObject({ allowed: z.array(z.string().min(1)).optional() }).prefault({}),
  sources: z
    .strictObject({
      allowedHosts: z.array(hostName).optional(),
      /** Connect, response and idle timeout of URL downloads. */
      timeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
      /** Bound on a whole URL download, first request to last byte (6 hours: 16 GiB at under 1 MB/s). */
      maxDurationMs: z
        .number()
        .int()
        .min(100)
        .max(7 * 24 * 3_600_000)
        .default(6 * 3_600_000),
      /** Bound on a URL download's bytes when the task declares no size. */
      maxBytes: z
        .number()
        .int()
        .min(1)
        .default(16 * 1024 ** 3),
    })
    .prefault({}),
  /** CONTRACT §8: `sqlite:<path>` or `postgres://…` (`catalog.urlFile` is read into `url` before this schema sees it). */
  catalog: z
    .strictObject({
      url: z
        .string()
        .regex(/^(sqlite:.|postgres(ql)?:\/\/)/, 'must be sqlite:<path> or a postgres:// URL')
        .default(DEFAULT_CATALOG_URL),
    })
    .prefault({}),
  /** CONTRACT §8: the scheduled fixity cycle; `intervalMs` 0 turns it off. */
  fixity: z
    .strictObject({
      intervalMs: z
        .number()
        .int()
        .refine((v) => v === 0 || (v >= 60_000 && v <= 7 * 24 * 3_600_000), 'must be 0 (off) or between 60000 and 604800000')
        .default(3_600_000),
      bytesPerSecond: z
        .number()
        .int()
        .min(1024)
        .default(8 * 1024 * 1024),
      cycleDays: z.number().min(1).max(3650).default(90),
    })
    .prefault({}),
  /** CONTRACT §10: `depot worker --processes N` restarts a dead child unless more than `maxRestarts` (all children together) fell within `windowMs`. */
  supervisor: z
    .strictObject({
      maxRestarts: z.number().int().min(0).max(10_000).default(5),
      windowMs: z.number().int().min(1_000).max(86_400_000).default(60_000),
    })
    .prefault({}),
  limits: z
    .strictObject({
      inlineBytes: z
        .number()
        .int()
        .min(0)
        .max(64 * 1024 * 1024)
        .default(1024 * 1024),
    })
    .prefault({}),
});

export type RawConfig = z.infer<typeof configSchema>;

/** Where secrets sit outside the drivers: `secret` or `secretFile`, and so on. */
export const GLOBAL_SECRET_FIELDS: ReadonlyArray<readonly string[]> = [
  ['redis', 'password'],
  ['redis', 'sentinelPassword'],
  ['callbacks', 'secret'],
  ['http', 'auth', 'password'],
];
/** Lists whose every entry is a secret. */
export const GLOBAL_SECRET_LISTS: ReadonlyArray<readonly string[]> = [
  ['http', 'tokens'],
  ['callbacks', 'secrets'],
];
