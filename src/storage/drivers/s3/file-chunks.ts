import { createHash } from 'node:crypto';
import { FileHandle, open } from 'node:fs/promises';
import { STREAM_CHUNK } from '../../hashing-stream';

/**
 * A local source file read in chunks into one buffer that is reused: the part
 * loop copies each chunk before it asks for the next, so no chunk is left to
 * the collector (a stream allocates a fresh one per read). sha256 and size of
 * exactly the bytes read, whatever the file's length was when it was opened.
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
  ) {}

  /** The file's bytes in order; each chunk is valid only until the next is asked for. */
  async *chunks(): AsyncGenerator<Buffer> {
    this.handle = await open(this.path, 'r');
    const buffer = Buffer.allocUnsafeSlow(STREAM_CHUNK);
    for (;;) {
      this.signal.throwIfAborted();
      const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, this.size);
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
