import { EventEmitter } from 'node:events';
import { ignoredFailures, ignoreErrorEvents, ignoreFailure } from '../../../src/support/ignore';

describe('failures let pass on purpose', () => {
  test('ignoreFailure resolves to the value, or to undefined on a rejection, counted under its reason', async () => {
    expect(await ignoreFailure(Promise.resolve(3), 'unit: a value')).toBe(3);
    expect(await ignoreFailure(Promise.reject(new Error('gone')), 'unit: a rejection')).toBeUndefined();
    expect(ignoredFailures()['unit: a rejection']).toBe(1);
    expect(ignoredFailures()['unit: a value']).toBeUndefined();
  });

  test("ignoreErrorEvents keeps an 'error' event from ending the process, and counts it", () => {
    const emitter = new EventEmitter();
    ignoreErrorEvents(emitter, 'unit: an error event');
    expect(() => emitter.emit('error', new Error('connection reset'))).not.toThrow();
    expect(ignoredFailures()['unit: an error event']).toBe(1);
  });
});
