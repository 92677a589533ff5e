/**
 * The Moodle plugins' PHP, checked as part of `npm test` (the README's one test
 * command, which CI runs): every PHP file under moodle/ passes `php -l`, and
 * local_depot's logic that needs no Moodle passes its PHPUnit 9 suite
 * (moodle/local_depot/tests/standalone, with marked stand-ins for Moodle's API).
 * php-cli and phpunit are Debian packages that scripts/test-servers.sh installs;
 * without them these tests fail rather than pass unseen.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../helpers/queue-harness';

const run = promisify(execFile);
const MOODLE_DIR = path.join(PROJECT_ROOT, 'moodle');
const PLUGIN = path.join(MOODLE_DIR, 'local_depot');

function phpFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return phpFiles(full);
    return entry.name.endsWith('.php') ? [full] : [];
  });
}

test('every PHP file under moodle/ passes php -l', async () => {
  const files = phpFiles(MOODLE_DIR);
  expect(files.length).toBeGreaterThan(10);
  const failures: string[] = [];
  for (const file of files) {
    await run('php', ['-l', file]).catch((error: { stdout?: string; stderr?: string }) => failures.push(`${path.relative(PROJECT_ROOT, file)}: ${error.stdout ?? ''}${error.stderr ?? ''}`));
  }
  expect(failures).toEqual([]);
});

test("local_depot's standalone PHPUnit suite passes", async () => {
  const config = path.join(PLUGIN, 'tests', 'standalone', 'phpunit.xml');
  const { stdout } = await run('phpunit', ['-c', config], { cwd: path.dirname(config) }).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`phpunit failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  });
  expect(stdout).toMatch(/OK \(\d+ tests?, \d+ assertions?\)/);
}, 60_000);

test("every error local_depot throws in its own module has an English string, and so does every capability", () => {
  const strings = readFileSync(path.join(PLUGIN, 'lang', 'en', 'local_depot.php'), 'utf8');
  const sources = phpFiles(path.join(PLUGIN, 'classes')).map((file) => readFileSync(file, 'utf8'));
  const codes = new Set(sources.flatMap((text) => [...text.matchAll(/moodle_exception\('([a-z_]+)', 'local_depot'/g)].map((m) => m[1])));
  expect(codes.size).toBeGreaterThan(0);
  for (const code of codes) expect(strings).toContain(`$string['${code}']`);
  const access = readFileSync(path.join(PLUGIN, 'db', 'access.php'), 'utf8');
  for (const [, capability] of access.matchAll(/'local\/depot:([a-z]+)'/g)) expect(strings).toContain(`$string['depot:${capability}']`);
  for (const required of ['pluginname', 'privacy:metadata:core_files']) expect(strings).toContain(`$string['${required}']`);
});
