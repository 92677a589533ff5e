import { Transform, TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A byte budget shared by every read it paces (a fixity run's, CONTRACT §8):
 * from its first byte on, never more than `bytesPerSecond` on average. Each
 * chunk passes once the time its bytes are due has come, so a backend, its
 * disks and its network are never asked for more than the rate, whatever
 * the archives' sizes.
 */
export class ByteRate {
  private started?: number;
  private consumed = 0;

  constructor(readonly bytesPerSecond: number) {}

  /** Resolves when `bytes` more may be read. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    this.started ??= Date.now();
    this.consumed += bytes;
    const due = this.started + (this.consumed / this.bytesPerSecond) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait, undefined, { signal });
  }

  /** A pass-through stream paced by this rate. */
  pace(signal?: AbortSignal): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) => {
        this.take(chunk.length, signal).then(
          () => done(null, chunk),
          (error: Error) => done(error),
        );
      },
    });
  }
}
