import type { Job } from 'bullmq';
import { HIDDEN, withoutUrlCredentials } from '../contract/finished-task';
import { redactor } from '../support/redaction';

/**
 * Field names whose values are credentials wherever they appear in job data
 * (producers' tasks, webhook deliveries, whatever a plain BullMQ producer
 * added): shown as `***`.
 */
const CREDENTIAL_FIELD = /password|passwd|secret|token|authorization|cookie|signature|credential|api[-_]?key|^mac$/i;
const URL_IN_TEXT = /https?:\/\/[^\s"'<>]+/g;

/** Text as it may be shown: configured secrets masked, URLs without their query values and user info. */
export function shownText(text: string): string {
  return redactor.redact(text).replace(URL_IN_TEXT, (url) => withoutUrlCredentials(url));
}

/**
 * A value of a job (its data, its result) as the dashboard shows it: no
 * credentials (`headers` values, fields named like credentials, URL query
 * values), and inline archive bytes (`base64`) as their size only.
 */
export function shownValue(value: unknown): unknown {
  return walk(value, undefined);
}

function walk(value: unknown, key: string | undefined): unknown {
  if (typeof value === 'string') {
    if (key === 'base64') return `(${Buffer.byteLength(value, 'base64')} bytes inline, not shown)`;
    if (key !== undefined && CREDENTIAL_FIELD.test(key)) return HIDDEN;
    return shownText(value);
  }
  if (Array.isArray(value)) return value.map((item) => walk(item, undefined));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [name, item] of Object.entries(value)) {
    // Header values are credentials more often than not (Authorization, Cookie, X-Api-Key …).
    out[name] = key === 'headers' && typeof item === 'string' ? HIDDEN : walk(item, name);
  }
  return out;
}

/**
 * A stack trace as it may be shown: its first line (the error and its
 * message), without the frames, which name the install's paths. The message
 * is in the logs with its context; the frames are for a developer's debugger.
 */
export function shownStack(stack: string): string {
  return shownText(stack.split('\n', 1)[0]);
}

/** What `job.toJSON()` gives, as the dashboard may show it: data, result, failure and stack traces shown as above. */
export function shownJobJson(job: Job): ReturnType<Job['toJSON']> {
  const json = job.toJSON();
  return {
    ...json,
    data: shownValue(json.data),
    returnvalue: shownValue(json.returnvalue),
    failedReason: typeof json.failedReason === 'string' ? shownText(json.failedReason) : json.failedReason,
    stacktrace: Array.isArray(json.stacktrace) ? json.stacktrace.map((entry) => (typeof entry === 'string' ? shownStack(entry) : entry)) : json.stacktrace,
    ...(typeof json.deferredFailure === 'string' ? { deferredFailure: shownText(json.deferredFailure) } : {}),
  };
}
