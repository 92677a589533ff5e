import { DepotError, ErrorCode, FAIL_OVER_AT_ONCE } from '../contract';
import { redactor } from './redaction';

/**
 * ErrorHandler: every failure becomes a DepotError with the contract's code, so
 * callers decide retry and failover from the code, never from a message.
 */
const ERRNO_CODES: Record<string, ErrorCode> = {
  ENOSPC: 'no_space',
  EDQUOT: 'no_space',
  EFBIG: 'no_space',
  EACCES: 'auth',
  EPERM: 'auth',
  EROFS: 'auth',
  ETIMEDOUT: 'unavailable',
  ECONNREFUSED: 'unavailable',
  ECONNRESET: 'unavailable',
  ECONNABORTED: 'unavailable',
  EHOSTUNREACH: 'unavailable',
  ENETUNREACH: 'unavailable',
  ENETDOWN: 'unavailable',
  EAI_AGAIN: 'unavailable',
  EPIPE: 'unavailable',
  EIO: 'unavailable',
  ESTALE: 'unavailable',
  ENOTCONN: 'unavailable',
  ENOENT: 'not_found',
};

export function classifyError(error: unknown): DepotError {
  if (error instanceof DepotError) return error;
  const err = error as NodeJS.ErrnoException | undefined;
  const message = redactor.redact(err?.message ?? String(error));
  if (err?.name === 'AbortError') return new DepotError('unavailable', 'aborted', { cause: error });
  const code = err?.code ? ERRNO_CODES[err.code] : undefined;
  return new DepotError(code ?? 'internal', message, { cause: error });
}

/** Whether a failure moves a store to the next driver at once instead of retrying this one. */
export function failsOverAtOnce(error: DepotError): boolean {
  return FAIL_OVER_AT_ONCE.has(error.code);
}

/** `{ code, message }` with secrets masked: what results, events and failedReason carry. */
export function errorBody(error: unknown): { code: ErrorCode; message: string } {
  const depotError = classifyError(error);
  return { code: depotError.code, message: redactor.redact(depotError.message) };
}
