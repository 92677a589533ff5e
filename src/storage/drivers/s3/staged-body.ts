import type { Readable } from 'node:stream';

/**
 * Reads an archive body in two steps: first up to one part's worth (a small
 * archive ends there and goes in one PUT), then, for a large one, the rest as a
 * sequence of chunks for the multipart upload. `ended` turns true only when the
 * source finished without error — the shared layer's hashing stream errors at
 * its end when the bytes are not what the task said, so `ended` means "every
 * byte read and verified". Nothing is published unless it is true.
 */
export class StagedBody {
  ended = false;
  private readonly source: AsyncIterator<Buffer>;

  constructor(stream: Readable) {
    this.source = stream[Symbol.asyncIterator]();
  }

  /** Chunks up to more than `limit` bytes, or to the end of the body (then `ended` is true). */
  async head(limit: number): Promise<Buffer[]> {
    const chunks: Buffer[] = [];
    let bytes = 0;
    while (bytes <= limit) {
      const next = await this.source.next();
      if (next.done) {
        this.ended = true;
        break;
      }
      chunks.push(next.value);
      bytes += next.value.length;
    }
    return chunks;
  }

  /**
   * The head followed by the rest of the source, for the multipart upload;
   * `ended` turns true when the source ended cleanly. Head chunks are let go
   * as they are read, so the upload does not keep them.
   */
  async *chunks(head: Buffer[]): AsyncGenerator<Buffer> {
    for (let chunk = head.shift(); chunk !== undefined; chunk = head.shift()) yield chunk;
    for (;;) {
      const next = await this.source.next();
      if (next.done) break;
      yield next.value;
    }
    this.ended = true;
  }
}
