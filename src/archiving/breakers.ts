import { DepotError } from '../contract';

/**
 * The circuit breakers of the drivers (CONTRACT §10), as the task runner sees
 * them: whether a store may try a driver now, and what each attempt on it
 * came to. Where their state lives (Redis, shared by every worker process:
 * src/queue/breaker.ts) is the queue plumbing's business.
 *
 * States: closed (stores try the driver); open (for the cool-down after
 * `failures` consecutive `unavailable` attempts: stores skip it); half-open
 * (the cool-down has ended: the one store that gets `probe` tries it, the
 * others skip it until the probe's outcome closes it or opens it again).
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** May a store try the driver now: yes (as the probe, when half-open), or not before `retryAt` (ms since the epoch). */
export type Admission = { admitted: true; probe: boolean } | { admitted: false; retryAt: number };

/**
 * What an attempt on a driver says about the driver: it answered
 * (`success`), it could not be reached (`unavailable`: counts toward the
 * breaker), or nothing (`neutral`: a source or catalog failure, an abort, a
 * refusal — the backend answered, but the task did not succeed).
 */
export type AttemptOutcome = 'success' | 'unavailable' | 'neutral';

export interface CircuitBreakers {
  admit(driver: string): Promise<Admission>;
  record(driver: string, outcome: AttemptOutcome, probe: boolean): Promise<void>;
}

/** No breakers: every driver admitted (tests, and callers without a queue). */
export const NO_BREAKERS: CircuitBreakers = {
  admit: () => Promise.resolve({ admitted: true, probe: false }),
  record: () => Promise.resolve(),
};

/**
 * A store none of whose drivers may be tried now: every one's breaker is
 * open. Not a failure of the task: the queue puts it back until `retryAt`
 * (a delayed job) instead of failing it or spending one of its attempts.
 */
export class DriversOpen extends DepotError {
  constructor(
    readonly drivers: readonly string[],
    readonly retryAt: number,
  ) {
    super('unavailable', `circuit breaker open on ${drivers.join(', ')}; the task waits until ${new Date(retryAt).toISOString()}`);
    this.name = 'DriversOpen';
  }
}

/**
 * Why a store skipped a driver, or stopped retrying it: its breaker is open
 * (until `retryAt`). Not retried on that driver; the store goes on to its
 * fallbacks, and when this is what ended the store, the task waits (DriversOpen).
 */
export class BreakerOpen extends DepotError {
  constructor(
    readonly driver: string,
    readonly retryAt: number,
  ) {
    super('unavailable', `${driver}: circuit breaker open (cool-down until ${new Date(retryAt).toISOString()})`, { retryable: false });
    this.name = 'BreakerOpen';
  }
}
