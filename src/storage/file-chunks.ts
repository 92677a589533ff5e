import { createHash } from 'node:crypto';
import { FileHandle, open } from 'node:fs/promises';
import { DepotError } from '../contract';
import { STREAM_CHUNK } from './hashing-stream';

/**
 * A local source file (storeFile) read in chunks into a few buffers that are
 * reused in turn: no chunk is left to the collector, where a stream would
 * allocate a fresh one per read (in the worker, a full collection every few
 * tens of MiB). sha256 and size of exactly the bytes read, whatever the
 * file's length was when it was opened.
 */
export class FileChunks {
  ended = false;
  private readonly hash = createHash('sha256');
  private size = 0;
  private handle?: FileHandle;

  constructor(
    private readonly path: string,
    private readonly signal: AbortSignal,
    /** Bytes read so far, after each chunk (a task's progress). */
    private readonly onBytes?: (bytes: number) => void,
    /**
     * Buffers read into in turn: a chunk stays valid until this many more
     * have been asked for (1: until the next; 2: the next may be read while
     * the last is still being written).
     */
    private readonly buffers = 1,
  ) {}

  /** The file's bytes in order; each chunk is valid until `buffers` more are asked for. */
  async *chunks(): AsyncGenerator<Buffer> {
    this.handle = await open(this.path, 'r').catch(sourceFailed);
    const buffers = Array.from({ length: this.buffers }, () => Buffer.allocUnsafeSlow(STREAM_CHUNK));
    for (let turn = 0; ; turn++) {
      this.signal.throwIfAborted();
      const buffer = buffers[turn % buffers.length];
      const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, this.size).catch(sourceFailed);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      this.hash.update(chunk);
      this.size += bytesRead;
      this.onBytes?.(this.size);
      yield chunk;
    }
    this.ended = true;
  }

  /** Once the chunks ended: what was read. */
  digest(): { sha256: string; size: number } {
    return { sha256: this.hash.digest('hex'), size: this.size };
  }

  async close(): Promise<void> {
    await this.handle?.close();
  }
}

/** The source's failure as the task's, not the backend's: never a failover or a breaker's count. */
export function sourceFailed(error: Error): never {
  throw new DepotError('source_unavailable', `reading the source failed: ${error.message}`, { cause: error });
}
