import { pipeline, Readable } from 'node:stream';
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { toArchiveKey } from '../../src/contract';
import type { ArchiveBody } from '../../src/storage/driver';
import { HashingStream } from '../../src/storage/hashing-stream';

/** One HTTP request as the SDK sent it, after every middleware (checksums and signing included). */
export interface SentRequest {
  command: string;
  method: string;
  path: string;
  query: Record<string, unknown>;
  headers: Record<string, string>;
  /** The body when it is text (XML of Complete, PutObjectRetention), else its length. */
  body?: string;
  bodyBytes?: number;
}

interface HttpRequestShape {
  method: string;
  path: string;
  query?: Record<string, unknown>;
  headers: Record<string, string>;
  body?: unknown;
}

/** Records every request `client` sends (each retry too), at the last step before the wire. */
export function recordRequests(client: S3Client): SentRequest[] {
  const sent: SentRequest[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as HttpRequestShape;
      const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]));
      const body = request.body;
      sent.push({
        command: context.commandName ?? '?',
        method: request.method,
        path: decodeURIComponent(request.path),
        query: { ...request.query },
        headers,
        body: typeof body === 'string' ? body : undefined,
        bodyBytes: body instanceof Uint8Array ? body.length : undefined,
      });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'testRecordRequests', priority: 'low' },
  );
  return sent;
}

/**
 * Makes chosen requests fail as S3 would answer them, before they leave the
 * client: `decide` returns the S3 error code and status to answer with, or
 * undefined to let the request through.
 */
export function injectFaults(
  client: S3Client,
  decide: (request: { command: string; key?: string }) => { code: string; status: number; message?: string } | undefined,
): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const key = (args.input as { Key?: unknown }).Key;
      const fault = decide({ command: context.commandName ?? '?', key: typeof key === 'string' ? key : undefined });
      if (!fault) return next(args);
      throw new S3ServiceException({
        name: fault.code,
        $fault: fault.status >= 500 ? 'server' : 'client',
        $metadata: { httpStatusCode: fault.status },
        message: fault.message ?? fault.code,
      });
    },
    { step: 'initialize', name: 'testInjectFaults', priority: 'high' },
  );
}

/** Fails the first `times` matching requests, then lets them through. */
export function firstTimes(
  times: number,
  match: (request: { command: string; key?: string }) => boolean,
  fault: { code: string; status: number; message?: string },
) {
  let left = times;
  return (request: { command: string; key?: string }) => {
    if (left > 0 && match(request)) {
      left -= 1;
      return fault;
    }
    return undefined;
  };
}

/**
 * An ArchiveBody as the shared layer builds it (bytes through the HashingStream),
 * for calling a driver directly.
 */
export function archiveBody(
  key: string,
  source: Readable | Buffer,
  options: { sha256?: string; size?: number; retainUntil?: string; declared?: { size?: number; retainUntil?: string } } = {},
): ArchiveBody {
  const parts = toArchiveKey(key);
  const hasher = new HashingStream({ sha256: options.sha256, size: options.size });
  const input = Buffer.isBuffer(source) ? Readable.from(source.length > 0 ? [source] : []) : source;
  const stream = pipeline(input, hasher, () => undefined);
  return {
    stream,
    manifest: () => ({
      ...hasher.result(),
      name: parts.name,
      key,
      storedAt: new Date().toISOString(),
      taskId: parts.taskId,
      metadata: {},
      ...(options.retainUntil ? { retainUntil: options.retainUntil } : {}),
    }),
    declared: options.declared ?? {},
  };
}

/** Commands in the order sent, with `(sidecar)` marking requests for a manifest object. */
export function commandTrail(sent: SentRequest[]): string[] {
  return sent.map((r) => `${r.command.replace(/Command$/, '')}${r.path.endsWith('.depot.json') ? ' (sidecar)' : ''}`);
}
