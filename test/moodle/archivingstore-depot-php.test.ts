/**
 * archivingstore_depot (moodle/archivingstore_depot/, the local_archiving 1.0
 * storage driver) checked as part of `npm test`: its PHPUnit 9 suite
 * (tests/standalone) runs its HTTP client and its storage glue (on marked
 * stand-ins of Moodle and local_archiving) against a real `depot serve` and
 * `depot worker` started here — a private redis-server, a filesystem driver,
 * and two named tokens scoped to one Moodle site each (CONTRACT §9).
 * php-cli and phpunit are Debian packages that scripts/test-servers.sh
 * installs; without them this test fails rather than passes unseen.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { cleanupAll, PROJECT_ROOT, spawnDepotCommand, TempDirs, WorkerProcess, writeConfigFile } from '../helpers/queue-harness';
import { freePort, RedisServer, startRedis } from '../helpers/redis-server';

jest.setTimeout(180_000);

const run = promisify(execFile);
const PLUGIN = path.join(PROJECT_ROOT, 'moodle', 'archivingstore_depot');
const SITE = 'moodle-a';
const TOKEN = 'moodle-a-token-7f3c9e1d5b2a48c6';
const OTHER_TOKEN = 'moodle-b-token-0d4e8a2c6f1b39e7';

const temp = new TempDirs();
let redis: RedisServer | undefined;
let serve: WorkerProcess | undefined;
let worker: WorkerProcess | undefined;
let depotUrl: string;
let downUrl: string;

beforeAll(async () => {
  redis = await startRedis();
  const work = await temp.make('depot-archivingstore-');
  const port = await freePort();
  depotUrl = `http://127.0.0.1:${port}`;
  downUrl = `http://127.0.0.1:${await freePort()}`;
  const scope = (siteId: string) => ({ operations: ['store', 'retrieve', 'delete', 'list'], drivers: ['local'], metadata: { siteId } });
  const config = await writeConfigFile(work, {
    redis: { url: redis.url },
    defaultDriver: 'local',
    drivers: { local: { type: 'filesystem', root: path.join(work, 'archive') } },
    catalog: { url: `sqlite:${path.join(work, 'catalog.sqlite')}` },
    http: {
      host: '127.0.0.1',
      port,
      spoolDir: path.join(work, 'spool'),
      tokens: [
        { name: 'moodle-a', tokenFile: await secretFile(work, 'moodle-a.token', TOKEN), scope: scope(SITE) },
        { name: 'moodle-b', tokenFile: await secretFile(work, 'moodle-b.token', OTHER_TOKEN), scope: scope('moodle-b') },
      ],
    },
  });
  worker = spawnDepotCommand(['worker'], config);
  serve = spawnDepotCommand(['serve'], config);
  await untilListening(depotUrl, serve);
});

afterAll(async () => {
  await cleanupAll(
    () => serve?.kill(),
    () => worker?.kill(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

/** A secret in a file of its own, as depot takes secrets (never a literal in the config). */
async function secretFile(dir: string, name: string, secret: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

/** Waits until `depot serve` answers HTTP at all (its /health may be 503 before the first driver check). */
async function untilListening(url: string, process: WorkerProcess): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const answered = await fetch(`${url}/health`).then(
      () => true,
      () => false,
    );
    if (answered) return;
    if (process.child.exitCode !== null) throw new Error(`depot serve exited:\n${process.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`depot serve did not listen within 60 s:\n${process.output()}`);
}

function phpFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return phpFiles(full);
    return entry.name.endsWith('.php') ? [full] : [];
  });
}

test("archivingstore_depot's PHPUnit suite passes against a real depot serve and worker", async () => {
  const config = path.join(PLUGIN, 'tests', 'standalone', 'phpunit.xml');
  const env = {
    ...process.env,
    DEPOT_URL: depotUrl,
    DEPOT_TOKEN: TOKEN,
    DEPOT_OTHER_TOKEN: OTHER_TOKEN,
    DEPOT_SITE: SITE,
    DEPOT_DRIVER: 'local',
    DEPOT_DOWN_URL: downUrl,
  };
  const { stdout } = await run('phpunit', ['-c', config], { cwd: path.dirname(config), env }).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`phpunit failed:\n${error.stdout ?? ''}${error.stderr ?? ''}\n--- depot serve:\n${serve?.output() ?? ''}\n--- depot worker:\n${worker?.output() ?? ''}`);
  });
  // "OK (n tests, …)" only: a skipped or risky test would print "OK, but …".
  expect(stdout).toMatch(/\nOK \(\d+ tests?, \d+ assertions?\)/);
});

test('every PHP file of archivingstore_depot passes php -l', async () => {
  const files = phpFiles(PLUGIN);
  expect(files.length).toBeGreaterThan(15);
  const failures: string[] = [];
  for (const file of files) {
    await run('php', ['-l', file]).catch((error: { stdout?: string; stderr?: string }) => failures.push(`${path.relative(PROJECT_ROOT, file)}: ${error.stdout ?? ''}${error.stderr ?? ''}`));
  }
  expect(failures).toEqual([]);
});

test('every string archivingstore_depot uses has an English string, and every setting its name and description', () => {
  const strings = readFileSync(path.join(PLUGIN, 'lang', 'en', 'archivingstore_depot.php'), 'utf8');
  const sources = phpFiles(path.join(PLUGIN, 'classes')).map((file) => readFileSync(file, 'utf8'));
  const codes = new Set(sources.flatMap((text) => [...text.matchAll(/=> '(depot[a-z]+)'|storage_exception\('([a-z_]+)', 'archivingstore_depot'/g)].map((m) => m[1] ?? m[2])));
  expect(codes.size).toBeGreaterThan(5);
  for (const code of codes) expect(strings).toContain(`$string['${code}']`);
  const settings = readFileSync(path.join(PLUGIN, 'settings.php'), 'utf8');
  const names = [...settings.matchAll(/'archivingstore_depot\/([a-z]+)'/g)].map((m) => m[1]);
  expect(names).toEqual(expect.arrayContaining(['enabled', 'url', 'token', 'siteid', 'driver', 'verifytls', 'timeout', 'connecttimeout']));
  for (const name of names) {
    expect(strings).toContain(`$string['${name}']`);
    expect(strings).toContain(`$string['${name}_desc']`);
  }
  expect(settings).toMatch(/admin_setting_configpasswordunmask\('archivingstore_depot\/token'/);
  const provider = readFileSync(path.join(PLUGIN, 'classes', 'privacy', 'provider.php'), 'utf8');
  for (const [, key] of provider.matchAll(/'(privacy:metadata:[a-z:]+)'/g)) expect(strings).toContain(`$string['${key}']`);
  expect(provider).toContain("'userids' =>");
});
