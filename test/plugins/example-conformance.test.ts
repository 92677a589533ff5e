import { execFile } from 'node:child_process';
import path from 'node:path';
import { conformanceChecks } from '../../src/conformance';
import { PROJECT_ROOT } from '../helpers/queue-harness';
import { EXAMPLE_DIR, installExample } from './example-plugin';

/**
 * The example plugin's own test, run as its author runs it (`jest` in its
 * folder): the conformance suite from archive-depot/conformance on the plugin
 * loaded through `module:` from a depot config (examples/depot-driver-example/test).
 */
jest.setTimeout(400_000);

test('the example plugin, installed from its folder, passes every conformance check', async () => {
  await installExample();
  const jest = path.join(PROJECT_ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['DEPOT_CONFIG', 'NODE_OPTIONS', 'JEST_WORKER_ID']) delete env[name];
  const outcome = await new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile(process.execPath, [jest, '--ci', '--runInBand', '--verbose'], { cwd: EXAMPLE_DIR, env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
  if (outcome.code !== 0) throw new Error(`the example's tests failed (exit ${outcome.code}):\n${outcome.output}`);
  // Every check of the suite ran there, one test each, and passed.
  expect(outcome.output).toContain(`Tests:       ${conformanceChecks.length} passed, ${conformanceChecks.length} total`);
  for (const check of conformanceChecks) expect(outcome.output).toContain(`✓ ${check.name}`);
});
