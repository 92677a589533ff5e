import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { PassThrough, pipeline, Readable, Transform, TransformCallback } from 'node:stream';
import { DepotError } from '../../../contract';
import { STREAM_CHUNK } from '../../hashing-stream';
import { failureIn, MoodleFailure, scrub } from './errors';
import type { MoodleSettings } from './types';

/** Where a file lies, as local_depot's functions describe it and webservice/pluginfile.php takes it. */
export interface FileLocation {
  contextid: number;
  component: string;
  filearea: string;
  itemid: number;
  filepath: string;
  filename: string;
  filesize: number;
  timecreated: number;
}

/** What core_webservice_get_site_info tells about the token (webservice/externallib.php). */
export interface SiteInfo {
  functions: { name: string; version?: string }[];
  uploadfiles?: number;
  downloadfiles?: number;
  release?: string;
  version?: string;
  userid?: number;
}

/** A Moodle error answer, kept apart from transport failures until the driver maps it. */
export class MoodleRefusal extends Error {
  constructor(
    readonly failure: MoodleFailure,
    readonly action: string,
  ) {
    super(`${action}: ${failure.errorcode}`);
    this.name = 'MoodleRefusal';
  }
}

/** JSON answers larger than this are no web-service answer of depot's functions (a list page holds manifests). */
const JSON_LIMIT = 64 * 1024 * 1024;
/** Error bodies of pluginfile.php are small JSON documents. */
const ERROR_BODY_LIMIT = 1024 * 1024;
/**
 * How fast Moodle is assumed to handle an archive's bytes once it has them all:
 * upload.php copies the upload into its file pool, the store function reads it
 * for the sha256. Waits after the last byte are bounded by timeoutMs plus the
 * size at this rate, so a large archive is not taken for a silent server.
 */
const SERVER_BYTES_PER_MS = 20 * 1024; // 20 MiB/s

/**
 * Moodle's three web-service entry points, spoken over one keep-alive agent:
 * `webservice/rest/server.php` (functions), `webservice/upload.php` (draft
 * uploads, streamed) and `webservice/pluginfile.php` (downloads, streamed).
 * The token travels only in POST bodies — never in a URL, so no log line, error
 * or proxy log of depot's requests can show it; Moodle reads POST before GET
 * (required_param) and takes the file's path from the `file` parameter
 * (get_file_argument), so no download URL carries anything but the script.
 */
export class MoodleClient {
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly base: URL;

  constructor(
    private readonly settings: MoodleSettings,
    private readonly driver: string,
    private readonly timeoutMs: number,
  ) {
    this.base = new URL(`${settings.url}/`);
    this.transport = this.base.protocol === 'https:' ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true, maxFreeSockets: 8 });
  }

  /** Calls a web-service function; its JSON result, or MoodleRefusal for Moodle's error answer. */
  async call<T>(fn: string, params: Record<string, string | number>, action: string, options: { signal?: AbortSignal; extraMs?: number } = {}): Promise<T> {
    const form = new URLSearchParams({ wstoken: this.settings.token, wsfunction: fn, moodlewsrestformat: 'json' });
    for (const [name, value] of Object.entries(params)) form.set(name, String(value));
    const body = Buffer.from(form.toString());
    const { res } = await this.send('webservice/rest/server.php', formHeaders(body.length), body, action, options.signal, this.timeoutMs + (options.extraMs ?? 0));
    const value = await this.readJson(res, action);
    const failure = failureIn(value);
    if (failure) throw new MoodleRefusal(failure, action);
    return value as T;
  }

  /**
   * Streams `source` into a new draft area (webservice/upload.php, multipart, never
   * held whole) and returns the draft's item id. The closing boundary is written only
   * after `source` ended cleanly: a source that fails (the shared layer's integrity
   * check included) aborts the request, and Moodle files nothing (PHP marks the part
   * UPLOAD_ERR_PARTIAL, or the script never runs). With `size` the request has a
   * Content-Length; without, it goes chunked.
   */
  async upload(source: Readable, size: number | undefined, action: string, signal: AbortSignal): Promise<number> {
    const boundary = `----depot${randomBytes(16).toString('hex')}`;
    const head = Buffer.from(
      [
        field(boundary, 'token', this.settings.token),
        field(boundary, 'filearea', 'draft'),
        field(boundary, 'itemid', '0'),
        field(boundary, 'filepath', '/'),
        `--${boundary}\r\nContent-Disposition: form-data; name="file_1"; filename="archive.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ].join(''),
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const headers: http.OutgoingHttpHeaders = { 'content-type': `multipart/form-data; boundary=${boundary}` };
    if (size !== undefined) headers['content-length'] = head.length + size + tail.length;
    const { res } = await this.send('webservice/upload.php', headers, { head, source, tail }, action, signal, this.timeoutMs, (size ?? 0) / SERVER_BYTES_PER_MS);
    const value = await this.readJson(res, action);
    const failure = failureIn(value);
    if (failure) throw new MoodleRefusal(failure, action);
    const entry: unknown = Array.isArray(value) && value.length === 1 ? value[0] : undefined;
    const itemid = (entry as { itemid?: unknown } | undefined)?.itemid;
    if (typeof itemid !== 'number' || !Number.isSafeInteger(itemid) || itemid <= 0) {
      throw new DepotError('internal', `${this.driver}: ${action}: upload.php answered without a draft item id`);
    }
    return itemid;
  }

  /**
   * The bytes of a file (webservice/pluginfile.php) as a stream read at the caller's
   * pace. A transfer cut short is `unavailable`, never a short file.
   */
  async download(location: FileLocation, action: string, signal: AbortSignal): Promise<Readable> {
    const file = `/${location.contextid}/${location.component}/${location.filearea}/${location.itemid}${location.filepath}${location.filename}`;
    const body = Buffer.from(new URLSearchParams({ token: this.settings.token, file }).toString());
    const { res, req } = await this.send('webservice/pluginfile.php', formHeaders(body.length), body, action, signal, this.timeoutMs);
    // send_stored_file always sends Content-Disposition (filelib.php send_file); an error never does.
    if (res.statusCode !== 200 || res.headers['content-disposition'] === undefined) {
      const value = await this.readJson(res, action, ERROR_BODY_LIMIT);
      const failure = failureIn(value);
      if (failure) throw new MoodleRefusal(failure, action);
      throw new DepotError('internal', `${this.driver}: ${action}: pluginfile.php answered neither a file nor an error`);
    }
    const out = new PassThrough({ highWaterMark: STREAM_CHUNK });
    const onAbort = () => res.destroy(new DepotError('unavailable', `${this.driver}: ${action} aborted`));
    signal.addEventListener('abort', onAbort, { once: true });
    // Silence counts only while depot waits for bytes, not while its reader is slow (out full).
    req.setTimeout(0);
    let lastBytes = Date.now();
    res.on('data', () => (lastBytes = Date.now()));
    const watchdog = setInterval(
      () => {
        if (out.writableNeedDrain) lastBytes = Date.now();
        else if (Date.now() - lastBytes > this.timeoutMs) res.destroy(new DepotError('unavailable', `${this.driver}: ${action}: Moodle was silent for ${this.timeoutMs} ms`));
      },
      Math.max(50, Math.min(1000, this.timeoutMs / 4)),
    );
    watchdog.unref();
    // Not pipeline(): it would hand the reader Node's bare 'aborted' before this could say what it means.
    res.pipe(out);
    const finish = (error?: DepotError) => {
      clearInterval(watchdog);
      signal.removeEventListener('abort', onAbort);
      if (error && !out.destroyed) out.destroy(error);
    };
    res.once('error', (error) => finish(this.transportError(error, action)));
    // An answer whose body ended before its Content-Length is not the file.
    res.once('close', () => finish(res.complete ? undefined : new DepotError('unavailable', `${this.driver}: ${action}: the transfer was cut short`)));
    // The reader went away: the rest is not wanted.
    out.once('close', () => {
      if (!res.complete) res.destroy();
    });
    return out;
  }

  /**
   * One POST; resolves with the response once its headers arrived. `idleMs` bounds
   * every silence of the socket while sending and until the answer starts; after the
   * last byte of a large body, `extraMs` more (Moodle handles the bytes first).
   */
  private send(
    path: string,
    headers: http.OutgoingHttpHeaders,
    body: Buffer | { head: Buffer; source: Readable; tail: Buffer },
    action: string,
    signal: AbortSignal | undefined,
    idleMs: number,
    extraMs = 0,
  ): Promise<{ res: http.IncomingMessage; req: http.ClientRequest }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        reject(error instanceof DepotError ? error : this.transportError(error, action));
      };
      const req = this.transport.request(new URL(path, this.base), { method: 'POST', agent: this.agent, headers: { ...headers, 'user-agent': 'depot' } }, (res) => {
        if (settled) return res.resume();
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        // From here on the reader bounds the silences.
        req.setTimeout(idleMs);
        resolve({ res, req });
      });
      const onAbort = () => req.destroy(new DepotError('unavailable', `${this.driver}: ${action} aborted`));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      req.setTimeout(idleMs, () => req.destroy(new DepotError('unavailable', `${this.driver}: ${action}: Moodle was silent for ${idleMs} ms`)));
      req.on('error', fail);
      if (Buffer.isBuffer(body)) {
        req.end(body);
        return;
      }
      const framer = new Framer(body.head, body.tail);
      pipeline(body.source, framer, req, (error) => {
        if (error) {
          // The source failed (its own error decides what the store says) or the request did: never send the end.
          req.destroy();
          fail(body.source.errored ?? error);
          return;
        }
        req.setTimeout(idleMs + extraMs);
      });
    });
  }

  private async readJson(res: http.IncomingMessage, action: string, limit = JSON_LIMIT): Promise<unknown> {
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > limit) {
          res.destroy();
          throw new DepotError('misconfigured', `${this.driver}: ${action}: the answer is larger than ${limit} bytes: not a web-service answer`);
        }
        chunks.push(chunk);
      }
    } catch (error) {
      throw error instanceof DepotError ? error : this.transportError(error, action);
    }
    const status = res.statusCode ?? 0;
    const text = Buffer.concat(chunks).toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw this.statusError(status, text, action);
    }
    // Moodle's errors come as JSON with HTTP 200 (and 404 for a file not found); anything else from a proxy or server is its status.
    if (failureIn(value) === null && (status < 200 || status >= 300)) throw this.statusError(status, text, action);
    return value;
  }

  /** An answer that is no web-service JSON: what its HTTP status says. */
  private statusError(status: number, text: string, action: string): DepotError {
    const where = `${this.driver}: ${action}: HTTP ${status}`;
    if (status >= 500 || status === 408 || status === 429) return new DepotError('unavailable', `${where} from Moodle's web server`);
    if (status === 413) return new DepotError('no_space', `${where}: the web server refuses a body this large (e.g. nginx client_max_body_size)`);
    if (status === 401 || status === 407) return new DepotError('auth', `${where}: a proxy or the web server wants credentials of its own`);
    if (status === 403 && text.trim() === '') {
      return new DepotError('misconfigured', `${where}: web services or the REST protocol are off (Site administration > Server > Web services)`);
    }
    if (status === 404) return new DepotError('misconfigured', `${where}: no such script — is url the site's wwwroot?`);
    return new DepotError('misconfigured', `${where}: not Moodle's web-service answer — is url the site's wwwroot, and are web services on?`);
  }

  /** A socket error, timeout or reset: `unavailable`, with the token scrubbed from whatever Node said. */
  private transportError(error: unknown, action: string): DepotError {
    if (error instanceof DepotError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new DepotError('unavailable', scrub(`${this.driver}: ${action}: ${message}`, this.settings.token));
  }

  close(): void {
    this.agent.destroy();
  }
}

function formHeaders(length: number): http.OutgoingHttpHeaders {
  return { 'content-type': 'application/x-www-form-urlencoded', 'content-length': length };
}

function field(boundary: string, name: string, value: string): string {
  return `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
}

/** The multipart frame around the file's bytes: the head first, the tail only once the bytes ended cleanly. */
class Framer extends Transform {
  private started = false;

  constructor(
    private readonly head: Buffer,
    private readonly tail: Buffer,
  ) {
    super({ readableHighWaterMark: STREAM_CHUNK, writableHighWaterMark: STREAM_CHUNK });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.started) {
      this.started = true;
      this.push(this.head);
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.started) this.push(this.head);
    callback(null, this.tail);
  }
}
