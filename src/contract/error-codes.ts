/** The contract's error codes (CONTRACT §2 and §13); whether each is retried and fails over is in error-policy.ts. */
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

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}
