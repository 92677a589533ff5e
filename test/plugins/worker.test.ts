import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { StoreResult } from '../../src/contract';
import { digestOf, patternBytes } from '../../src/conformance/streams';
import { CliRun, runDepot } from '../helpers/depot-cli';
import { cleanupAll, spawnWorkerProcess, TempDirs, WorkerProcess, writeConfigFile } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { EXAMPLE_DIR, installExample } from './example-plugin';

/**
 * A store end to end with a plugin driver: `depot worker` loads the example
 * plugin through `module:` (a package installed beside the config), stores a
 * task sent by `depot store`, and `depot retrieve` reads it back verified.
 */
jest.setTimeout(300_000);
const temp = new TempDirs();
const SEAL = 'seal key of the worker test, never logged';
let redis: RedisServer;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  await installExample();
  redis = await startRedis();
});

afterAll(() =>
  cleanupAll(
    () => worker?.kill(),
    () => redis?.stop(),
    () => temp.cleanup(),
  ),
);

function expectOk(run: CliRun, what: string): void {
  if (run.code !== 0) throw new Error(`${what}: exit ${run.code}\n${run.stdout}\n${run.stderr}\nworker:\n${worker?.output() ?? ''}`);
}

test('depot worker stores and retrieves through the plugin driver', async () => {
  const work = await temp.make('depot-plugin-worker-');
  const root = path.join(work, 'archives');
  await mkdir(root);
  await mkdir(path.join(work, 'node_modules'));
  await writeFile(path.join(work, 'seal.key'), SEAL);
  // Installed beside the config as `npm install depot-driver-example` would (a link, as npm makes for file: packages).
  await symlink(EXAMPLE_DIR, path.join(work, 'node_modules', 'depot-driver-example'), 'dir');
  const configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    drivers: { plug: { module: 'depot-driver-example', root: './archives', sealKeyFile: 'seal.key', maxConcurrent: 2 } },
    paths: { allowed: [work] },
  });
  worker = spawnWorkerProcess(configFile);

  const file = path.join(work, 'exam.zip');
  const bytes = patternBytes(3 * 1024 * 1024 + 17, 'plugin worker');
  await writeFile(file, bytes);
  const stored = await runDepot(['store', file, '--meta', 'courseId=7', '--json'], configFile);
  expectOk(stored, 'depot store');
  const result = (JSON.parse(stored.stdout) as { result: StoreResult }).result;
  expect(result).toMatchObject({ name: 'exam.zip', ...digestOf(bytes), metadata: { courseId: '7' }, ref: { driver: 'plug' } });

  // Where the plugin keeps it, sealed with the key from the file.
  const { keyFiles } = (await import(EXAMPLE_DIR)) as { keyFiles: (root: string, key: string) => { archive: string; manifest: string } };
  const files = keyFiles(root, result.ref.key);
  expect(digestOf(await readFile(files.archive))).toEqual(digestOf(bytes));
  expect(JSON.parse(await readFile(files.manifest, 'utf8'))).toMatchObject({ seal: expect.stringMatching(/^[0-9a-f]{64}$/) });

  const out = path.join(work, 'copy.zip');
  const retrieved = await runDepot(['retrieve', 'plug', result.ref.key, '--out', out], configFile);
  expectOk(retrieved, 'depot retrieve');
  expect(retrieved.stdout).toContain('verified');
  expect(digestOf(await readFile(out))).toEqual(digestOf(bytes));

  // The connection check runs the plugin's probe; link(2) makes its write-once the kernel's.
  const check = await runDepot(['check', 'plug', '--json'], configFile);
  expectOk(check, 'depot check');
  expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, results: [{ driver: 'plug', ok: true, writeOnce: 'enforced' }] });
  expect(worker.output()).not.toContain(SEAL);
});
