/**
 * The moodle driver as operators run it: configured in a config file with its token in
 * a tokenFile, `depot check`, `depot space` and `depot drivers` as separate processes
 * (bin/depot on the source) against the fake Moodle. The token shows nowhere.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { Redactor } from '../../src/support/redaction';
import { depotCommand, PROJECT_ROOT } from '../helpers/queue-harness';
import { FakeMoodleSite, startFakeMoodle } from '../helpers/fake-moodle';

let site: FakeMoodleSite;
let dir: string;

beforeAll(async () => {
  site = await startFakeMoodle();
  dir = mkdtempSync(path.join(tmpdir(), 'depot-moodle-cli-'));
  writeFileSync(path.join(dir, 'moodle-token'), `${site.token}\n`, { mode: 0o600 });
  writeFileSync(
    path.join(dir, 'depot.yaml'),
    ['drivers:', '  moodle:', '    type: moodle', `    url: ${site.moodle.url}`, '    tokenFile: moodle-token', `    courseId: ${site.courseId}`, ''].join(
      '\n',
    ),
  );
});

afterAll(async () => {
  await site?.moodle.close();
  rmSync(dir, { recursive: true, force: true });
});

function depot(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, DEPOT_CONFIG: path.join(dir, 'depot.yaml'), LOG_FORMAT: 'json' };
    for (const name of ['DEPOT_DATA', 'LOG_LEVEL', 'REDIS_URL']) delete env[name];
    const run = depotCommand(args, env);
    const child = spawn(run.command, run.args, { cwd: PROJECT_ROOT, env: run.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('check, space and drivers work from a config file; writeOnce enforced; the token nowhere', async () => {
  const [check, space, drivers] = await Promise.all([depot(['check', '--json']), depot(['space', '--json']), depot(['drivers', '--json'])]);
  expect(check.code).toBe(0);
  const result = (JSON.parse(check.stdout) as { results: Record<string, unknown>[] }).results[0];
  expect(result).toMatchObject({ driver: 'moodle', ok: true, writeOnce: 'enforced', space: { usedBytes: 0, freeBytes: 200 * 1024 ** 3 } });
  expect(space.code).toBe(0);
  expect(space.stdout).toContain('usedBytes');
  expect(drivers.code).toBe(0);
  expect(drivers.stdout).toContain('moodle');
  for (const run of [check, space, drivers]) {
    expect(run.stdout).not.toContain(site.token);
    expect(run.stderr).not.toContain(site.token);
  }
  expect(site.moodle.areaEntries(site.courseId)).toEqual([]);
}, 60_000);

test('a revoked token: check exits 1 with ok: false and auth', async () => {
  const token = site.token;
  const record = site.moodle.tokens.get(token)!;
  site.moodle.tokens.delete(token);
  try {
    const check = await depot(['check', '--json']);
    expect(check.code).toBe(1);
    expect((JSON.parse(check.stdout) as { results: unknown[] }).results[0]).toMatchObject({ ok: false, error: { code: 'auth' } });
    expect(check.stdout + check.stderr).not.toContain(token);
  } finally {
    site.moodle.tokens.set(token, record);
  }
}, 60_000);

test('examples/depot.moodle.yaml is valid', () => {
  const tokenDir = mkdtempSync(path.join(tmpdir(), 'depot-moodle-example-'));
  try {
    const example = path.join(PROJECT_ROOT, 'examples', 'depot.moodle.yaml');
    const token = path.join(tokenDir, 'moodle-token');
    writeFileSync(token, 'abcdef0123456789abcdef0123456789\n');
    const text = readFileSync(example, 'utf8').replace('/run/secrets/moodle-token', token);
    const file = path.join(tokenDir, 'depot.yaml');
    writeFileSync(file, text);
    const config = loadConfig({ env: { DEPOT_CONFIG: file, MOODLE_URL: 'https://moodle.example.org/' }, redactor: new Redactor() });
    expect(config.drivers.moodle).toMatchObject({ type: 'moodle', url: 'https://moodle.example.org', token: 'abcdef0123456789abcdef0123456789', courseId: 42 });
    expect(config.failover).toEqual({ moodle: ['local'] });
  } finally {
    rmSync(tokenDir, { recursive: true, force: true });
  }
});
