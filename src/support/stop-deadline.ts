import type { Logger } from './logging';

/** Beyond a stop's own grace period, what closing connections may take before the process gives up on them. */
export const STOP_BOUND_MS = 3_000;

/**
 * The last resort of a stop (SIGTERM, SIGINT): when the orderly close has not
 * ended the process after `ms`, it exits 1. A Redis or a backend that no longer
 * answers can hold BullMQ's and the SDKs' closes for as long as it is away;
 * an operator's stop must not wait for it. Tasks that were running come back
 * through stalled-job recovery once Redis is back. The timer does not itself
 * keep the process alive.
 */
export function exitIfStopHangs(ms: number, logger: Logger, what: string): void {
  const timer = setTimeout(() => {
    logger.error(
      `${what} did not stop within ${ms} ms (Redis or a backend does not answer); exiting now — running tasks come back through stalled-job recovery`,
    );
    process.exit(1);
  }, ms);
  timer.unref();
}
