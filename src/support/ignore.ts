/**
 * The one way to let a failure pass on purpose, so that none passes silently:
 * every use says why it does not matter there (`why`). Each ignored failure is
 * counted under its reason, for whoever inspects a process (ignoredFailures).
 */
const counts = new Map<string, number>();

function count(why: string): void {
  counts.set(why, (counts.get(why) ?? 0) + 1);
}

/** `promise`, with a rejection turned into `undefined`. */
export function ignoreFailure<T>(promise: PromiseLike<T>, why: string): Promise<T | undefined> {
  return Promise.resolve(promise).then(
    (value) => value,
    () => {
      count(why);
      return undefined;
    },
  );
}

/**
 * An 'error' listener that drops the error. Node ends the process on an
 * 'error' event nobody listens to; connections whose failures show elsewhere
 * (a command that fails, a reconnect that is logged) need one that does nothing else.
 */
export function ignoreErrorEvents(emitter: { on(event: 'error', listener: (error: Error) => void): unknown }, why: string): void {
  emitter.on('error', () => count(why));
}

/** How many failures were let pass, by reason. */
export function ignoredFailures(): Record<string, number> {
  return Object.fromEntries(counts);
}
