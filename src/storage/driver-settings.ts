import { z } from 'zod';

/** `timeoutMs` when a driver's settings have none. */
export const DEFAULT_DRIVER_TIMEOUT_MS = 30_000;

/** Settings every driver type accepts (CONTRACT §7, "Common to every driver"). */
export const commonDriverSettings = {
  /** Bound on each backend call, in milliseconds. */
  timeoutMs: z.number().int().positive().max(3_600_000).optional(),
  /** Per-process cap on parallel transfers to this backend. */
  maxConcurrent: z.number().int().positive().max(1024).optional(),
};
