/** Small statistics for benchmark samples. */

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100) of the samples. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Ratios a[i] / b[i] of paired runs (measured side by side). */
export function pairedRatios(a: number[], b: number[]): number[] {
  return a.map((value, i) => value / b[i]);
}

/**
 * `items` rotated by `round`: who goes first changes from round to round, so
 * an advantage of going first (or last) does not favour one side.
 */
export function rotated<T>(items: readonly T[], round: number): T[] {
  const k = ((round % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
/** The untimed run's file where a full-size one would take long (measurements 8 and 9): large enough for the large-file paths (≥ 8 MiB). */
export const WARM_UP_BYTES = 64 * MiB;

export function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toFixed(digits);
}

/** "1.23 (1.10–1.31)": the median and the range of the runs. */
export function fmtSpread(values: number[], digits = 2): string {
  if (values.length === 0) return 'n/a';
  const min = Math.min(...values);
  const max = Math.max(...values);
  return `${fmt(median(values), digits)} (${fmt(min, digits)}–${fmt(max, digits)})`;
}

/** One contender's run: wall seconds, its own CPU seconds, and the server's CPU seconds meanwhile. */
export interface Timing {
  seconds: number;
  cpuSeconds: number;
  serverCpuSeconds: number;
}

/** What a large-archive comparison keeps of each counted run besides its seconds (filled by recordRound), and the depot worker's memory. */
export interface ComparisonFigures<C extends string> {
  /** CPU seconds (user + system) per counted run: of the contender's own process, and of the server meanwhile. */
  cpu: Record<C, number[]>;
  serverCpu: Record<C, number[]>;
  /** VmHWM of the depot worker before its first store, and after each round (peak RSS only grows). */
  depotIdleRss: number;
  depotPeakRss: number[];
}

/**
 * The side-by-side protocol of the large-archive comparisons: one untimed run
 * each (logins, lazy loading; `warmUp`, e.g. with a smaller file where a full
 * one takes long), then `runs` rounds in rotating order; every run is settled
 * (its upload removed, the disk flushed) before the next starts.
 */
export async function rotatedRounds<C extends string, M extends Pick<Timing, 'seconds'>>(
  contenders: readonly C[],
  runs: number,
  once: (who: C) => Promise<M>,
  settle: (measured: M) => Promise<void>,
  onRound: (round: Record<C, M>, index: number) => void,
  warmUp: (who: C) => Promise<M> = once,
): Promise<void> {
  for (const who of contenders) await settle(await warmUp(who));
  for (let i = 0; i < runs; i++) {
    const round = {} as Record<C, M>;
    for (const who of rotated(contenders, i)) {
      const measured = await once(who);
      await settle(measured);
      round[who] = measured;
    }
    onRound(round, i);
  }
}

/** Appends one round's timings to a comparison's per-contender series (seconds, own CPU, server CPU). */
export function recordRound<C extends string>(
  result: Record<C, number[]> & { cpu: Record<C, number[]>; serverCpu: Record<C, number[]> },
  contenders: readonly C[],
  round: Record<C, Timing>,
): void {
  for (const who of contenders) {
    result[who].push(round[who].seconds);
    result.cpu[who].push(round[who].cpuSeconds);
    result.serverCpu[who].push(round[who].serverCpuSeconds);
  }
}
