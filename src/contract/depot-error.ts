import type { ErrorCode } from './error-codes';
import { FailureOrigin, retriedByDefault } from './error-policy';

/** Marks a DepotError from any copy of depot's code (see Symbol.hasInstance below). */
const DEPOT_ERROR = Symbol.for('archive-depot.DepotError');

/**
 * The one error type that crosses module boundaries. `field` names the part of a
 * task or config that is wrong, so the message can say it.
 */
export class DepotError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  /**
   * Whether this failure may be retried: the code's default from ERROR_POLICY
   * unless the thrower knows better (`source_unavailable` is retried for URLs
   * but not for missing files). Read it through `isRetried`.
   */
  readonly retryable: boolean;
  /** `catalog` for a failure of depot's catalog, which never fails a store over to another driver (`failsOver`); else a backend's. */
  readonly origin: FailureOrigin;

  constructor(code: ErrorCode, message: string, options: { field?: string; retryable?: boolean; cause?: unknown; origin?: FailureOrigin } = {}) {
    super(options.field ? `${options.field}: ${message}` : message, { cause: options.cause });
    this.name = 'DepotError';
    this.code = code;
    this.field = options.field;
    this.retryable = options.retryable ?? retriedByDefault(code);
    this.origin = options.origin ?? 'backend';
  }

  /**
   * A driver plugin throws the DepotError of the archive-depot it was built
   * against, which may be another copy of this class (the package's build while
   * depot runs from source, or a plugin's own install): it is one all the same.
   * Subclasses keep the ordinary prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== DepotError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as { [DEPOT_ERROR]?: unknown })[DEPOT_ERROR] === true;
  }

  /** `{ code, message }` as results, events and job failedReason carry it. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

Object.defineProperty(DepotError.prototype, DEPOT_ERROR, { value: true });

export function isDepotError(error: unknown): error is DepotError {
  return error instanceof DepotError;
}
