import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isErrorCode } from '../../src/contract';
import { depotCommand } from '../helpers/queue-harness';
import { freePort } from '../helpers/redis-server';

/**
 * The command line as operators run it: a separate process, its exit code, and
 * what it writes on stdout and stderr (CONTRACT §5).
 */
const ROOT = path.resolve(__dirname, '..', '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_FORMAT: 'json' };
  for (const name of ['DEPOT_CONFIG', 'DEPOT_DATA', 'LOG_LEVEL', 'REDIS_URL', 'HOOK_SECRET', 'API_TOKEN']) delete env[name];
  return env;
}

/** `depot ARGS` (bin/depot, on the source), with cwd the project root. */
function depot(args: string[], extraEnv: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const run = depotCommand(args, { ...baseEnv(), ...extraEnv });
    const child = spawn(run.command, run.args, { cwd: ROOT, env: run.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** stdout must be exactly one JSON document. */
function json<T>(run: Run): T {
  expect(run.stdout.trim().length).toBeGreaterThan(0);
  return JSON.parse(run.stdout) as T;
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'depot-cli-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Every regular file (or other non-directory) below `dir`. */
function filesBelow(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...filesBelow(full));
    else out.push(full);
  }
  return out;
}

interface CheckOutput {
  ok: boolean;
  results: Array<{
    driver: string;
    ok: boolean;
    writeMs?: number;
    readMs?: number;
    deleteMs?: number;
    space?: { totalBytes?: number; freeBytes?: number; usedBytes?: number };
    error?: { code: string; message: string };
  }>;
}

interface SpaceOutput {
  ok: boolean;
  results: Array<{ driver: string; space?: { totalBytes?: number; freeBytes?: number; usedBytes?: number }; error?: { code: string; message: string } }>;
}

interface DriversOutput {
  source: string;
  defaultDriver: string;
  drivers: Array<{ name: string; type: string; default: boolean; fallbacks: string[]; settings: Record<string, unknown> }>;
}

describe('embedded default (DEPOT_DATA)', () => {
  test('check local --json: ok, timings and space; no probe left; logs only on stderr', async () => {
    const data = tempDir();
    const run = await depot(['check', 'local', '--json'], { DEPOT_DATA: data, LOG_LEVEL: 'debug' });
    expect(run.code).toBe(0);
    const out = json<CheckOutput>(run);
    expect(out.ok).toBe(true);
    expect(out.results).toHaveLength(1);
    const [result] = out.results;
    expect(result).toMatchObject({ driver: 'local', ok: true, writeOnce: 'enforced' });
    for (const ms of [result.writeMs, result.readMs, result.deleteMs]) {
      expect(typeof ms).toBe('number');
      expect(ms).toBeGreaterThanOrEqual(0);
    }
    expect(result.error).toBeUndefined();
    expect(result.space?.totalBytes).toEqual(expect.any(Number));
    expect(result.space?.freeBytes).toBeLessThanOrEqual(result.space?.totalBytes ?? -1);
    // The probe is gone: only (empty) internal directories remain in the data dir.
    expect(filesBelow(data)).toEqual([]);
    // With LOG_LEVEL=debug something is logged, and it went to stderr as JSON lines.
    const logLines = run.stderr.split('\n').filter((l) => l.trim());
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) expect(() => JSON.parse(line)).not.toThrow();
  });

  test('check prints whether the backend itself keeps write-once (CONTRACT §11)', async () => {
    const run = await depot(['check', 'local'], { DEPOT_DATA: tempDir() });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^local: ok \(write [\d.]+ ms, .*write-once: enforced\)$/m);
  });

  test('check with no driver named checks them all (the one default driver)', async () => {
    const data = tempDir();
    const run = await depot(['check', '--json'], { DEPOT_DATA: data });
    expect(run.code).toBe(0);
    expect(json<CheckOutput>(run).results.map((r) => r.driver)).toEqual(['local']);
  });

  test('space local --json: the backend figures', async () => {
    const data = tempDir();
    const run = await depot(['space', 'local', '--json'], { DEPOT_DATA: data });
    expect(run.code).toBe(0);
    const out = json<SpaceOutput>(run);
    expect(out.ok).toBe(true);
    expect(out.results).toHaveLength(1);
    const { driver, space } = out.results[0];
    expect(driver).toBe('local');
    expect(space).toEqual({ totalBytes: expect.any(Number), freeBytes: expect.any(Number), usedBytes: expect.any(Number) });
    expect(space!.freeBytes!).toBeLessThanOrEqual(space!.totalBytes!);
    expect(space!.usedBytes!).toBeLessThanOrEqual(space!.totalBytes!);
  });

  test('drivers --json: the one local driver at DEPOT_DATA', async () => {
    const data = tempDir();
    const run = await depot(['drivers', '--json'], { DEPOT_DATA: data });
    expect(run.code).toBe(0);
    const out = json<DriversOutput>(run);
    expect(out.source).toBe('embedded default');
    expect(out.defaultDriver).toBe('local');
    expect(out.drivers).toEqual([
      { name: 'local', type: 'filesystem', default: true, fallbacks: [], settings: expect.objectContaining({ type: 'filesystem', root: data }) },
    ]);
  });

  test('an unknown driver or command is a usage error (exit 2), named on stderr', async () => {
    const data = tempDir();
    const runs = await Promise.all([
      depot(['check', 'no-such-driver', '--json'], { DEPOT_DATA: data }),
      depot(['space', 'no-such-driver', '--json'], { DEPOT_DATA: data }),
      depot(['no-such-driver'], { DEPOT_DATA: data }),
    ]);
    for (const run of runs) {
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('no-such-driver');
      expect(run.stdout).toBe('');
    }
  });

  test('a driver whose root cannot be created: check exits 1 with ok:false and an error code', async () => {
    const dir = tempDir();
    const blocker = path.join(dir, 'not-a-directory');
    writeFileSync(blocker, 'a regular file');
    const run = await depot(['check', '--json'], { DEPOT_DATA: path.join(blocker, 'archive') });
    expect(run.code).toBe(1);
    const out = json<CheckOutput>(run);
    expect(out.ok).toBe(false);
    expect(out.results).toHaveLength(1);
    const [result] = out.results;
    expect(result).toMatchObject({ driver: 'local', ok: false });
    expect(isErrorCode(result.error?.code)).toBe(true);
    expect(typeof result.error?.message).toBe('string');
  });

  // CONTRACT §5: exit 2 for a configuration error, and LOG_LEVEL is part of the
  // configuration (§7, Environment). logSettingsFromEnv throws a plain Error from
  // commandContext (context.ts), which main.ts maps to EXIT_FAILED (1).
  test('an invalid LOG_LEVEL is a configuration error (exit 2)', async () => {
    const run = await depot(['check', '--json'], { DEPOT_DATA: tempDir(), LOG_LEVEL: 'verbose' });
    expect(run.stderr).toContain('LOG_LEVEL');
    expect(run.code).toBe(2);
  });
});

describe('a config file with two drivers, failover and secrets', () => {
  const HOOK_SECRET = 'hook-secret-Zq7-0123456789';
  const API_TOKEN = 'api-token-Xy9-0123456789';

  function writeConfig(dir: string): string {
    const file = path.join(dir, 'depot.yaml');
    writeFileSync(
      file,
      [
        'defaultDriver: primary',
        'drivers:',
        `  primary: { type: filesystem, root: "${path.join(dir, 'primary')}", fileMode: "0440" }`,
        `  spare:   { type: filesystem, root: "${path.join(dir, 'spare')}" }`,
        'failover: { primary: [spare] }',
        'callbacks: { url: "https://moodle.example.org/depot-hook", secret: "${HOOK_SECRET}" }',
        'http: { tokens: ["${API_TOKEN}"] }',
        '',
      ].join('\n'),
    );
    return file;
  }

  test('drivers, check and space show the drivers and never a secret', async () => {
    const dir = tempDir();
    const file = writeConfig(dir);
    const env = { DEPOT_CONFIG: file, HOOK_SECRET, API_TOKEN, LOG_LEVEL: 'debug' };
    const [driversJson, driversText, check, space] = await Promise.all([
      depot(['drivers', '--json'], env),
      depot(['drivers'], env),
      depot(['check', '--json'], env),
      depot(['space', 'spare', '--json'], env),
    ]);

    expect(driversJson.code).toBe(0);
    const out = json<DriversOutput>(driversJson);
    expect(out.source).toBe(file);
    expect(out.defaultDriver).toBe('primary');
    expect(out.drivers.map((d) => [d.name, d.type, d.default, d.fallbacks])).toEqual([
      ['primary', 'filesystem', true, ['spare']],
      ['spare', 'filesystem', false, []],
    ]);
    expect(out.drivers[0].settings).toMatchObject({ root: path.join(dir, 'primary'), fileMode: 0o440 });
    expect(out.drivers[1].settings).toMatchObject({ root: path.join(dir, 'spare') });

    expect(driversText.code).toBe(0);
    expect(driversText.stdout).toContain('primary (filesystem)');
    expect(driversText.stdout).toContain('spare');

    expect(check.code).toBe(0);
    expect(json<CheckOutput>(check).results.map((r) => [r.driver, r.ok])).toEqual([
      ['primary', true],
      ['spare', true],
    ]);
    expect(space.code).toBe(0);
    expect(json<SpaceOutput>(space).results.map((r) => r.driver)).toEqual(['spare']);

    for (const run of [driversJson, driversText, check, space]) {
      expect(run.stdout + run.stderr).not.toContain(HOOK_SECRET);
      expect(run.stdout + run.stderr).not.toContain(API_TOKEN);
    }
  });

  test('a config error exits 2, names the field on stderr, and shows no secret', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'depot.yaml');
    writeFileSync(
      file,
      [
        'drivers:',
        `  local: { type: filesystem, root: "${path.join(dir, 'a')}", fileMode: abc }`,
        'callbacks: { secret: "${HOOK_SECRET}" }',
        'http: { tokens: ["${API_TOKEN}"] }',
        '',
      ].join('\n'),
    );
    const runs = await Promise.all([
      depot(['drivers', '--json'], { DEPOT_CONFIG: file, HOOK_SECRET, API_TOKEN }),
      depot(['check', '--json'], { DEPOT_CONFIG: file, HOOK_SECRET, API_TOKEN }),
    ]);
    for (const run of runs) {
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('drivers.local.fileMode');
      expect(run.stdout).toBe('');
      expect(run.stdout + run.stderr).not.toContain(HOOK_SECRET);
      expect(run.stdout + run.stderr).not.toContain(API_TOKEN);
    }
  });

  test('a literal secret in the config exits 2 naming the field, without echoing it', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'depot.json');
    writeFileSync(file, JSON.stringify({ drivers: { local: { type: 'filesystem', root: path.join(dir, 'a') } }, callbacks: { secret: HOOK_SECRET } }));
    const run = await depot(['drivers', '--json'], { DEPOT_CONFIG: file });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('callbacks.secret');
    expect(run.stdout + run.stderr).not.toContain(HOOK_SECRET);
  });

  // Such a name used to reach code that looks drivers up on plain objects: `depot drivers` crashed on Object's own `constructor`.
  test.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('a driver named %s exits 2 naming the field, never a crash', async (name) => {
    const dir = tempDir();
    const file = path.join(dir, 'depot.yaml');
    const drivers = [
      'drivers:',
      `  local: { type: filesystem, root: "${path.join(dir, 'a')}" }`,
      `  ${name}: { type: filesystem, root: "${path.join(dir, 'b')}" }`,
    ];
    writeFileSync(file, [...drivers, 'defaultDriver: local', ''].join('\n'));
    const failover = path.join(dir, 'failover.yaml');
    writeFileSync(failover, [...drivers.slice(0, 2), `failover: { ${name}: [local] }`, ''].join('\n'));
    const runs = await Promise.all([
      depot(['drivers'], { DEPOT_CONFIG: file }),
      depot(['drivers', '--json'], { DEPOT_CONFIG: file }),
      depot(['check', '--json'], { DEPOT_CONFIG: file }),
      depot(['drivers'], { DEPOT_CONFIG: failover }),
    ]);
    for (const [i, run] of runs.entries()) {
      expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 2, stdout: '' });
      expect(run.stderr).toContain(`${i === 3 ? 'failover' : 'drivers'}.${name}: `);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });

  test('malformed YAML exits 2 naming the file', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'depot.yaml');
    writeFileSync(file, 'drivers: [\n  local: {\n');
    const run = await depot(['check', '--json'], { DEPOT_CONFIG: file });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(file);
    expect(run.stderr).toContain('(file)');
    expect(run.stdout).toBe('');
  });
});

describe('secrets in command output (issue 10)', () => {
  /** `depot ARGS`, killed after `ms` so that a hang is a failure, not a stuck suite. */
  function depotWithin(ms: number, args: string[], extraEnv: NodeJS.ProcessEnv): Promise<Run & { ms: number }> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const run = depotCommand(args, { ...baseEnv(), ...extraEnv });
      const child = spawn(run.command, run.args, { cwd: ROOT, env: run.env, stdio: ['ignore', 'pipe', 'pipe'] });
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      });
    });
  }

  // Redacting the serialized document turned `"fileMode": 288` into `"fileMode": ***`: stdout was no longer JSON.
  test('a secret that reads like a number: drivers --json stays JSON, the number intact, the secret as a string masked', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'depot.yaml');
    const root = path.join(dir, 'vol288');
    writeFileSync(
      file,
      [`drivers: { local: { type: filesystem, root: "${root}", fileMode: "0440" } }`, 'http: { auth: { user: admin, password: "${UI_PASSWORD}" } }', ''].join(
        '\n',
      ),
    );
    const run = await depot(['drivers', '--json'], { DEPOT_CONFIG: file, UI_PASSWORD: '288' });
    expect(run.code).toBe(0);
    const out = json<DriversOutput>(run);
    expect(out.drivers[0].settings).toMatchObject({ fileMode: 288, root: path.join(dir, 'vol***') });
  });

  // The password as written (lower-case escapes, unreserved characters escaped) used to be printed: only the forms the redactor derived were masked.
  test('a Redis password with %-escapes in REDIS_URL is masked as written, decoded and re-encoded', async () => {
    const password = 'p@ss/word!~';
    const written = 'p%40ss%2fword%21%7e';
    const forms = [written, password, encodeURIComponent(password), 'p%40ss%2Fword%21%7E', 'p%40ss%2Fword'];
    const dir = tempDir();
    const port = await freePort();
    const redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--requirepass', password],
      { stdio: 'ignore' },
    );
    try {
      const data = path.join(dir, 'data');
      const url = (p: number) => `redis://:${written}@127.0.0.1:${p}`;
      let up: Run | undefined;
      for (let i = 0; i < 50 && up?.code !== 0; i++) {
        up = await depot(['status', '--json'], { DEPOT_DATA: data, REDIS_URL: url(port) });
        if (up.code !== 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const unreachable = await freePort();
      const runs = await Promise.all([
        depot(['status', '--json'], { DEPOT_DATA: data, REDIS_URL: url(unreachable), LOG_LEVEL: 'debug' }),
        depot(['status'], { DEPOT_DATA: data, REDIS_URL: url(unreachable), LOG_LEVEL: 'debug' }),
        depot(['status', '--json'], { DEPOT_DATA: data, REDIS_URL: `redis://:wrong%21pass@127.0.0.1:${port}` }),
        depot(['drivers', '--json'], { DEPOT_DATA: data, REDIS_URL: url(port), LOG_LEVEL: 'debug' }),
      ]);
      // The escaped password is the one Redis knows, so the URL works as written.
      expect(up?.code).toBe(0);
      expect(json<{ ok: boolean }>(up as Run).ok).toBe(true);
      expect(runs.map((r) => r.code)).toEqual([1, 1, 1, 0]);
      expect(json<{ error: { message: string } }>(runs[0]).error.message).toContain(`redis://:***@127.0.0.1:${unreachable}`);
      for (const run of [up as Run, ...runs]) for (const form of [...forms, 'wrong%21pass', 'wrong!pass']) expect(run.stdout + run.stderr).not.toContain(form);
    } finally {
      redis.kill('SIGKILL');
    }
  });

  test('a *File secret that is a FIFO: exit 2 at once, naming the field', async () => {
    const dir = tempDir();
    const fifo = path.join(dir, 'hook.fifo');
    execFileSync('mkfifo', [fifo]);
    const file = path.join(dir, 'depot.yaml');
    writeFileSync(file, [`drivers: { local: { type: filesystem, root: "${path.join(dir, 'a')}" } }`, `callbacks: { secretFile: "${fifo}" }`, ''].join('\n'));
    const run = await depotWithin(15_000, ['drivers', '--json'], { DEPOT_CONFIG: file });
    expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 2, stdout: '' });
    expect(run.stderr).toContain(`callbacks.secretFile: ${fifo} is not a regular file`);
    expect(run.ms).toBeLessThan(10_000);
  });
});
