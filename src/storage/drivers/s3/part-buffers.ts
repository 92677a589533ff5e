/** How long free part buffers are kept for the next store before they are left to the collector. */
const KEEP_IDLE_MS = 30_000;

/**
 * The part buffers of one driver's multipart uploads, reused from part to part
 * and from store to store. A 16 MiB buffer left to the collector is freed only
 * at V8's next full collection, so a store that allocated a fresh one per part
 * held several generations of them at once; reused, a store's memory is its
 * `queueSize` buffers. At most `keep` free buffers of one size are kept,
 * and none once the driver has stored nothing for a while.
 */
export class PartBuffers {
  private free: Buffer[] = [];
  private size = 0;
  private idle?: NodeJS.Timeout;

  constructor(private readonly keep: number) {}

  take(size: number): Buffer {
    if (size !== this.size) {
      this.free = [];
      this.size = size;
    }
    // Uninitialised memory: only the bytes a part was filled with are ever sent.
    return this.free.pop() ?? Buffer.allocUnsafeSlow(size);
  }

  /** Gives back a buffer no request uses any more. */
  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.free.length < this.keep) this.free.push(buffer);
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.clear(), KEEP_IDLE_MS);
    this.idle.unref();
  }

  clear(): void {
    clearTimeout(this.idle);
    this.free = [];
  }
}
