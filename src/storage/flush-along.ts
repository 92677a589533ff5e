import fs from 'node:fs';

/** Keep one fdatasync in flight per this many bytes written, so that a large file's final flush does not stall for seconds. */
export const SYNC_EVERY = 128 * 1024 * 1024;

/**
 * Keeps one fdatasync of `fd` in flight per `every` bytes written (none when
 * `every` is undefined), so that a large copy's final flush does not stall
 * for seconds; `done()` before the final flush, `settled()` before the
 * descriptor is closed on any path.
 */
export class FlushAlong {
  private since = 0;
  private flushing?: Promise<void>;
  /** The first flush that failed: reported by done(), since a later fsync of the file need not report it again. */
  private failure?: Error;

  constructor(
    private readonly fd: number,
    private readonly every: number | undefined,
  ) {}

  wrote(bytes: number): void {
    if (this.every === undefined) return;
    this.since += bytes;
    if (this.since < this.every || this.flushing) return;
    this.since = 0;
    // Handled here at once: a failure left for later would end the process as an unhandled rejection.
    this.flushing = fdatasync(this.fd)
      .catch((error: unknown) => {
        this.failure ??= error as Error;
      })
      .finally(() => (this.flushing = undefined));
  }

  /** Every flush ended; throws the first one's failure. */
  async done(): Promise<void> {
    await this.flushing;
    if (this.failure !== undefined) throw this.failure;
  }

  /** The flush in flight, ended (a failure is done()'s to report). */
  async settled(): Promise<void> {
    await this.flushing;
  }
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}
