import { createReadStream } from 'node:fs';
import http, { IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable, Transform } from 'node:stream';
import { pipeInto, STREAM_CHUNK } from '../storage/hashing-stream';
import { DepotError, Source } from '../contract';
import type { LocalFile } from '../storage/driver';
import { openSourceFile } from './path-policy';
import { openSpoolFile } from './spool-source';
import { guardedLookup } from '../support/address-guard';
import { checkSourceUrl } from './url-policy';
import { ignoreErrorEvents } from '../support/ignore';

export interface SourcePolicy {
  allowedPaths?: string[];
  /** config `http.spoolDir` (absolute): where `{ spool }` sources are (CONTRACT §9). */
  spoolDir?: string;
  allowedHosts?: string[];
  inlineBytes: number;
  /** Connect, response and idle timeout of URL downloads. */
  timeoutMs: number;
  /** Bound on a whole URL download, from the request to the last byte: a source that drips holds no worker slot beyond it. */
  maxDurationMs: number;
  /** Bound on a URL download's bytes when the task declares no `size` (with one, the size itself is the bound). */
  maxBytes: number;
}

export interface OpenedSource {
  stream: Readable;
  /** Known in advance for files, inline data and downloads with Content-Length. */
  totalBytes?: number;
  /** Path and spool sources: the file itself, which a driver may copy without reading `stream` (storeFile). */
  file?: LocalFile;
}

const MAX_REDIRECTS = 5;

/** Opens a store task's source as a stream; each retry opens it anew. `declaredSize` is the task's `size`, if any. */
export async function openSource(source: Source, policy: SourcePolicy, signal: AbortSignal, declaredSize?: number): Promise<OpenedSource> {
  let opened: OpenedSource;
  if ('path' in source) opened = await openPath(source.path, policy);
  else if ('spool' in source) opened = await openSpoolFile(source.spool, policy.spoolDir);
  else if ('base64' in source) opened = openInline(source.base64, policy);
  else opened = await openBoundedUrl(source.url, source.headers ?? {}, policy, signal, declaredSize);
  const stream = Readable.from(readingErrorsAsSource(opened.stream), { objectMode: false, highWaterMark: STREAM_CHUNK });
  // Destroyed before its first read, the wrapper never runs its generator: close the source here too.
  stream.once('close', () => opened.stream.destroy());
  return { ...opened, stream };
}

/**
 * A read that fails half-way is the source's fault, not the backend's: it must
 * be retried as `source_unavailable`, never make a store fail over.
 */
async function* readingErrorsAsSource(stream: Readable): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (error) {
    if (error instanceof DepotError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new DepotError('source_unavailable', `reading the source failed: ${code ?? (error as Error).message}`, { cause: error });
  } finally {
    stream.destroy();
  }
}

async function openPath(raw: string, policy: SourcePolicy): Promise<OpenedSource> {
  const { handle, size, local } = await openSourceFile(raw, policy.allowedPaths);
  return { stream: createReadStream('', { fd: handle, highWaterMark: STREAM_CHUNK }), totalBytes: size, file: local };
}

function openInline(base64: string, policy: SourcePolicy): OpenedSource {
  // Checked before decoding, so an oversized job cannot make the worker allocate it.
  const decodedLength = Math.floor((base64.length * 3) / 4) - (base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0);
  if (decodedLength > policy.inlineBytes) {
    throw new DepotError('invalid_task', `${decodedLength} bytes exceed limits.inlineBytes (${policy.inlineBytes})`, { field: 'source.base64' });
  }
  const bytes = Buffer.from(base64, 'base64');
  return { stream: Readable.from([bytes], { objectMode: false }), totalBytes: bytes.length };
}

/**
 * A URL download within its bounds: the whole transfer (redirects, headers and
 * every byte) within `sources.maxDurationMs`, and its bytes within the task's
 * declared size or, without one, `sources.maxBytes` — a source that drips a
 * byte now and then never trips the idle timeout, and one without an end
 * would fill the backend. Neither is retried: a retry would meet the same
 * source.
 */
async function openBoundedUrl(
  raw: string,
  headers: Record<string, string>,
  policy: SourcePolicy,
  signal: AbortSignal,
  declaredSize: number | undefined,
): Promise<OpenedSource> {
  const deadline = AbortSignal.timeout(policy.maxDurationMs);
  const tooSlow = () =>
    new DepotError('source_unavailable', `the download took longer than sources.maxDurationMs (${policy.maxDurationMs} ms)`, {
      field: 'source.url',
      retryable: false, // the same source would take as long again
    });
  let opened: OpenedSource;
  try {
    opened = await openUrl(checkSourceUrl(raw, policy.allowedHosts), headers, policy, AbortSignal.any([signal, deadline]), 0);
  } catch (error) {
    if (deadline.aborted && !signal.aborted) throw tooSlow();
    throw error;
  }
  const limit = declaredSize ?? policy.maxBytes;
  const tooBig = `more than ${declaredSize !== undefined ? `the declared size (${declaredSize} bytes)` : `sources.maxBytes (${policy.maxBytes} bytes)`}`;
  if (opened.totalBytes !== undefined && opened.totalBytes > limit && declaredSize === undefined) {
    opened.stream.destroy();
    throw new DepotError('source_unavailable', `${describeUrl(new URL(raw))} announces ${opened.totalBytes} bytes, ${tooBig}`, {
      field: 'source.url',
      retryable: false, // the same source is as large again
    });
  }
  const response = opened.stream;
  const onDeadline = () => response.destroy(tooSlow());
  deadline.addEventListener('abort', onDeadline, { once: true });
  response.once('close', () => deadline.removeEventListener('abort', onDeadline));
  let bytes = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      // With a declared size the shared layer's hashing stream says `integrity`; without one this is the only bound.
      if (declaredSize === undefined && bytes > limit) {
        // Not retried: the same source sends as much again.
        callback(new DepotError('source_unavailable', `the download sent ${tooBig}`, { field: 'source.url', retryable: false }));
        return;
      }
      callback(null, chunk);
    },
  });
  return { ...opened, stream: pipeInto(response, counted) };
}

/** Where a URL points, without its query (which may carry a token). */
export function describeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

async function openUrl(url: URL, headers: Record<string, string>, policy: SourcePolicy, signal: AbortSignal, redirects: number): Promise<OpenedSource> {
  const response = await request(url, headers, policy.timeoutMs, signal);
  const status = response.statusCode ?? 0;
  if (status >= 300 && status < 400 && response.headers.location) {
    response.resume();
    if (redirects >= MAX_REDIRECTS) {
      // Not retried, nor the bad redirect below: the source answers the same way again.
      throw new DepotError('source_unavailable', `more than ${MAX_REDIRECTS} redirects from ${describeUrl(url)}`, { field: 'source.url', retryable: false });
    }
    let next: URL;
    try {
      next = new URL(response.headers.location, url);
    } catch {
      throw new DepotError('source_unavailable', `bad redirect from ${describeUrl(url)}`, { field: 'source.url', retryable: false });
    }
    checkSourceUrl(next.href, policy.allowedHosts);
    // Credentials meant for one origin are not handed to another.
    const nextHeaders = next.origin === url.origin ? headers : {};
    return openUrl(next, nextHeaders, policy, signal, redirects + 1);
  }
  if (status < 200 || status >= 300) {
    response.resume();
    // Retried (the code's default) only for 5xx, timeouts and throttling: other 4xx will not change by retrying.
    const retryable = status >= 500 || status === 408 || status === 429;
    throw new DepotError('source_unavailable', `${describeUrl(url)} answered HTTP ${status}`, { field: 'source.url', retryable });
  }
  const length = Number(response.headers['content-length']);
  return { stream: response, totalBytes: Number.isFinite(length) && response.headers['content-length'] !== undefined ? length : undefined };
}

function request(url: URL, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(url, { method: 'GET', headers, lookup: guardedLookup, signal, timeout: timeoutMs });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('response', (response) => {
      // The socket timeout keeps guarding the body: a stalled download fails instead of hanging.
      ignoreErrorEvents(response, 'the body is read through the stream, which reports its errors to the store');
      resolve(response);
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EFORBIDDEN') {
        reject(new DepotError('invalid_task', error.message, { field: 'source.url' }));
        return;
      }
      reject(new DepotError('source_unavailable', `${describeUrl(url)}: ${error.code ?? error.message}`, { field: 'source.url', cause: error }));
    });
    req.end();
  });
}
