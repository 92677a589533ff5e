import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';

export const KiB = 1024;
export const MiB = 1024 * KiB;

export interface Digest {
  sha256: string;
  size: number;
}

export interface SourceOptions {
  /** Bytes per chunk (default 1 MiB). */
  chunkSize?: number;
  /** Awaited after each chunk with the bytes produced so far: slow sources, gates, aborts. */
  afterChunk?: (produced: number) => void | Promise<void>;
  /** The source fails (like a broken download) once it has produced this many bytes. */
  failAfter?: number;
}

export interface PatternSource {
  stream: Readable;
  /** What the source produced so far: sha256 and size, computed on the sending side. */
  sent(): Digest;
}

/** Deterministic pseudo-random bytes: AES-128-CTR over zeros, keyed by the seed (fast, never one big buffer). */
function keystream(seed: string): (length: number) => Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (length) => cipher.update(Buffer.alloc(length));
}

/** A streamed source of `size` pseudo-random bytes, hashed as it is produced. */
export function patternSource(size: number, seed: string, options: SourceOptions = {}): PatternSource {
  const chunkSize = options.chunkSize ?? MiB;
  const hash = createHash('sha256');
  let produced = 0;
  async function* generate(): AsyncGenerator<Buffer> {
    const next = keystream(seed);
    while (produced < size) {
      if (options.failAfter !== undefined && produced >= options.failAfter) {
        throw new Error(`test source failed after ${produced} bytes`);
      }
      const chunk = next(Math.min(chunkSize, size - produced));
      hash.update(chunk);
      produced += chunk.length;
      yield chunk;
      await options.afterChunk?.(produced);
    }
  }
  return {
    stream: Readable.from(generate(), { objectMode: false }),
    sent: () => ({ sha256: hash.copy().digest('hex'), size: produced }),
  };
}

/** The bytes a pattern source of this size and seed produces, for small archives. */
export function patternBytes(size: number, seed: string): Buffer {
  return keystream(seed)(size);
}

export function digestOf(bytes: Buffer): Digest {
  return { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
}

/** Reads a stream to its end, hashing on the receiving side; rejects with the stream's error. */
export async function digestStream(stream: Readable): Promise<Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
