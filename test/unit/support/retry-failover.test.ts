import { DepotError, ErrorCode } from '../../../src/contract';
import { retryOperation, switchToAlternative } from '../../../src/support/error-handler';

/** An operation that fails with `codes` in turn, then succeeds; counts its calls. */
function failing(...codes: ErrorCode[]): { run: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    run: async () => {
      const code = codes[calls++];
      if (code) throw new DepotError(code, `attempt ${calls}`);
      return 'done';
    },
    calls: () => calls,
  };
}

describe('retryOperation', () => {
  test('retries a retried code until it succeeds', async () => {
    const op = failing('unavailable', 'internal');
    await expect(retryOperation(op.run, { attempts: 5, backoffMs: 1 })).resolves.toBe('done');
    expect(op.calls()).toBe(3);
  });

  test('stops after the attempts with the last failure', async () => {
    const op = failing('unavailable', 'unavailable', 'unavailable');
    await expect(retryOperation(op.run, { attempts: 2, backoffMs: 1 })).rejects.toMatchObject({ code: 'unavailable', message: 'attempt 2' });
    expect(op.calls()).toBe(2);
  });

  test.each<ErrorCode>(['invalid_task', 'conflict', 'integrity', 'not_found', 'retention', 'auth', 'no_space', 'misconfigured'])(
    '%s is not retried',
    async (code) => {
      const op = failing(code);
      await expect(retryOperation(op.run, { attempts: 5, backoffMs: 1 })).rejects.toMatchObject({ code });
      expect(op.calls()).toBe(1);
    },
  );

  test("the thrower's word: source_unavailable for a missing file is not retried", async () => {
    let calls = 0;
    const run = () => {
      calls++;
      return Promise.reject(new DepotError('source_unavailable', 'gone', { retryable: false }));
    };
    await expect(retryOperation(run, { attempts: 5, backoffMs: 1 })).rejects.toMatchObject({ code: 'source_unavailable' });
    expect(calls).toBe(1);
  });

  test('anything thrown leaves as a DepotError', async () => {
    await expect(retryOperation(() => Promise.reject(new Error('boom')), { attempts: 1, backoffMs: 1 })).rejects.toBeInstanceOf(DepotError);
  });
});

describe('switchToAlternative (the failover loop)', () => {
  /** Each driver fails with its code (or succeeds without one); records the order of attempts and switches. */
  function run(outcomes: Record<string, ErrorCode | undefined>, signal?: AbortSignal) {
    const tried: string[] = [];
    const switches: string[] = [];
    const result = switchToAlternative(
      Object.keys(outcomes),
      async (driver) => {
        tried.push(driver);
        const code = outcomes[driver];
        if (code) throw new DepotError(code, `${driver} failed`);
        return driver;
      },
      { signal, onSwitch: (from, to, failure) => switches.push(`${from}→${to} (${failure.code})`) },
    );
    return { result, tried, switches };
  }

  test.each<ErrorCode>(['auth', 'no_space', 'unavailable', 'internal'])('%s moves on to the next driver', async (code) => {
    const { result, tried, switches } = run({ a: code, b: undefined });
    await expect(result).resolves.toBe('b');
    expect(tried).toEqual(['a', 'b']);
    expect(switches).toEqual([`a→b (${code})`]);
  });

  test.each<ErrorCode>(['invalid_task', 'source_unavailable', 'conflict', 'integrity', 'not_found', 'retention', 'misconfigured'])(
    '%s ends the loop on the driver it happened on',
    async (code) => {
      const { result, tried, switches } = run({ a: code, b: undefined });
      await expect(result).rejects.toMatchObject({ code, message: 'a failed' });
      expect(tried).toEqual(['a']);
      expect(switches).toEqual([]);
    },
  );

  test('the last failure is thrown when every driver failed over', async () => {
    const { result, tried } = run({ a: 'auth', b: 'unavailable', c: 'no_space' });
    await expect(result).rejects.toMatchObject({ code: 'no_space', message: 'c failed' });
    expect(tried).toEqual(['a', 'b', 'c']);
  });

  test('never once aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const { result, tried } = run({ a: 'unavailable', b: undefined }, controller.signal);
    await expect(result).rejects.toMatchObject({ code: 'unavailable' });
    expect(tried).toEqual(['a']);
  });
});
