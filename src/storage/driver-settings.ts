import { z } from 'zod';

/** `timeoutMs` when a driver's settings have none. */
export const DEFAULT_DRIVER_TIMEOUT_MS = 30_000;

/** CONTRACT §10: a driver's circuit breaker, on unless `breaker: false`. */
export const DEFAULT_BREAKER = { failures: 5, coolDownMs: 30_000 } as const;
export type BreakerSettings = { failures: number; coolDownMs: number };

const breakerSettings = z.union([
  z.literal(false),
  z.strictObject({
    /** Consecutive `unavailable` attempts on the driver (by any worker, across tasks) that open it. */
    failures: z.number().int().min(1).max(10_000).default(DEFAULT_BREAKER.failures),
    /** How long it stays open before one probe may try the driver again. */
    coolDownMs: z.number().int().min(100).max(86_400_000).default(DEFAULT_BREAKER.coolDownMs),
  }),
]);

/** Settings every driver type accepts (CONTRACT §7, "Common to every driver"; §10 `breaker`). */
export const commonDriverSettings = {
  /** Bound on each backend call, in milliseconds. */
  timeoutMs: z.number().int().positive().max(3_600_000).optional(),
  /** Per-process cap on parallel transfers to this backend. */
  maxConcurrent: z.number().int().positive().max(1024).optional(),
  /** The driver's circuit breaker (CONTRACT §10); absent: on, with the defaults; `false`: off. */
  breaker: breakerSettings.optional(),
};

/**
 * A driver's breaker settings from its validated config (every driver's schema
 * spreads commonDriverSettings; a plugin's settings are checked here again):
 * undefined when it is turned off.
 */
export function breakerOf(settings: Readonly<Record<string, unknown>>): BreakerSettings | undefined {
  const parsed = breakerSettings.optional().safeParse(settings.breaker);
  if (!parsed.success) return { ...DEFAULT_BREAKER };
  if (parsed.data === false) return undefined;
  return parsed.data ?? { ...DEFAULT_BREAKER };
}
