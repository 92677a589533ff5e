import { DepotError, ERROR_CODES, failsOverAtOnce, isDepotError, isErrorCode, retriedByDefault } from '../../../src/contract';

describe('error codes (CONTRACT §2 and §13 tables)', () => {
  test('are exactly the contract codes', () => {
    expect([...ERROR_CODES].sort()).toEqual(
      [
        'auth',
        'conflict',
        'integrity',
        'internal',
        'invalid_task',
        'misconfigured',
        'no_space',
        'not_found',
        'retention',
        'source_unavailable',
        'unavailable',
        'unknown_driver',
      ].sort(),
    );
  });

  test('retried: only source_unavailable, unavailable and internal', () => {
    const retried = ERROR_CODES.filter((c) => retriedByDefault(c));
    expect(retried.sort()).toEqual(['internal', 'source_unavailable', 'unavailable']);
  });

  test('fail over at once: auth and no_space', () => {
    expect(ERROR_CODES.filter((code) => failsOverAtOnce({ code })).sort()).toEqual(['auth', 'no_space']);
  });

  test('isErrorCode', () => {
    for (const c of ERROR_CODES) expect(isErrorCode(c)).toBe(true);
    for (const v of ['Internal', 'ENOSPC', '', undefined, 3]) expect(isErrorCode(v)).toBe(false);
  });
});

describe('DepotError', () => {
  test('carries code, field in the message, and retryable from the code', () => {
    const error = new DepotError('invalid_task', 'must not be empty', { field: 'name' });
    expect(error).toBeInstanceOf(Error);
    expect(isDepotError(error)).toBe(true);
    expect(error.name).toBe('DepotError');
    expect(error.code).toBe('invalid_task');
    expect(error.field).toBe('name');
    expect(error.message).toBe('name: must not be empty');
    expect(error.retryable).toBe(false);
  });

  test.each(ERROR_CODES.map((c) => [c]))('default retryable for %s follows the table', (code) => {
    expect(new DepotError(code, 'x').retryable).toBe(retriedByDefault(code));
  });

  test('the thrower can override retryable (source_unavailable for a missing file)', () => {
    expect(new DepotError('source_unavailable', 'gone', { retryable: false }).retryable).toBe(false);
    expect(new DepotError('source_unavailable', 'gone').retryable).toBe(true);
  });

  test('toJSON is { code, message } only', () => {
    const cause = new Error('inner');
    const error = new DepotError('conflict', 'other content', { field: 'ref.key', cause });
    expect(error.cause).toBe(cause);
    expect(JSON.parse(JSON.stringify(error))).toEqual({ code: 'conflict', message: 'ref.key: other content' });
  });

  test('isDepotError is false for look-alikes', () => {
    expect(isDepotError({ code: 'internal', message: 'x' })).toBe(false);
    expect(isDepotError(new Error('x'))).toBe(false);
  });
});
