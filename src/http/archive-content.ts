import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DepotError, Manifest, parseArchiveKey, toArchiveKey } from '../contract';
import type { StorageAPI } from '../storage/api';
import { errorBody } from '../support/error-handler';
import type { Logger } from '../support/logging';
import { redactor } from '../support/redaction';
import { mayDo, refuseScope } from './bearer-auth';
import type { BearerAuth } from './bearer-auth';
import { sendError } from './reply';
import type { Exchange } from './router';
import { within } from './within';

const SUFFIX = '/content';

/** A byte range to send, both ends included. */
interface ByteRange {
  from: number;
  to: number;
}

/**
 * CONTRACT §9: `GET /v1/archives/:driver/<key>/content` streams an archive
 * straight from its driver (serve opens the drivers itself), re-verified
 * against its manifest's sha256 and size while it is sent: a full response
 * holds back its last chunk until the hash has matched, and a mismatch
 * destroys the connection (the client sees a broken transfer, never a
 * complete wrong file) and is logged as `integrity`. `Range` (one range) is
 * answered 206: a range that reaches the end is verified the same way (every
 * byte is read to hash it: bytes before the range are read and dropped, since
 * drivers read from the start); a range that ends earlier cannot be, so the
 * client checks the reassembled file against `Repr-Digest`.
 */
export class ArchiveContent {
  constructor(
    private readonly storage: StorageAPI,
    private readonly bearer: BearerAuth,
    private readonly answerMs: number,
    private readonly logger: Logger,
  ) {}

  async serve({ request, response, params }: Exchange): Promise<void> {
    const token = this.bearer.token(request);
    const driver = params.driver;
    const key = keyOf(params['*']);
    if (key === undefined) return sendError(response, 404, { code: 'not_found', message: 'not an archive: /v1/archives/<driver>/<key>/content' });
    if (!mayDo(token, 'retrieve', response)) return;
    if (!this.storage.driverNames().includes(driver))
      return sendError(response, 400, { code: 'unknown_driver', message: `no driver named '${driver}' is configured`, field: 'driver' });
    if (token && !token.scope.allowsDriver(driver))
      return refuseScope(response, `the token '${token.name}' may not use the driver '${driver}' (its scope.drivers)`, 'driver');
    const parsed = parseArchiveKey(key);
    if (!parsed.ok) return sendError(response, 400, { code: 'invalid_task', message: parsed.problem, field: 'key' });

    const transfer = new AbortController();
    response.once('close', () => transfer.abort());
    const release = await this.storage.transferSlot(driver, transfer.signal);
    let body: Readable | undefined;
    try {
      let manifest: Manifest;
      try {
        ({ body, manifest } = await within(this.storage.getStorageDriver(driver).retrieve(toArchiveKey(key), transfer.signal), this.answerMs, 'the archive'));
      } catch (error) {
        const failure = errorBody(error);
        const status = failure.code === 'not_found' ? 404 : failure.code === 'integrity' ? 500 : 503;
        return sendError(response, status, failure);
      }
      // Another site's archive does not exist for this token.
      if (token?.scope.restrictsArchives && !token.scope.allowsArchive(manifest.metadata))
        return sendError(response, 404, { code: 'not_found', message: `no archive ${driver}:${key}` });
      const range = rangeOf(request.headers.range, manifest.size);
      const digest = Buffer.from(manifest.sha256, 'hex').toString('base64');
      const headers: Record<string, string | number> = {
        'content-type': 'application/octet-stream',
        'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(manifest.name)}`,
        'accept-ranges': 'bytes',
        'repr-digest': `sha-256=:${digest}:`,
        'x-depot-sha256': manifest.sha256,
        etag: `"${manifest.sha256}"`,
        'cache-control': 'no-store',
      };
      if (range === 'unsatisfiable') {
        return sendError(
          response,
          416,
          { code: 'invalid_task', message: `the range is outside the archive's ${manifest.size} bytes`, field: 'range' },
          {
            headers: { 'content-range': `bytes */${manifest.size}` },
          },
        );
      }
      const span = range ?? { from: 0, to: manifest.size - 1 };
      const length = Math.max(0, span.to - span.from + 1);
      if (range) headers['content-range'] = `bytes ${span.from}-${span.to}/${manifest.size}`;
      headers['content-length'] = length;
      response.writeHead(range ? 206 : 200, headers);
      this.logger.info(`retrieve ${driver}:${key} over HTTP`, {
        driver,
        key,
        actor: token ? `http:${token.name}` : undefined,
        range: range ? headers['content-range'] : undefined,
      });
      try {
        await pipeline(Readable.from(verified(body, manifest, span, `${driver}:${key}`)), response);
      } catch (error) {
        const failure = errorBody(error);
        if (failure.code === 'integrity')
          this.logger.error(`integrity: ${driver}:${key} ${failure.message}; the download was aborted`, { driver, key, code: 'integrity' });
        else this.logger.info(`download of ${driver}:${key} ended early: ${redactor.redact(failure.message)}`, { driver, key });
        // A broken transfer, never a complete one: the socket goes.
        response.destroy();
      }
    } finally {
      body?.destroy();
      release();
    }
  }
}

/**
 * The bytes of `span`, re-verified when the span reaches the end: everything
 * is hashed, the last chunk is held back until sha256 and size matched.
 * A span that ends before the archive does stops reading there, unverified.
 */
async function* verified(body: Readable, manifest: Manifest, span: ByteRange, ref: string): AsyncGenerator<Buffer> {
  const verify = span.to >= manifest.size - 1;
  const hash = createHash('sha256');
  let position = 0;
  let held: Buffer | undefined;
  for await (const data of body) {
    const chunk = data as Buffer;
    const start = position;
    position += chunk.length;
    if (position > manifest.size) throw new DepotError('integrity', `${ref} holds more than the ${manifest.size} bytes of its manifest`);
    if (verify) hash.update(chunk);
    const part = chunk.subarray(Math.max(span.from - start, 0), Math.max(0, Math.min(span.to + 1 - start, chunk.length)));
    if (!verify) {
      if (part.length) yield part;
      if (position > span.to) return;
      continue;
    }
    if (part.length) {
      if (held) yield held;
      held = part;
    }
  }
  if (!verify) throw new DepotError('integrity', `${ref} ended after ${position} bytes, before the range`);
  const found = hash.digest('hex');
  if (position !== manifest.size || found !== manifest.sha256)
    throw new DepotError('integrity', `read ${position} bytes with sha256 ${found}; the manifest says ${manifest.size} bytes, sha256 ${manifest.sha256}`);
  if (held) yield held;
}

/** The key of `<key>/content` as sent (its slashes as they are, each segment percent-decoded), or undefined. */
function keyOf(rest: string | undefined): string | undefined {
  if (!rest?.endsWith(SUFFIX) || rest.length === SUFFIX.length) return undefined;
  try {
    const segments = rest.slice(0, -SUFFIX.length).split('/').map(decodeURIComponent);
    return segments.some((s) => s.includes('/')) ? undefined : segments.join('/');
  } catch {
    return undefined;
  }
}

/**
 * One byte range of a `Range` header (RFC 9110 §14): undefined for none, for
 * several ranges or for one that is not `bytes=` (the full archive is sent);
 * 'unsatisfiable' for one that lies outside it (416).
 */
function rangeOf(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { from: Math.max(0, size - suffix), to: size - 1 };
  }
  const from = Number(match[1]);
  const to = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (from >= size || (match[2] !== '' && Number(match[2]) < from)) return 'unsatisfiable';
  return { from, to };
}
