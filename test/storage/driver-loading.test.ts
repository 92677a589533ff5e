import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A driver type's module and its client package are loaded only when the
 * configuration names that type (src/storage/drivers/index.ts): checked in a
 * process of its own, whose require.cache is Node's, not jest's registry.
 */
const ROOT = path.join(__dirname, '..', '..');
const TYPES = ['filesystem', 's3', 'ftp', 'moodle', 'nats'];
/** What each type loads: its folder under src/storage/drivers, and the package its driver uses. */
const LOADS: Record<string, RegExp> = {
  filesystem: /src\/storage\/drivers\/filesystem\//,
  s3: /src\/storage\/drivers\/s3\/|node_modules\/@aws-sdk\//,
  ftp: /src\/storage\/drivers\/ftp\/|node_modules\/basic-ftp\//,
  moodle: /src\/storage\/drivers\/moodle\//,
  nats: /src\/storage\/drivers\/nats\/|node_modules\/@nats-io\//,
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'depot-driver-loading-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The driver types whose modules are loaded once a config with `drivers` is loaded and its drivers are made. */
function typesLoadedBy(drivers: Record<string, Record<string, unknown>>): string[] {
  const file = path.join(dir, `${Object.keys(drivers).join('-')}.json`);
  writeFileSync(file, JSON.stringify({ defaultDriver: Object.keys(drivers)[0], drivers }));
  const script = `
    require('tsx/cjs/api').register();
    const { loadConfig } = require('./src/config/load');
    const { StorageAPI } = require('./src/storage/api');
    const { defaultDriverFactory } = require('./src/storage/drivers');
    const { silentLogger } = require('./src/support/logging');
    const config = loadConfig({ env: { DEPOT_CONFIG: ${JSON.stringify(file)} }, cwd: ${JSON.stringify(dir)} });
    const api = new StorageAPI(config, defaultDriverFactory(), silentLogger());
    for (const name of api.driverNames()) api.getStorageDriver(name);
    process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const loaded = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: ROOT, env, encoding: 'utf8' })) as string[];
  return TYPES.filter((type) => loaded.some((module) => LOADS[type].test(module)));
}

describe('driver modules load with the configuration that names them', () => {
  test('a filesystem-only configuration loads no other driver, nor its client package', () => {
    expect(typesLoadedBy({ local: { type: 'filesystem', root: path.join(dir, 'archive') } })).toEqual(['filesystem']);
  });

  test('an ftp driver beside it loads the ftp driver and basic-ftp, and still no other', () => {
    // The check above would pass vacuously if the patterns matched nothing: this one must see a second type.
    const ftp = { type: 'ftp', host: '127.0.0.1', user: 'depot', root: '/archive' };
    expect(typesLoadedBy({ local: { type: 'filesystem', root: path.join(dir, 'archive') }, remote: ftp })).toEqual(['filesystem', 'ftp']);
  });
});
