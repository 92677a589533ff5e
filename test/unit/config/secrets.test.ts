import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { ConfigError } from '../../../src/config/config-error';
import { fields, FS_DRIVER, load, issueFor, loadText, loadTextError, removeTempDirs, shownText, tempDir, writeFile } from './helpers';

afterAll(removeTempDirs);

/** A driver of the fake type (secret fields: password, token) plus the default filesystem one. */
function withRemote(remote: string): string {
  return `defaultDriver: local\n${FS_DRIVER}  remote: { type: fake, endpoint: https://remote.example, user: archive, ${remote} }\n`;
}

function expectNoEcho(error: ConfigError, ...values: string[]): void {
  const shown = shownText(error);
  for (const value of values) expect(shown).not.toContain(value);
}

describe('literal secrets are refused without echoing them', () => {
  test.each([
    ['driver secret', withRemote('password: "Literal-Pa55word!"'), 'drivers.remote.password', 'Literal-Pa55word!'],
    ['second driver secret', withRemote('token: "tok_literal_0123456789abcdef"'), 'drivers.remote.token', 'tok_literal_0123456789abcdef'],
    ['secret with an ${ENV} part', withRemote('password: "prefix-${REMOTE_PW}"'), 'drivers.remote.password', 'prefix-'],
    ['two references glued', withRemote('password: "${REMOTE_PW}${REMOTE_PW}"'), 'drivers.remote.password', 'env-remote-password'],
    [
      'callbacks.secret',
      `${FS_DRIVER}callbacks: { url: "https://h.example/hook", secret: "hook-literal-secret-0123" }\n`,
      'callbacks.secret',
      'hook-literal-secret-0123',
    ],
    ['http.tokens entry', `${FS_DRIVER}http: { tokens: ["api-literal-token-0123456"] }\n`, 'http.tokens[0]', 'api-literal-token-0123456'],
    [
      'later http.tokens entry',
      `${FS_DRIVER}http: { tokens: ["\${API_TOKEN}", "api-literal-token-6543210"] }\n`,
      'http.tokens[1]',
      'api-literal-token-6543210',
    ],
    ['http.auth.password', `${FS_DRIVER}http: { auth: { user: admin, password: "ui-literal-password" } }\n`, 'http.auth.password', 'ui-literal-password'],
  ])('%s', (_label, yaml, field, secret) => {
    const error = loadTextError(yaml, { REMOTE_PW: 'env-remote-password', API_TOKEN: 'env-api-token-0123456789' });
    expect(issueFor(error, field).message).toMatch(/\$\{ENV|file/);
    expectNoEcho(error, secret);
  });

  test('a secret that is not a string is refused (and not echoed)', () => {
    const error = loadTextError(withRemote('password: 987654321'));
    expect(fields(error.issues)).toContain('drivers.remote.password');
    expectNoEcho(error, '987654321');
  });

  // drivers.<name>.type is itself interpolated, but the secret fields of a driver are
  // looked up by its raw type before interpolation (load.ts, the loop over drivers):
  // with `type: "${T}"` no secret field is known, the literal password is treated as
  // an ordinary field, accepted, and never registered for redaction.
  test('a literal secret is refused when the driver type comes from ${ENV}', () => {
    const error = loadTextError('drivers:\n  remote: { type: "${DRIVER_TYPE}", password: "Literal-Pa55word!" }\n', { DRIVER_TYPE: 'fake' });
    expect(fields(error.issues)).toContain('drivers.remote.password');
    expectNoEcho(error, 'Literal-Pa55word!');
  });
});

describe('secrets from ${ENV}', () => {
  test('driver secrets resolve and are registered for redaction', () => {
    const env = { REMOTE_PW: 'env-remote-password', REMOTE_TOKEN: 'env-remote-token' };
    const { config, redactor } = loadText(withRemote('password: "${REMOTE_PW}", token: "${REMOTE_TOKEN}"'), env);
    expect(config.drivers.remote).toMatchObject({ type: 'fake', user: 'archive', password: env.REMOTE_PW, token: env.REMOTE_TOKEN });
    expect(redactor.redact(`pw=${env.REMOTE_PW} token=${env.REMOTE_TOKEN} user=archive`)).toBe('pw=*** token=*** user=archive');
  });

  test('global secrets resolve and are registered for redaction', () => {
    const env = { HOOK_SECRET: 'hook-secret-0123456789', T1: 'api-token-one-0123456', T2: 'api-token-two-0123456', UI_PW: 'ui-password' };
    const { config, redactor } = loadText(
      `${FS_DRIVER}callbacks: { url: "https://h.example/hook", secret: "\${HOOK_SECRET}" }\nhttp: { tokens: ["\${T1}", "\${T2}"], auth: { user: admin, password: "\${UI_PW}" } }\n`,
      env,
    );
    expect(config.callbacks?.secret).toBe(env.HOOK_SECRET);
    expect(config.http.tokens).toEqual([env.T1, env.T2]);
    expect(config.http.auth).toEqual({ user: 'admin', password: env.UI_PW });
    for (const value of Object.values(env)) expect(redactor.redact(`[${value}]`)).toBe('[***]');
    expect(redactor.redact('admin')).toBe('admin');
  });

  test('a missing variable names the secret field and the variable, nothing else', () => {
    const error = loadTextError(withRemote('password: "${REMOTE_PW_UNSET}"'));
    expect(issueFor(error, 'drivers.remote.password').message).toContain('REMOTE_PW_UNSET');
  });

  test('an empty variable is refused', () => {
    const error = loadTextError(`${FS_DRIVER}callbacks: { secret: "\${HOOK_SECRET}" }\n`, { HOOK_SECRET: '' });
    expect(issueFor(error, 'callbacks.secret').message).toContain('HOOK_SECRET');
  });

  test('a too-short secret is refused without echoing it', () => {
    const error = loadTextError(`${FS_DRIVER}callbacks: { secret: "\${HOOK_SECRET}" }\n`, { HOOK_SECRET: 'shortsecret' });
    expect(fields(error.issues)).toEqual(['callbacks.secret']);
    expectNoEcho(error, 'shortsecret');
  });

  test('http.tokens that is not a list names http.tokens', () => {
    expect(fields(loadTextError(`${FS_DRIVER}http: { tokens: "\${T}" }\n`, { T: 'api-token-one-0123456' }).issues)).toEqual(['http.tokens']);
  });
});

describe('secrets from *File fields', () => {
  test('a relative path is resolved against the config file directory, not cwd; trailing newline stripped', () => {
    const configDir = tempDir();
    const cwd = tempDir();
    writeFile(configDir, 'secrets/remote-pw', 'file-remote-password\n');
    writeFile(cwd, 'secrets/remote-pw', 'wrong-file-in-cwd\n');
    const file = writeFile(configDir, 'depot.yaml', withRemote('passwordFile: secrets/remote-pw'));
    const { config, redactor } = load({ DEPOT_CONFIG: file }, cwd);
    expect(config.drivers.remote.password).toBe('file-remote-password');
    expect(config.drivers.remote).not.toHaveProperty('passwordFile');
    expect(redactor.redact('x file-remote-password y')).toBe('x *** y');
  });

  test('an absolute path works, a CRLF line end is stripped', () => {
    const secretFile = writeFile(tempDir(), 'hook', 'hook-secret-from-file-01\r\n');
    const { config, redactor } = loadText(`${FS_DRIVER}callbacks: { secretFile: "${secretFile}" }\n`);
    expect(config.callbacks?.secret).toBe('hook-secret-from-file-01');
    expect(config.callbacks).not.toHaveProperty('secretFile');
    expect(redactor.redact('hook-secret-from-file-01')).toBe('***');
  });

  test('a file without a trailing newline is read as it is', () => {
    const secretFile = writeFile(tempDir(), 'pw', 'no-newline-password');
    expect(loadText(withRemote(`passwordFile: "${secretFile}"`)).config.drivers.remote.password).toBe('no-newline-password');
  });

  test('the file path may use ${ENV}', () => {
    const dir = tempDir();
    writeFile(dir, 'ui-pw', 'ui-password-from-file\n');
    const { config } = loadText(`${FS_DRIVER}http: { auth: { user: admin, passwordFile: "\${SECRETS_DIR}/ui-pw" } }\n`, { SECRETS_DIR: dir });
    expect(config.http.auth?.password).toBe('ui-password-from-file');
  });

  test('tokensFile: one token per line, blank lines ignored, merged after listed tokens', () => {
    const file = writeFile(tempDir(), 'tokens', 'file-token-aaaaaaaaaaaa\n\n  file-token-bbbbbbbbbbbb  \n');
    const { config, redactor } = loadText(`${FS_DRIVER}http: { tokens: ["\${T1}"], tokensFile: "${file}" }\n`, { T1: 'env-token-cccccccccccc' });
    expect(config.http.tokens).toEqual(['env-token-cccccccccccc', 'file-token-aaaaaaaaaaaa', 'file-token-bbbbbbbbbbbb']);
    expect(config.http).not.toHaveProperty('tokensFile');
    expect(redactor.redact('file-token-aaaaaaaaaaaa file-token-bbbbbbbbbbbb')).toBe('*** ***');
  });

  test('a missing file names the *File field', () => {
    const error = loadTextError(withRemote(`passwordFile: "${path.join(tempDir(), 'absent')}"`));
    expect(issueFor(error, 'drivers.remote.passwordFile').message).toMatch(/ENOENT/);
  });

  test('an unreadable file (a directory) names the *File field', () => {
    const error = loadTextError(withRemote(`passwordFile: "${tempDir()}"`));
    expect(fields(error.issues)).toEqual(['drivers.remote.passwordFile']);
  });

  // A FIFO used to block start-up until something wrote to it; a device is no secret file either.
  test.each([
    ['a FIFO, for a single secret', (file: string) => withRemote(`passwordFile: "${file}"`), 'drivers.remote.passwordFile'],
    ['a FIFO, for a list of secrets', (file: string) => `${FS_DRIVER}http: { tokensFile: "${file}" }\n`, 'http.tokensFile'],
  ])('%s is refused at once, naming the *File field', (_label, yaml, field) => {
    const fifo = path.join(tempDir(), 'secret.fifo');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    const error = loadTextError(yaml(fifo));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(issueFor(error, field).message).toBe(`${fifo} is not a regular file`);
  });

  test('a device (/dev/null) is not a regular file either', () => {
    const error = loadTextError(`${FS_DRIVER}callbacks: { secretFile: "/dev/null" }\n`);
    expect(issueFor(error, 'callbacks.secretFile').message).toBe('/dev/null is not a regular file');
  });

  const runsAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  (runsAsRoot ? test.skip : test)('a file without read permission names the *File field', () => {
    const file = writeFile(tempDir(), 'pw', 'unreadable-password\n');
    chmodSync(file, 0o000);
    const error = loadTextError(withRemote(`passwordFile: "${file}"`));
    expect(issueFor(error, 'drivers.remote.passwordFile').message).toMatch(/EACCES/);
  });

  test.each([
    ['empty', ''],
    ['only a newline', '\n'],
    ['only CRLF', '\r\n'],
  ])('a file that is %s names the *File field', (_label, content) => {
    const file = writeFile(tempDir(), 'pw', content);
    const error = loadTextError(`${FS_DRIVER}callbacks: { secretFile: "${file}" }\n`);
    expect(fields(error.issues)).toEqual(['callbacks.secretFile']);
  });

  test('an empty *File path names the field', () => {
    expect(fields(loadTextError(withRemote('passwordFile: ""')).issues)).toEqual(['drivers.remote.passwordFile']);
  });

  test('both a value and a file is an error naming the field', () => {
    const file = writeFile(tempDir(), 'pw', 'file-remote-password\n');
    const error = loadTextError(withRemote(`password: "\${REMOTE_PW}", passwordFile: "${file}"`), { REMOTE_PW: 'env-remote-password' });
    expect(issueFor(error, 'drivers.remote.password').message).toContain('passwordFile');
    expectNoEcho(error, 'env-remote-password', 'file-remote-password');
  });

  test('both callbacks.secret and callbacks.secretFile is an error', () => {
    const file = writeFile(tempDir(), 'hook', 'hook-secret-from-file-01\n');
    const error = loadTextError(`${FS_DRIVER}callbacks: { secret: "\${S}", secretFile: "${file}" }\n`, { S: 'hook-secret-from-env-01' });
    expect(fields(error.issues)).toEqual(['callbacks.secret']);
  });

  test('a secret read from a file that fails later validation is not echoed', () => {
    const file = writeFile(tempDir(), 'hook', 'sh0rt-s3cret\n');
    const error = loadTextError(`${FS_DRIVER}callbacks: { secretFile: "${file}" }\n`);
    expect(fields(error.issues)).toEqual(['callbacks.secret']);
    expectNoEcho(error, 'sh0rt-s3cret');
  });
});

describe('secrets never reach ordinary interpolation or other errors', () => {
  test('an unrelated error in a config with resolved secrets does not echo them', () => {
    const env = { REMOTE_PW: 'env-remote-password-xyz', HOOK_SECRET: 'hook-secret-0123456789' };
    const error = loadTextError(`${withRemote('password: "${REMOTE_PW}"')}callbacks: { secret: "\${HOOK_SECRET}" }\nfailover: { local: [nowhere] }\n`, env);
    expect(fields(error.issues)).toEqual(['failover.local[0]']);
    expectNoEcho(error, ...Object.values(env));
  });

  test('a secret field is not interpolated as an ordinary string (no partial substitution)', () => {
    const error = loadTextError(withRemote('password: "user:${REMOTE_PW}"'), { REMOTE_PW: 'env-remote-password' });
    expect(fields(error.issues)).toEqual(['drivers.remote.password']);
    expectNoEcho(error, 'env-remote-password');
  });
});
