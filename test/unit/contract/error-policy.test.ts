import { DepotError, ERROR_CODES, ERROR_POLICY, ErrorCode, failsOver, failsOverAtOnce, Failover, isRetried, retriedByDefault } from '../../../src/contract';

/** CONTRACT §2 "Error codes", §3 "Retries and failover in depot" and §13, as one table: code → retried, failover. */
const CONTRACT: Record<ErrorCode, [retried: boolean, failover: Failover]> = {
  invalid_task: [false, 'never'],
  unknown_driver: [false, 'never'],
  source_unavailable: [true, 'never'],
  conflict: [false, 'never'],
  integrity: [false, 'never'],
  not_found: [false, 'never'],
  retention: [false, 'never'],
  auth: [false, 'at_once'],
  no_space: [false, 'at_once'],
  unavailable: [true, 'after_retries'],
  internal: [true, 'after_retries'],
  misconfigured: [false, 'never'],
};

describe('ERROR_POLICY (the one retry and failover table)', () => {
  test('has exactly one row per contract code', () => {
    expect(Object.keys(ERROR_POLICY).sort()).toEqual([...ERROR_CODES].sort());
  });

  test.each(ERROR_CODES.map((code) => [code, ...CONTRACT[code]] as const))('%s: retried %p, fails over %p', (code, retried, failover) => {
    expect(ERROR_POLICY[code]).toEqual({ retried, failover });
    expect(retriedByDefault(code)).toBe(retried);
    expect(new DepotError(code, 'x').retryable).toBe(retried);
    expect(isRetried(new DepotError(code, 'x'))).toBe(retried);
    expect(failsOver({ code })).toBe(failover !== 'never');
    expect(failsOverAtOnce({ code })).toBe(failover === 'at_once');
  });

  test('is consistent: at once means not retried here; after the retries means retried first', () => {
    for (const code of ERROR_CODES) {
      const { retried, failover } = ERROR_POLICY[code];
      if (failover === 'at_once') expect({ code, retried }).toEqual({ code, retried: false });
      if (failover === 'after_retries') expect({ code, retried }).toEqual({ code, retried: true });
    }
  });
});

describe('isRetried: the thrower may know better than the table', () => {
  test('source_unavailable is retried for a URL, not for a missing file', () => {
    expect(isRetried(new DepotError('source_unavailable', 'HTTP 503'))).toBe(true);
    expect(isRetried(new DepotError('source_unavailable', 'ENOENT', { retryable: false }))).toBe(false);
  });

  test('a code that fails over at once is never retried on the same backend, whatever the thrower says', () => {
    expect(isRetried(new DepotError('auth', 'x', { retryable: true }))).toBe(false);
    expect(isRetried(new DepotError('no_space', 'x', { retryable: true }))).toBe(false);
  });
});

describe('a failure of the catalog (CONTRACT §8)', () => {
  test('is retried in place like any unavailable, but never fails a store over to another driver', () => {
    const failure = new DepotError('unavailable', 'catalog at sqlite:/x: database is locked', { origin: 'catalog' });
    expect(isRetried(failure)).toBe(true);
    expect(failsOver(failure)).toBe(false);
    expect(failsOverAtOnce(new DepotError('no_space', 'catalog disk full', { origin: 'catalog' }))).toBe(false);
    expect(failsOver(new DepotError('unavailable', 'backend down'))).toBe(true);
  });
});
