/**
 * The test runner the conformance suite registers its checks with and asserts
 * through. The suite ships in the package (archive-depot/conformance) with no
 * test runner among its dependencies: it takes the plugin's own runner, given
 * to describeConformance or found as globals (jest's, vitest's with
 * `globals: true`).
 */

/** The matchers the checks use; jest's and vitest's `expect` have them all. */
export interface ConformanceMatchers {
  toBe(expected: unknown): unknown;
  toEqual(expected: unknown): unknown;
  toMatchObject(expected: object): unknown;
  toBeNull(): unknown;
  toBeUndefined(): unknown;
  toBeGreaterThanOrEqual(expected: number): unknown;
  toBeLessThan(expected: number): unknown;
  toBeLessThanOrEqual(expected: number): unknown;
  toHaveLength(expected: number): unknown;
  not: { toEqual(expected: unknown): unknown };
}

export type ConformanceExpect = (actual: unknown) => ConformanceMatchers;

/** Registers one test: jest's and vitest's `test` (or `it`). */
export type ConformanceTest = (name: string, run: () => Promise<void>, timeoutMs: number) => unknown;

export interface ConformanceRunner {
  test?: ConformanceTest;
  expect?: ConformanceExpect;
}

type RunnerGlobals = { test?: ConformanceTest; it?: ConformanceTest; expect?: ConformanceExpect };

let chosen: ConformanceRunner = {};

/** The runner later checks use; what is not given comes from the globals. */
export function useRunner(runner: ConformanceRunner): void {
  chosen = runner;
}

export function runnerTest(): ConformanceTest {
  const globals = globalThis as RunnerGlobals;
  const found = chosen.test ?? globals.test ?? globals.it;
  if (!found) throw new Error('the conformance suite needs a test runner: run it under jest, or pass { test, expect } to describeConformance');
  return found;
}

/** The checks' `expect`, looked up at each call: the runner's globals exist only while its tests run. */
export function expect(actual: unknown): ConformanceMatchers {
  const found = chosen.expect ?? (globalThis as RunnerGlobals).expect;
  if (!found) throw new Error('the conformance suite needs an expect(): run it under jest, or pass { test, expect } to describeConformance');
  return found(actual);
}
