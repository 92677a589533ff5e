import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError } from '../../src/config/config-error';
import { Config, loadConfig } from '../../src/config/load';
import type { FieldIssue } from '../../src/contract';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { Redactor } from '../../src/support/redaction';
import { jsonOf, runDepot } from '../helpers/depot-cli';
import { PROJECT_ROOT, TempDirs } from '../helpers/queue-harness';
import { EXAMPLE_DIR, installExample } from './example-plugin';

/**
 * A driver plugin named by `module:` in a config (CONTRACT §11): where the
 * module is looked for, what makes it a configuration error (exit 2, naming
 * the driver's field), and its settings validated and its secrets resolved and
 * masked as a built-in driver's are.
 */
jest.setTimeout(120_000);
const temp = new TempDirs();
let dir: string;
let plugins: string;
let store: string;
const SEAL = 'the seal key of these tests, never printed';

/** Small plugin modules of this test's own, each wrong (or right) in one way. */
const fixtures: Record<string, string> = {
  'wrong-shape.js': `module.exports = { type: 'thing', secretFields: [] };`,
  'throws.js': `throw new Error('plugin cannot start');`,
  'builtin-type.js': definition('filesystem', [], []),
  // A plugin with nested secret and file fields; its schema takes anything.
  'nested.js': definition('nested', ['auth.password'], ['tls.caFile']),
};

function definition(type: string, secretFields: string[], fileFields: string[]): string {
  const schema = `{ safeParse: (value) => ({ success: true, data: value }) }`;
  const create = `() => { throw new Error('not made in these tests'); }`;
  return `exports.driver = { type: ${JSON.stringify(type)}, settingsSchema: ${schema}, secretFields: ${JSON.stringify(secretFields)}, fileFields: ${JSON.stringify(fileFields)}, create: ${create} };`;
}

beforeAll(async () => {
  await installExample();
  dir = await temp.make('depot-plugin-config-');
  plugins = path.join(dir, 'plugins');
  store = path.join(dir, 'store');
  await mkdir(plugins);
  await mkdir(store);
  for (const [name, text] of Object.entries(fixtures)) await writeFile(path.join(plugins, name), text);
  // A plugin installed as a package beside the config, as `npm install depot-driver-example` there would.
  await mkdir(path.join(dir, 'conf', 'node_modules'), { recursive: true });
  await symlink(EXAMPLE_DIR, path.join(dir, 'conf', 'node_modules', 'depot-driver-example'), 'dir');
  await writeFile(path.join(dir, 'conf', 'seal.key'), `${SEAL}\n`);
  await writeFile(path.join(dir, 'conf', 'ca.pem'), 'a CA certificate\n');
});

afterAll(() => temp.cleanup());

/** Loads `drivers: { x: settings }` from a config file in `<dir>/conf`, with the project as the working directory. */
async function load(settings: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<Config> {
  const file = path.join(dir, 'conf', 'depot.yaml');
  await writeFile(file, YAML.stringify({ drivers: { x: settings } }));
  return loadConfig({ env: { ...env, DEPOT_CONFIG: file }, cwd: PROJECT_ROOT, factory: defaultDriverFactory(), redactor: new Redactor() });
}

async function issuesOf(settings: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<FieldIssue[]> {
  const error = await load(settings, env).then(
    () => new Error('the config loaded'),
    (e: unknown) => e,
  );
  if (!(error instanceof ConfigError)) throw error;
  return error.issues;
}

/** The example plugin by its absolute path (the config is in a temporary folder). */
const example = { module: EXAMPLE_DIR };

describe('where module: is looked for', () => {
  test('a path, against the config file folder', async () => {
    const config = await load({ module: '../plugins/nested.js', auth: {} });
    expect(config.drivers.x).toMatchObject({ type: 'nested', module: path.join(plugins, 'nested.js') });
  });

  test('a path is never looked for from the working directory', async () => {
    // It exists there (the project), not beside the config.
    expect(await issuesOf({ module: './examples/depot-driver-example', root: store })).toEqual([
      { field: 'drivers.x.module', message: expect.stringContaining("cannot find module './examples/depot-driver-example'") },
    ]);
  });

  test("a package name, from the config folder's node_modules", async () => {
    const config = await load({ module: 'depot-driver-example', root: store });
    expect(config.drivers.x).toMatchObject({ type: 'flatdir', module: path.join(EXAMPLE_DIR, 'dist', 'index.js') });
  });
});

describe('a module that cannot be used is a configuration error naming the driver', () => {
  test.each([
    ['missing', { module: './no-such-plugin' }, "cannot find module './no-such-plugin'"],
    ['missing package', { module: 'depot-driver-nonexistent' }, "cannot find module 'depot-driver-nonexistent'"],
    ['throws while loading', { module: '../plugins/throws.js' }, 'failed: plugin cannot start'],
    [
      'exports the wrong shape',
      { module: '../plugins/wrong-shape.js' },
      'does not export a DriverDefinition as its default export or as `driver`: `settingsSchema`',
    ],
    ['takes a built-in type', { module: '../plugins/builtin-type.js' }, "defines type 'filesystem', which is built in"],
    ['is not a string', { module: 42 }, 'must name a package or a path'],
  ])('%s', async (_, settings, message) => {
    expect(await issuesOf(settings)).toEqual([{ field: 'drivers.x.module', message: expect.stringContaining(message) }]);
  });

  test("a type that is not the plugin's", async () => {
    expect(await issuesOf({ ...example, type: 's3', root: store })).toEqual([
      { field: 'drivers.x.type', message: expect.stringContaining("must be 'flatdir'") },
    ]);
  });
});

describe("the plugin's settings", () => {
  test('checked by its schema; the shared keys by depot, and passed through', async () => {
    const config = await load({ ...example, root: '../store', timeoutMs: 5000, maxConcurrent: 2 });
    // type from the plugin; root a file field, resolved against the config folder; module the file it resolved to.
    expect(config.drivers.x).toEqual({
      type: 'flatdir',
      root: store,
      timeoutMs: 5000,
      maxConcurrent: 2,
      module: path.join(EXAMPLE_DIR, 'dist', 'index.js'),
    });
  });

  test.each([
    ['a missing required setting', {}, 'drivers.x.root'],
    ['a setting the plugin does not know', { root: '../store', rooot: '../store' }, 'drivers.x.rooot'],
    ['a wrong value', { root: '../store', sealKey: '${SHORT}' }, 'drivers.x.sealKey'],
    ['a shared key out of range', { root: '../store', timeoutMs: 0 }, 'drivers.x.timeoutMs'],
    ['a shared key of the wrong type', { root: '../store', maxConcurrent: 'many' }, 'drivers.x.maxConcurrent'],
    ['a file field that is not there', { root: './missing-dir' }, 'drivers.x.root'],
  ])('%s: exit 2 naming the field', async (_, settings, field) => {
    const issues = await issuesOf({ ...example, ...settings }, { SHORT: 'short' });
    expect(issues.map((issue) => issue.field)).toEqual([field]);
  });

  test('a secret as a literal is refused, without echoing it', async () => {
    const issues = await issuesOf({ ...example, root: store, sealKey: SEAL });
    expect(issues).toEqual([{ field: 'drivers.x.sealKey', message: expect.stringContaining('not a literal value') }]);
    expect(JSON.stringify(issues)).not.toContain(SEAL);
  });

  test('secrets from ${ENV} or <field>File, nested ones too; nested file fields resolved', async () => {
    const fromFile = await load({ ...example, root: store, sealKeyFile: 'seal.key' });
    expect(fromFile.drivers.x.sealKey).toBe(SEAL);
    const fromEnv = await load({ ...example, root: store, sealKey: '${SEAL}' }, { SEAL });
    expect(fromEnv.drivers.x.sealKey).toBe(SEAL);

    const nested = await load({ module: '../plugins/nested.js', auth: { user: 'u', passwordFile: 'seal.key' }, tls: { caFile: 'ca.pem' } });
    expect(nested.drivers.x).toMatchObject({ auth: { user: 'u', password: SEAL }, tls: { caFile: path.join(dir, 'conf', 'ca.pem') } });
    expect(await issuesOf({ module: '../plugins/nested.js', auth: { password: SEAL } })).toEqual([
      { field: 'drivers.x.auth.password', message: expect.stringContaining('not a literal value') },
    ]);
    expect(await issuesOf({ module: '../plugins/nested.js', tls: { caFile: 'no-ca.pem' } })).toEqual([
      { field: 'drivers.x.tls.caFile', message: expect.stringContaining('cannot read') },
    ]);
    expect(defaultDriverFactory().masked(nested.drivers.x)).toMatchObject({ auth: { user: 'u', password: '***' } });
  });
});

describe('depot drivers', () => {
  test('shows a plugin driver with its secret masked', async () => {
    const file = path.join(dir, 'conf', 'drivers.yaml');
    await writeFile(file, YAML.stringify({ drivers: { x: { module: 'depot-driver-example', root: '../store', sealKeyFile: 'seal.key' } } }));
    const run = await runDepot(['drivers', '--json'], file);
    expect(run.code).toBe(0);
    const report = jsonOf<{ drivers: Array<{ name: string; type: string; settings: Record<string, unknown> }> }>(run);
    expect(report.drivers).toEqual([
      expect.objectContaining({
        name: 'x',
        type: 'flatdir',
        settings: { type: 'flatdir', root: store, sealKey: '***', module: path.join(EXAMPLE_DIR, 'dist', 'index.js') },
      }),
    ]);
    expect(run.stdout + run.stderr).not.toContain(SEAL);
  });

  test('a plugin that cannot be loaded: exit 2, naming the field', async () => {
    const file = path.join(dir, 'conf', 'broken.yaml');
    await writeFile(file, YAML.stringify({ drivers: { x: { module: '../plugins/wrong-shape.js' } } }));
    const run = await runDepot(['drivers'], file);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('drivers.x.module');
    expect(run.stderr).toContain('does not export a DriverDefinition');
  });
});
