import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FieldIssue } from '../contract';
import type { Redactor } from '../support/redaction';

/**
 * Secrets come only from `${ENV}` references or `<field>File` files (CONTRACT §7):
 * a literal credential in a config file is refused, so it cannot end up in a
 * repository or a backup of the config. Every resolved value is handed to the
 * redactor before anything can print it.
 */
const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const WHOLE_ENV_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

export interface SecretContext {
  env: NodeJS.ProcessEnv;
  /** Directory relative `*File` paths are resolved against: the config file's. */
  baseDir: string;
  redactor: Redactor;
  issues: FieldIssue[];
}

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Resolves `field` / `fieldFile` in `holder` in place. */
export function resolveSecretField(holder: unknown, field: string, at: string, ctx: SecretContext): void {
  if (!isObject(holder)) return;
  const fileField = `${field}File`;
  const hasValue = holder[field] !== undefined;
  const hasFile = holder[fileField] !== undefined;
  if (hasValue && hasFile) {
    ctx.issues.push({ field: `${at}.${field}`, message: `give either ${field} or ${fileField}, not both` });
    return;
  }
  if (hasFile) {
    const value = readSecretFile(holder[fileField], `${at}.${fileField}`, ctx);
    delete holder[fileField];
    if (value !== undefined) holder[field] = value;
  } else if (hasValue) {
    const value = fromEnvReference(holder[field], `${at}.${field}`, ctx);
    if (value !== undefined) holder[field] = value;
  }
}

/**
 * A list whose every entry is a secret (`http.tokens`), or `<field>File` with
 * one per line. An entry that is an object (a named token) has its own
 * `token` / `tokenFile` resolved and stays an object.
 */
export function resolveSecretList(holder: unknown, field: string, at: string, ctx: SecretContext): void {
  if (!isObject(holder)) return;
  const fileField = `${field}File`;
  const list: unknown[] = [];
  if (holder[field] !== undefined) {
    if (!Array.isArray(holder[field])) {
      ctx.issues.push({ field: `${at}.${field}`, message: 'must be a list' });
      return;
    }
    (holder[field] as unknown[]).forEach((entry, i) => {
      if (isObject(entry)) {
        // A named http token (CONTRACT §9): its `token` or `tokenFile` is the secret; name and scope are not.
        resolveSecretField(entry, 'token', `${at}.${field}[${i}]`, ctx);
        list.push(entry);
        return;
      }
      const value = fromEnvReference(entry, `${at}.${field}[${i}]`, ctx);
      if (value !== undefined) list.push(value);
    });
  }
  if (holder[fileField] !== undefined) {
    const text = readSecretFile(holder[fileField], `${at}.${fileField}`, ctx);
    delete holder[fileField];
    for (const line of (text ?? '').split(/\r?\n/).map((l) => l.trim())) {
      if (line) {
        ctx.redactor.add(line);
        list.push(line);
      }
    }
  }
  if (list.length > 0 || holder[field] !== undefined) holder[field] = list;
}

function fromEnvReference(raw: unknown, field: string, ctx: SecretContext): string | undefined {
  if (typeof raw !== 'string') {
    ctx.issues.push({ field, message: 'must be a string' });
    return undefined;
  }
  const match = WHOLE_ENV_REF.exec(raw);
  if (!match) {
    // The message must not echo the value: it is probably the credential itself.
    ctx.issues.push({ field, message: 'a secret must be an ${ENV_VAR} reference or come from a file field, not a literal value' });
    return undefined;
  }
  const value = ctx.env[match[1]];
  if (value === undefined || value === '') {
    ctx.issues.push({ field, message: `environment variable ${match[1]} is not set` });
    return undefined;
  }
  ctx.redactor.add(value);
  return value;
}

/** A secret file's text (one trailing newline removed), registered with the redactor; issues go to `ctx`. */
export function readSecretFile(raw: unknown, field: string, ctx: SecretContext): string | undefined {
  if (typeof raw !== 'string' || raw === '') {
    ctx.issues.push({ field, message: 'must be a file path' });
    return undefined;
  }
  const file = path.resolve(ctx.baseDir, interpolate(raw, field, ctx));
  let text: string;
  try {
    text = readRegularFile(file);
  } catch (error) {
    const reason = error instanceof NotRegularFile ? error.message : `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`;
    ctx.issues.push({ field, message: reason });
    return undefined;
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') {
    ctx.issues.push({ field, message: `${file} is empty` });
    return undefined;
  }
  ctx.redactor.add(value);
  return value;
}

class NotRegularFile extends Error {}

/**
 * A secret file's text. Opened without blocking and checked before reading: a
 * FIFO would block start-up until someone writes to it, and a device could be
 * read without end, so anything but a regular file is refused.
 */
function readRegularFile(file: string): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw new NotRegularFile(`${file} is not a regular file`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** `${VAR}` inside an ordinary (non-secret) string value. */
export function interpolate(value: string, field: string, ctx: SecretContext): string {
  return value.replace(ENV_REF, (whole, name: string) => {
    const found = ctx.env[name];
    if (found === undefined) {
      ctx.issues.push({ field, message: `environment variable ${name} is not set` });
      return whole;
    }
    return found;
  });
}

/** Interpolates every string below `value` in place, except the secret fields in `skip` (resolved on their own). */
export function interpolateAll(value: unknown, at: string, ctx: SecretContext, skip: ReadonlySet<string>): unknown {
  if (skip.has(at)) return value;
  if (typeof value === 'string') return interpolate(value, at, ctx);
  if (Array.isArray(value)) return value.map((v, i) => interpolateAll(v, `${at}[${i}]`, ctx, skip));
  if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) value[k] = interpolateAll(v, at ? `${at}.${k}` : k, ctx, skip);
  }
  return value;
}
