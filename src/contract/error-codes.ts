/** The contract's error codes (CONTRACT §2 and §13) and whether each is retried. */
export const ERROR_CODES = [
  'invalid_task',
  'unknown_driver',
  'source_unavailable',
  'conflict',
  'integrity',
  'not_found',
  'retention',
  'auth',
  'no_space',
  'unavailable',
  'internal',
  'misconfigured',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Codes that end a task at once, whatever the job's own options say. */
export const NEVER_RETRIED: ReadonlySet<ErrorCode> = new Set([
  'invalid_task',
  'unknown_driver',
  'conflict',
  'integrity',
  'not_found',
  'retention',
  'auth',
  'no_space',
  'misconfigured',
]);

/** Codes that move a store to the next fallback driver without further retries on this one. */
export const FAIL_OVER_AT_ONCE: ReadonlySet<ErrorCode> = new Set(['auth', 'no_space']);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}
