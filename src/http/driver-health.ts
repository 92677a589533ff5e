import type { CheckResult } from '../contract';
import type { StorageAPI } from '../storage/api';

export interface DriverState {
  /** Absent until the first check of this driver has finished. */
  last?: CheckResult & { checkedAt: string };
}

/**
 * The connection check of every driver, run now and then every `intervalMs`
 * (one round at a time), so that /health and /metrics answer from the last
 * result instead of touching every backend on each scrape.
 */
export class DriverHealth {
  private readonly states = new Map<string, DriverState>();
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly storage: StorageAPI,
    private readonly intervalMs: number,
  ) {
    for (const name of storage.driverNames()) this.states.set(name, {});
  }

  start(): void {
    const tick = () => {
      this.round = this.checkAll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.intervalMs);
      });
    };
    tick();
  }

  /** Resolves when the round in progress (if any) has finished. */
  async settled(): Promise<void> {
    await this.round;
  }

  /** A result older than three rounds is reported as failed: its check is stuck. */
  snapshot(): Array<{ driver: string } & DriverState> {
    const staleBefore = Date.now() - 3 * this.intervalMs;
    return [...this.states.entries()].map(([driver, state]) => {
      const last = state.last;
      if (!last || Date.parse(last.checkedAt) >= staleBefore) return { driver, ...state };
      return { driver, last: { ...last, ok: false, error: { code: 'unavailable', message: `no check has finished since ${last.checkedAt}` } } };
    });
  }

  private async checkAll(): Promise<void> {
    await Promise.all(
      this.storage.driverNames().map(async (name) => {
        // A check that overruns its round is aborted (drivers stop at the signal where their backend lets them).
        const result = await this.storage
          .getArchiveStore(name)
          .check({ signal: AbortSignal.timeout(this.intervalMs) })
          .catch((error: Error) => ({ driver: name, ok: false, error: { code: 'internal' as const, message: error.message } }));
        this.states.set(name, { last: { ...result, checkedAt: new Date().toISOString() } });
      }),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
  }
}
