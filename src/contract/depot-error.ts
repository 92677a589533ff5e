import type { ErrorCode } from './error-codes';
import { FailureOrigin, retriedByDefault } from './error-policy';

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

  /** `{ code, message }` as results, events and job failedReason carry it. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isDepotError(error: unknown): error is DepotError {
  return error instanceof DepotError;
}
