/**
 * A streaming reader of `multipart/form-data` (RFC 7578 over RFC 2046's
 * multipart syntax), for `POST /v1/tasks` uploads (CONTRACT §9): parts are
 * read one after the other, each part's body as a stream of chunks, so a
 * file of any size passes through without being held in memory. Only what
 * the upload route needs: no nested multiparts, no transfer encodings other
 * than the identity. Bounded everywhere an attacker could make it grow: the
 * headers of a part, the bytes before the first boundary, the padding after
 * a boundary.
 */

/** Why a body is not a complete form; the route answers 400. */
export class MultipartError extends Error {
  constructor(
    message: string,
    /** The body ended (or was cut off) before the form's closing boundary. */
    readonly truncated = false,
  ) {
    super(message);
    this.name = 'MultipartError';
  }
}

export interface PartHeaders {
  /** The form field's name (Content-Disposition `name`). */
  name: string;
  /** Content-Disposition `filename`, when the part is a file. */
  filename?: string;
  contentType?: string;
}

/** The boundary of a `multipart/form-data` Content-Type, or undefined when it is none or its boundary is not RFC 2046's. */
export function formBoundary(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const [type, ...params] = splitParameters(contentType);
  if (type.trim().toLowerCase() !== 'multipart/form-data') return undefined;
  const boundary = parameterValue(params, 'boundary');
  // RFC 2046: 1-70 characters of bchars, not ending in a space.
  return boundary !== undefined && /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/.test(boundary) ? boundary : undefined;
}

const CR = 0x0d;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_PREAMBLE = 64 * 1024;
const MAX_HEADER_BYTES = 8 * 1024;
const MAX_PADDING = 1024;

export class MultipartReader {
  private readonly source: AsyncIterator<Buffer>;
  private readonly delimiter: Buffer;
  // A CRLF in front: the first boundary then reads like every other one ("\r\n--boundary").
  private buffer: Buffer = Buffer.from(CRLF);
  private ended = false;
  private state: 'preamble' | 'headers' | 'body' | 'done' = 'preamble';
  /** Bytes read from the source so far. */
  received = 0;

  constructor(source: AsyncIterable<Buffer>, boundary: string) {
    this.source = source[Symbol.asyncIterator]();
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  /** The next part's headers, or null after the closing boundary. The previous part's body must have been read to its end. */
  async nextPart(): Promise<PartHeaders | null> {
    if (this.state === 'body') throw new Error('MultipartReader: the previous part was not read to its end');
    if (this.state === 'done') return null;
    if (this.state === 'preamble') {
      await this.skipTo(this.delimiter, MAX_PREAMBLE, 'no boundary at the start of the form');
      this.state = 'headers';
    }
    // After a boundary: "--" closes the form, else optional padding and CRLF start a part.
    await this.want(2);
    if (this.buffer.subarray(0, 2).toString('latin1') === '--') {
      this.state = 'done';
      return null;
    }
    const lineEnd = await this.find(CRLF, MAX_PADDING, 'a boundary line is too long');
    if (this.buffer.subarray(0, lineEnd).toString('latin1').trim() !== '') throw new MultipartError('a boundary line carries more than the boundary');
    this.buffer = this.buffer.subarray(lineEnd + CRLF.length);
    const headers = await this.readHeaders();
    this.state = 'body';
    return headers;
  }

  /** The current part's body, chunk by chunk, up to the next boundary. */
  async *body(): AsyncGenerator<Buffer> {
    if (this.state !== 'body') throw new Error('MultipartReader: no part to read');
    for (;;) {
      const at = this.buffer.indexOf(this.delimiter);
      if (at >= 0) {
        if (at > 0) yield this.buffer.subarray(0, at);
        this.buffer = this.buffer.subarray(at + this.delimiter.length);
        this.state = 'headers';
        return;
      }
      // Only an end that may begin a delimiter waits for the next chunk (almost always none), so fill() rarely has to copy a chunk.
      const held = this.delimiterStartAtEnd();
      if (this.buffer.length > held) {
        const out = this.buffer.subarray(0, this.buffer.length - held);
        // A copy of the held end: a view would keep the whole chunk alive.
        this.buffer = Buffer.from(this.buffer.subarray(this.buffer.length - held));
        yield out;
      }
      if (!(await this.fill())) throw new MultipartError('the body ended inside a part, before the form was closed', true);
    }
  }

  /** Reads the rest of the current part into memory, refusing more than `limit` bytes. */
  async text(limit: number): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of this.body()) {
      size += chunk.length;
      if (size > limit) throw new MultipartError(`the part is larger than ${limit} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private async readHeaders(): Promise<PartHeaders> {
    let block = '';
    if (!(await this.startsWith(CRLF))) {
      const end = await this.find(HEADER_END, MAX_HEADER_BYTES, `a part's headers are larger than ${MAX_HEADER_BYTES} bytes`);
      block = this.buffer.subarray(0, end).toString('utf8');
      this.buffer = this.buffer.subarray(end + HEADER_END.length);
    } else {
      this.buffer = this.buffer.subarray(CRLF.length);
    }
    const fields = new Map<string, string>();
    for (const line of block.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new MultipartError('a part header is not "Name: value"');
      fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const disposition = fields.get('content-disposition');
    if (!disposition) throw new MultipartError('a part has no Content-Disposition');
    const [kind, ...params] = splitParameters(disposition);
    const name = parameterValue(params, 'name');
    if (kind.trim().toLowerCase() !== 'form-data' || name === undefined) throw new MultipartError('a part is not form-data with a name');
    const encoding = fields.get('content-transfer-encoding');
    if (encoding !== undefined && !['binary', '8bit', '7bit'].includes(encoding.toLowerCase()))
      throw new MultipartError(`Content-Transfer-Encoding ${encoding} is not supported`);
    const filename = parameterValue(params, 'filename');
    const contentType = fields.get('content-type');
    return { name, ...(filename !== undefined ? { filename } : {}), ...(contentType !== undefined ? { contentType } : {}) };
  }

  /** The length of the end of the buffer that is the start of a delimiter, or 0; the buffer holds no whole delimiter. */
  private delimiterStartAtEnd(): number {
    // The delimiter's only CR is its first byte (a boundary has none): just the last CR, if among the last (length - 1) bytes, can start one.
    for (let at = this.buffer.length - 1; at >= Math.max(0, this.buffer.length - (this.delimiter.length - 1)); at--) {
      if (this.buffer[at] !== CR) continue;
      const end = this.buffer.subarray(at);
      return end.equals(this.delimiter.subarray(0, end.length)) ? end.length : 0;
    }
    return 0;
  }

  /** Drops everything up to and including `marker`, which must come within `limit` bytes. */
  private async skipTo(marker: Buffer, limit: number, problem: string): Promise<void> {
    const at = await this.find(marker, limit, problem);
    this.buffer = this.buffer.subarray(at + marker.length);
  }

  /** The position of `marker` in the buffer, reading on as needed; it must start within `limit` bytes. */
  private async find(marker: Buffer, limit: number, problem: string): Promise<number> {
    for (;;) {
      const at = this.buffer.indexOf(marker);
      if (at >= 0 && at <= limit) return at;
      if (this.buffer.length > limit + marker.length) throw new MultipartError(problem);
      if (!(await this.fill())) throw new MultipartError('the body ended before the form was closed', true);
    }
  }

  private async startsWith(prefix: Buffer): Promise<boolean> {
    await this.want(prefix.length);
    return this.buffer.subarray(0, prefix.length).equals(prefix);
  }

  private async want(bytes: number): Promise<void> {
    while (this.buffer.length < bytes) {
      if (!(await this.fill())) throw new MultipartError('the body ended before the form was closed', true);
    }
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.source.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    const chunk = next.value;
    this.received += chunk.length;
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    return true;
  }
}

/** `type; a=b; c="d;e"` split at the semicolons outside quotes. */
function splitParameters(header: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < header.length; i++) {
    const c = header[i];
    if (quoted && c === '\\' && i + 1 < header.length) {
      current += c + header[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ';' && !quoted) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

/** A parameter's value, unquoted (`name="task"` → `task`); undefined when absent. */
function parameterValue(params: readonly string[], wanted: string): string | undefined {
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== wanted) continue;
    const raw = param.slice(eq + 1).trim();
    return raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
  }
  return undefined;
}
