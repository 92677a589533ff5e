import type { Space } from '../contract';

/**
 * Space against a configured quota (`quotaBytes`) on a backend that reports
 * no free space of its own (S3, FTP): used is what `measure` counts over every
 * object (a listing or a walk), and a figure is reused for `ttlMs`, since each
 * count is costly and `depot serve` checks every driver each minute. A failed
 * count is not kept. Without a quota there is nothing to report.
 */
export class QuotaUsage {
  private usage?: { at: number; bytes: Promise<number> };

  constructor(
    private readonly quotaBytes: number | undefined,
    private readonly ttlMs: number,
    private readonly measure: () => Promise<number>,
  ) {}

  async space(): Promise<Space> {
    const quota = this.quotaBytes;
    if (quota === undefined) return {};
    if (!this.usage || Date.now() - this.usage.at > this.ttlMs) {
      const bytes = this.measure();
      this.usage = { at: Date.now(), bytes };
      bytes.catch(() => (this.usage = undefined));
    }
    const used = await this.usage.bytes;
    return { totalBytes: quota, usedBytes: used, freeBytes: Math.max(0, quota - used) };
  }
}
