import { createHash, Hash } from 'node:crypto';
import { finished, Readable, Transform, TransformCallback, Writable } from 'node:stream';
import { DepotError } from '../contract';

/**
 * The chunk size of archive streams, read and passed on (1 MiB: a verified
 * copy runs ~520 MiB/s with it, ~380 MiB/s with Node's default 64 KiB).
 */
export const STREAM_CHUNK = 1024 * 1024;

export interface Expected {
  sha256?: string;
  size?: number;
}

/** The `integrity` failure of bytes that are not what was expected; null when they are. */
export function mismatch(expected: Expected, found: { sha256: string; size: number }): DepotError | null {
  if (expected.size !== undefined && found.size !== expected.size)
    return new DepotError('integrity', `got ${found.size} bytes, expected ${expected.size}`, { field: 'size' });
  if (expected.sha256 !== undefined && found.sha256 !== expected.sha256)
    return new DepotError('integrity', `sha256 is ${found.sha256}, expected ${expected.sha256}`, { field: 'sha256' });
  return null;
}

/**
 * Passes bytes through while computing sha256 and size in the same pass. With
 * expectations it fails with `integrity` — early when the size is exceeded, else
 * at the end — so whoever writes from it never completes with wrong bytes.
 */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private digest?: string;

  constructor(
    private readonly expected: Expected = {},
    private readonly onBytes?: (bytes: number) => void,
  ) {
    super({ readableHighWaterMark: STREAM_CHUNK, writableHighWaterMark: STREAM_CHUNK });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expected.size !== undefined && this.bytes > this.expected.size) {
      callback(new DepotError('integrity', `more than the expected ${this.expected.size} bytes`, { field: 'size' }));
      return;
    }
    this.hash.update(chunk);
    this.onBytes?.(this.bytes);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.digest = this.hash.digest('hex');
    callback(mismatch(this.expected, { sha256: this.digest, size: this.bytes }));
  }

  /** sha256 and size of what passed; only after the stream ended. */
  result(): { sha256: string; size: number } {
    if (this.digest === undefined) throw new Error('HashingStream.result() before the end of the stream');
    return { sha256: this.digest, size: this.bytes };
  }
}

/**
 * `source` piped into `target` the way stream.pipeline() connects them — an
 * error or early close on either side destroys the other, so whoever reads
 * `target` sees a source failure — without pipeline's per-call AbortController,
 * whose teardown costs more than hashing a small archive.
 */
export function pipeInto<T extends Writable>(source: Readable, target: T): T {
  finished(source, { writable: false }, (error) => {
    if (error) target.destroy(error);
  });
  finished(target, (error) => {
    if (error) source.destroy();
  });
  source.pipe(target);
  return target;
}
