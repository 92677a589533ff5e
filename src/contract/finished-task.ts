import { createHash } from 'node:crypto';

/** What stands where a credential was. */
export const HIDDEN = '***';

/**
 * A URL as it may be shown, and kept once used: query values (a Moodle
 * pluginfile URL carries its token as `?token=`), user info and fragment
 * hidden; origin, path and query names stay, so it still says where it led.
 * A query part without `=` may be a bare token: hidden whole. Anything that is
 * not an http(s) URL is returned as it is.
 */
export function withoutUrlCredentials(text: string): string {
  if (!URL.canParse(text)) return text;
  const url = new URL(text);
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (!url.search && !url.username && !url.password && !url.hash)) return text;
  if (url.username) url.username = HIDDEN;
  if (url.password) url.password = HIDDEN;
  url.hash = '';
  const query = url.search.slice(1);
  url.search = query
    ? `?${query
        .split('&')
        .map((part) => (part.includes('=') ? `${part.slice(0, part.indexOf('='))}=${HIDDEN}` : HIDDEN))
        .join('&')}`
    : '';
  return url.href;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A task's job data once the task has completed: what only running it needed
 * is dropped. A URL source's credentials (query values, header values) and the
 * callbackUrl's query are hidden; an inline source's bytes become
 * `{ inline: { bytes, sha256 } }`. Taken from the job when it has completed —
 * never before: a run after a crash needs all of it. The same task always
 * gives the same result (so a producer adding it again can be told it is the
 * same task), and applying it twice changes nothing. Data that is no task
 * (a plain producer's) is left as it is where it has none of these fields.
 */
export function finishedTaskData(data: unknown): unknown {
  if (!isRecord(data)) return data;
  const out: Record<string, unknown> = { ...data };
  if (isRecord(data.source)) out.source = finishedSource(data.source);
  if (typeof data.callbackUrl === 'string') out.callbackUrl = withoutUrlCredentials(data.callbackUrl);
  return out;
}

function finishedSource(source: Record<string, unknown>): Record<string, unknown> {
  const { base64, headers, ...rest } = source;
  const out: Record<string, unknown> = { ...rest };
  if (typeof base64 === 'string') {
    const bytes = Buffer.from(base64, 'base64');
    out.inline = { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  } else if (base64 !== undefined) {
    out.base64 = base64;
  }
  if (typeof rest.url === 'string') out.url = withoutUrlCredentials(rest.url);
  if (isRecord(headers)) out.headers = Object.fromEntries(Object.keys(headers).map((name) => [name, HIDDEN]));
  else if (headers !== undefined) out.headers = headers;
  return out;
}
