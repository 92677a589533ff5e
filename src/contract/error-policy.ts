import type { ErrorCode } from './error-codes';

/**
 * Where a store goes after a failure with a code: to the next fallback driver
 * at once (`at_once`: this backend cannot take it, retrying will not change
 * that), once this driver's retries are spent (`after_retries`), or nowhere
 * (`never`: the task or its source is at fault, or an operator must act, so
 * another backend would fail the same way or hide the problem).
 */
export type Failover = 'at_once' | 'after_retries' | 'never';

export interface ErrorPolicy {
  /** Whether the operation is tried again on the same backend (and the job by BullMQ), unless the thrower says otherwise. */
  readonly retried: boolean;
  readonly failover: Failover;
}

/**
 * The retry and failover policy of each contract code (CONTRACT §2 "Error
 * codes", §3, §13): the one place this rule lives. A DepotError's `retryable`
 * starts from `retried` here; a thrower overrides it only where it knows
 * better (`source_unavailable` is retried for a URL, not for a missing file).
 */
export const ERROR_POLICY: { readonly [C in ErrorCode]: ErrorPolicy } = {
  invalid_task: { retried: false, failover: 'never' },
  unknown_driver: { retried: false, failover: 'never' },
  // The source, not the backend, is at fault: a read that fails half-way is reported so too.
  source_unavailable: { retried: true, failover: 'never' },
  conflict: { retried: false, failover: 'never' },
  integrity: { retried: false, failover: 'never' },
  not_found: { retried: false, failover: 'never' },
  retention: { retried: false, failover: 'never' },
  auth: { retried: false, failover: 'at_once' },
  no_space: { retried: false, failover: 'at_once' },
  unavailable: { retried: true, failover: 'after_retries' },
  internal: { retried: true, failover: 'after_retries' },
  // Never failed over: a store without WORM must not silently take an archive that asked for retention.
  misconfigured: { retried: false, failover: 'never' },
};

/** The table's default for a code: what a DepotError's `retryable` is unless its thrower said otherwise. */
export function retriedByDefault(code: ErrorCode): boolean {
  return ERROR_POLICY[code].retried;
}

/**
 * Whether a failure is tried again — by the worker's own retries and by
 * BullMQ's: the thrower's word (`retryable`) where it gave one, else the
 * table's; never for a code that fails over at once. What the queue boundary
 * turns into BullMQ's UnrecoverableError when false.
 */
export function isRetried(failure: Failure & { readonly retryable: boolean }): boolean {
  return failure.retryable && !failsOverAtOnce(failure);
}

/**
 * What failed: a backend (a driver's), or depot's own catalog (CONTRACT §8).
 * A catalog that cannot be reached is retried in place like any `unavailable`,
 * but it is no driver's fault: it never moves a store to another driver and
 * never counts against one.
 */
export type FailureOrigin = 'backend' | 'catalog';

interface Failure {
  readonly code: ErrorCode;
  readonly origin?: FailureOrigin;
}

/** Whether a store goes on to its next fallback driver after this failure (at once, or once this driver's retries end). */
export function failsOver(failure: Failure): boolean {
  return failure.origin !== 'catalog' && ERROR_POLICY[failure.code].failover !== 'never';
}

/** Whether this failure moves a store to the next driver without retrying this one. */
export function failsOverAtOnce(failure: Failure): boolean {
  return failure.origin !== 'catalog' && ERROR_POLICY[failure.code].failover === 'at_once';
}
