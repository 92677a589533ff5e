/**
 * archive-depot/conformance: the conformance suite every depot driver passes,
 * for a plugin's own tests (docs/PLUGINS.md). It asserts through the plugin's
 * test runner (see runner.ts); nothing here depends on one.
 */
export { conformanceChecks, ConformanceFailure, describeConformance, runCheck } from './suite';
export type { ConformanceCheck, ConformanceHarness } from './suite';
export type { ConformanceExpect, ConformanceMatchers, ConformanceRunner, ConformanceTest } from './runner';
export { configuredDriver } from './configured-driver';
