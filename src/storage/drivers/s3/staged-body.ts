import { Readable } from 'node:stream';
import { ignoreErrorEvents } from '../../../support/ignore';

/**
 * Reads an archive body in two steps: first up to one part's worth (a small
 * archive ends there and goes in one PUT), then, for a large one, the rest as a
 * stream for lib-storage's multipart upload. `ended` turns true only when the
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

  /** The head followed by the rest of the source; errors of the source surface as this stream's error. */
  remainder(head: Buffer[]): Readable {
    const source = this.source;
    const markEnded = () => (this.ended = true);
    async function* all(): AsyncGenerator<Buffer> {
      yield* head;
      for (;;) {
        const next = await source.next();
        if (next.done) break;
        yield next.value;
      }
      markEnded();
    }
    const stream = Readable.from(all(), { objectMode: false });
    // Its reader (lib-storage) sees a source error through iteration; this keeps a late one from going unhandled.
    ignoreErrorEvents(stream, 'its reader (lib-storage) sees a source error through iteration');
    return stream;
  }
}
