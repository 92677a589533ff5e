import type { Logger } from '../support/logging';

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/**
 * How a long-running depot process (`depot worker`, `depot serve`) ends: the
 * first SIGTERM or SIGINT calls `stop`, which stops in order; any second one,
 * of either kind, while that stop runs ends the process at once with exit
 * code 1 — an operator who signals again does not want to wait (Ctrl-C twice,
 * or a supervisor's repeated SIGTERM). `again` says what that leaves behind;
 * `beforeExit` runs just before (a supervisor passes the signal on to its children).
 *
 * One listener for both signals, kept for the process's life: with one
 * listener per signal removed after its first call, a second SIGTERM found
 * none and took Node's default action (killed by the signal, no log line).
 */
export function onStopSignals(
  logger: Logger,
  stop: (signal: StopSignal) => void,
  again: string,
  beforeExit?: (signal: StopSignal) => void,
): (signal: StopSignal) => void {
  let stopping = false;
  const onSignal = (signal: StopSignal) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting at once; ${again}`);
      beforeExit?.(signal);
      process.exit(1);
    }
    stopping = true;
    stop(signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  // The same stop for a process told otherwise (a supervised worker whose supervisor is gone).
  return onSignal;
}
