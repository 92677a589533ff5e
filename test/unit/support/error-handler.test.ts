import { DepotError, failsOverAtOnce } from '../../../src/contract';
import { errorBody, handleError } from '../../../src/support/error-handler';
import { redactor } from '../../../src/support/redaction';

function errno(code: string, message = `${code}: something`): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

describe('handleError', () => {
  test.each([
    ['ENOSPC', 'no_space'],
    ['EDQUOT', 'no_space'],
    ['EFBIG', 'no_space'],
    ['EACCES', 'auth'],
    ['EPERM', 'auth'],
    ['EROFS', 'auth'],
    ['ECONNREFUSED', 'unavailable'],
    ['ECONNRESET', 'unavailable'],
    ['ETIMEDOUT', 'unavailable'],
    ['EHOSTUNREACH', 'unavailable'],
    ['EAI_AGAIN', 'unavailable'],
    ['EPIPE', 'unavailable'],
    ['EIO', 'unavailable'],
    ['ENOENT', 'not_found'],
    ['EWHATEVER', 'internal'],
    ['ENOTDIR', 'internal'],
  ])('%s → %s', (code, expected) => {
    const original = errno(code);
    const classified = handleError(original);
    expect(classified).toBeInstanceOf(DepotError);
    expect(classified.code).toBe(expected);
    expect(classified.message).toBe(original.message);
    expect(classified.cause).toBe(original);
  });

  test('retryable follows the code: no_space is not retried, unavailable is', () => {
    expect(handleError(errno('ENOSPC')).retryable).toBe(false);
    expect(handleError(errno('ECONNREFUSED')).retryable).toBe(true);
    expect(handleError(new Error('x')).retryable).toBe(true);
  });

  test('a plain Error is internal with its message', () => {
    const e = handleError(new TypeError('cannot read properties of undefined'));
    expect(e.code).toBe('internal');
    expect(e.message).toBe('cannot read properties of undefined');
  });

  test('a DepotError is returned unchanged (same instance)', () => {
    const original = new DepotError('conflict', 'other content', { field: 'ref.key' });
    expect(handleError(original)).toBe(original);
  });

  test('an AbortError is unavailable', () => {
    const abort = new Error('This operation was aborted');
    abort.name = 'AbortError';
    expect(handleError(abort).code).toBe('unavailable');
    const controller = new AbortController();
    controller.abort();
    let thrown: unknown;
    try {
      controller.signal.throwIfAborted();
    } catch (error) {
      thrown = error;
    }
    expect(handleError(thrown).code).toBe('unavailable');
  });

  test.each([['a string'], [42], [null], [undefined], [{ some: 'object' }]])('a non-Error thrown value %p is internal', (value) => {
    const e = handleError(value);
    expect(e.code).toBe('internal');
    expect(typeof e.message).toBe('string');
  });

  test('the message of a classified error is redacted', () => {
    redactor.add('classify-secret-0001');
    const e = handleError(errno('ECONNREFUSED', 'connect to https://u:classify-secret-0001@h failed'));
    expect(e.message).not.toContain('classify-secret-0001');
    expect(e.message).toContain('***');
  });

  test('failsOverAtOnce: auth and no_space only', () => {
    expect(failsOverAtOnce(new DepotError('auth', 'x'))).toBe(true);
    expect(failsOverAtOnce(new DepotError('no_space', 'x'))).toBe(true);
    expect(failsOverAtOnce(new DepotError('unavailable', 'x'))).toBe(false);
    expect(failsOverAtOnce(new DepotError('internal', 'x'))).toBe(false);
  });
});

describe('errorBody', () => {
  test('is { code, message } with the code classified', () => {
    expect(errorBody(errno('ENOSPC', 'disk full'))).toEqual({ code: 'no_space', message: 'disk full' });
    expect(errorBody(new DepotError('not_found', 'no archive local:k'))).toEqual({ code: 'not_found', message: 'no archive local:k' });
  });

  test('masks secrets in a DepotError message (which handleError passes through as is)', () => {
    redactor.add('body-secret-0002');
    const body = errorBody(new DepotError('auth', 'backend refused key body-secret-0002'));
    expect(body).toEqual({ code: 'auth', message: 'backend refused key ***' });
  });

  test('masks the URL-encoded form of a secret', () => {
    redactor.add('body secret/0003');
    const body = errorBody(new Error(`GET https://x/?k=${encodeURIComponent('body secret/0003')} failed`));
    expect(body.message).toBe('GET https://x/?k=*** failed');
  });
});
