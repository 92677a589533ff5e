import { DepotError, ErrorCode, failsOver, isRetried } from '../contract';
import { BreakerOpen, CircuitBreakers, DriversOpen } from '../archiving/breakers';
import { redactor } from './redaction';

/**
 * ErrorHandler: every failure becomes a DepotError with the contract's code
 * (`handleError`), so that retries (`retryOperation`) and failover
 * (`switchToAlternative`) are decided from the code by the contract's
 * ERROR_POLICY, never from a message. (The design's fourth operation,
 * `restartWorker` — today the start-up hand-back of a dead worker's jobs — is
 * queue plumbing: src/queue/orphaned-jobs.ts.)
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

/** Anything thrown → a DepotError with the contract's code (a DepotError as it is); the message redacted. */
export function handleError(error: unknown): DepotError {
  if (error instanceof DepotError) return error;
  const err = error as NodeJS.ErrnoException | undefined;
  const message = redactor.redact(err?.message ?? String(error));
  if (err?.name === 'AbortError') return new DepotError('unavailable', 'aborted', { cause: error });
  const code = err?.code ? ERRNO_CODES[err.code] : undefined;
  return new DepotError(code ?? 'internal', message, { cause: error });
}

/** `{ code, message }` with secrets masked: what results, events and failedReason carry. */
export function errorBody(error: unknown): { code: ErrorCode; message: string } {
  const depotError = handleError(error);
  return { code: depotError.code, message: redactor.redact(depotError.message) };
}

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** First delay; doubled on every retry, with jitter. */
  backoffMs: number;
  signal?: AbortSignal;
  onRetry?: (error: DepotError, attempt: number, delayMs: number) => void;
}

/** Exponential backoff with jitter: between half and all of backoffMs·2^(attempt-1), at most a minute. */
export function backoffDelay(backoffMs: number, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(backoffMs * 2 ** (attempt - 1), 60_000);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Runs `operation` until it succeeds, fails in a way that is not retried
 * (`isRetried`: the code's policy, or the thrower's word; never a code that
 * fails over at once), or the attempts are spent. Throws the last failure as
 * a DepotError.
 */
export async function retryOperation<T>(operation: (attempt: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      const failure = handleError(error);
      if (!isRetried(failure) || attempt >= policy.attempts || policy.signal?.aborted) throw failure;
      const delay = backoffDelay(policy.backoffMs, attempt);
      policy.onRetry?.(failure, attempt, delay);
      await sleep(delay, policy.signal);
    }
  }
}

/**
 * The failover loop: runs `attempt` on each driver in turn (the primary first,
 * then its fallbacks) until one succeeds. It goes on to the next only after a
 * failure whose code fails over (ERROR_POLICY: at once, or once `attempt`'s
 * own retries ended) and never once `signal` is aborted; `onSwitch` hears of
 * each move first. Throws the failure that ended the loop, as a DepotError.
 *
 * With `breakers` (CONTRACT §10), a driver whose breaker is open is skipped
 * as if it had failed at once (BreakerOpen), and `attempt` learns whether it
 * runs as the half-open probe. When a breaker is what ended the loop — every
 * driver skipped, or the last one stopped by its breaker opening — the
 * store throws DriversOpen: the task waits for the earliest cool-down
 * instead of failing.
 */
export async function switchToAlternative<T>(
  drivers: readonly string[],
  attempt: (driver: string, admission: { probe: boolean }) => Promise<T>,
  options: { signal?: AbortSignal; onSwitch?: (from: string, to: string, failure: DepotError) => void; breakers?: CircuitBreakers } = {},
): Promise<T> {
  let failure: DepotError | undefined;
  const open: BreakerOpen[] = [];
  for (const [i, driver] of drivers.entries()) {
    if (failure) options.onSwitch?.(drivers[i - 1], driver, failure);
    try {
      const admission = options.breakers ? await options.breakers.admit(driver) : { admitted: true as const, probe: false };
      if (!admission.admitted) throw new BreakerOpen(driver, admission.retryAt);
      return await attempt(driver, admission);
    } catch (error) {
      failure = handleError(error);
      if (failure instanceof BreakerOpen) open.push(failure);
      if (options.signal?.aborted || !failsOver(failure)) throw failure;
    }
  }
  if (failure instanceof BreakerOpen)
    throw new DriversOpen(
      open.map((o) => o.driver),
      Math.min(...open.map((o) => o.retryAt)),
    );
  throw failure ?? new DepotError('internal', 'no driver to store to');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Why `signal` was aborted, as an Error (AbortSignal's own reason can be anything the aborter passed). */
export function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new DepotError('unavailable', 'aborted');
}
