import { DepotError } from '../../src/contract';

/** The DepotError an operation rejects with; anything else (success included) fails the test. */
export async function failure(operation: Promise<unknown>): Promise<DepotError> {
  const error = await operation.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof DepotError)) throw new Error(`expected a DepotError, got ${String(error)}`);
  return error;
}
