import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from './types';

/**
 * The one integrity header a request that carries bytes gets, besides the
 * SigV4 payload hash every signed request has:
 * - `sha256`: `x-amz-checksum-sha256`, the same digest as the payload hash
 *   (so it costs no second pass), for stores that take the SDK's flexible
 *   checksums (`checksums: when_supported`). AWS verifies it and Object Lock
 *   accepts it.
 * - `md5`: `Content-MD5`, only where Object Lock demands a checksum and the
 *   store may not know `x-amz-checksum-*` (`when_required` with `objectLock`).
 * - `none`: neither (`when_required` without `objectLock`): the payload hash
 *   is all. A bucket whose default retention wants a checksum refuses such a
 *   request (400 InvalidRequest, `misconfigured`) — it is never written unlocked.
 */
export type BodyChecksum = 'sha256' | 'md5' | 'none';

export function bodyChecksumFor(settings: Pick<S3Settings, 'checksums' | 'objectLock'>): BodyChecksum {
  if (settings.checksums === 'when_supported') return 'sha256';
  return settings.objectLock ? 'md5' : 'none';
}

/** The body's sha256 where the driver has it already (a whole archive's from its manifest, a part's from filling it). */
const knownSha256 = new WeakMap<Uint8Array, Buffer>();

/** Records the sha256 of `body`, which the signature and the checksum header then take instead of hashing it again. */
export function withSha256<T extends Uint8Array>(body: T, sha256: Buffer): T {
  knownSha256.set(body, sha256);
  return body;
}

const BODY_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);
const PAYLOAD_HASH = 'x-amz-content-sha256';

interface BodyInput {
  Body?: unknown;
  ContentMD5?: unknown;
}

function hasChecksumHeader(headers: Record<string, string>): boolean {
  return Object.keys(headers).some((h) => {
    const name = h.toLowerCase();
    return name.startsWith('x-amz-checksum-') || name === 'content-md5';
  });
}

/**
 * Every PutObject and UploadPart with a buffer body (the driver never streams
 * one) gets its payload hash from one sha256 pass — or none, when the driver
 * knows the digest (`withSha256`) — and the mode's checksum:
 * - `sha256`: on PutObject, `x-amz-checksum-sha256` from that same digest; the
 *   SDK then adds no CRC32 of its own. UploadPart gets it from the multipart
 *   upload, which declares the algorithm at CreateMultipartUpload (a part with
 *   a checksum the upload was not created for is refused).
 * - `md5`: `Content-MD5` on both, computed here unless the request has one.
 */
export function addBodyChecksums(client: S3Client, mode: BodyChecksum): void {
  if (mode === 'md5') {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as BodyInput;
        if (!BODY_COMMANDS.has(context.commandName ?? '') || input.ContentMD5 !== undefined || !(input.Body instanceof Uint8Array)) return next(args);
        return next({ ...args, input: { ...args.input, ContentMD5: createHash('md5').update(input.Body).digest('base64') } });
      },
      { step: 'initialize', name: 'depotContentMd5' },
    );
  }
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const body = (args.input as BodyInput).Body;
      const request = args.request as { headers?: Record<string, string> } | undefined;
      if (!BODY_COMMANDS.has(context.commandName ?? '') || !(body instanceof Uint8Array) || !request?.headers) return next(args);
      const headers = request.headers;
      const wantsChecksum = mode === 'sha256' && context.commandName === 'PutObjectCommand' && !hasChecksumHeader(headers);
      if (headers[PAYLOAD_HASH] !== undefined && !wantsChecksum) return next(args);
      const sha256 = knownSha256.get(body) ?? createHash('sha256').update(body).digest();
      headers[PAYLOAD_HASH] ??= sha256.toString('hex');
      if (wantsChecksum) headers['x-amz-checksum-sha256'] = sha256.toString('base64');
      return next(args);
    },
    // Before the SDK's flexible checksums (same step, normal priority), which add nothing once a checksum header is there.
    { step: 'build', priority: 'high', name: 'depotBodyChecksums' },
  );
}
