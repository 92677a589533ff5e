import path from 'node:path';
import { ConfigError } from '../../../src/config/config-error';
import { configError, fields, FS_DRIVER, issueFor, load, loadText, loadTextError, removeTempDirs, shownText, tempDir, writeFile } from './helpers';

afterAll(removeTempDirs);

const JSON_CONFIG = {
  defaultDriver: 'primary',
  drivers: {
    primary: { type: 'filesystem', root: '/srv/archive/primary', fileMode: '0640', fsync: false },
    spare: { type: 'filesystem', root: '/srv/archive/spare', fileMode: 0o400, maxConcurrent: 2, timeoutMs: 5000 },
  },
  failover: { primary: ['spare'] },
  queue: { concurrency: 8, attempts: 3 },
  limits: { inlineBytes: 4096 },
  paths: { allowed: ['/srv/depot/staging'] },
  sources: { allowedHosts: ['moodle.example.org'] },
};

const YAML_CONFIG = `# the same configuration as JSON_CONFIG
defaultDriver: primary
drivers:
  primary:
    type: filesystem
    root: /srv/archive/primary
    fileMode: "0640"
    fsync: false
  spare: { type: filesystem, root: /srv/archive/spare, fileMode: 0o400, maxConcurrent: 2, timeoutMs: 5000 }
failover:
  primary: [spare]
queue: { concurrency: 8, attempts: 3 }
limits: { inlineBytes: 4096 }
paths: { allowed: [/srv/depot/staging] }
sources:
  allowedHosts:
    - moodle.example.org
`;

describe('config files', () => {
  test('JSON: drivers, failover and overridden defaults', () => {
    const { config, file } = loadText(JSON.stringify(JSON_CONFIG), {}, 'depot.json');
    expect(config.source).toBe(file);
    expect(config.defaultDriver).toBe('primary');
    expect(config.drivers.primary).toEqual({ type: 'filesystem', root: '/srv/archive/primary', fileMode: 0o640, fsync: false });
    expect(config.drivers.spare).toEqual({ type: 'filesystem', root: '/srv/archive/spare', fileMode: 0o400, fsync: true, maxConcurrent: 2, timeoutMs: 5000 });
    expect(config.failover).toEqual({ primary: ['spare'] });
    expect(config.queue).toMatchObject({ name: 'depot', prefix: 'bull', concurrency: 8, attempts: 3, backoffMs: 1000 });
    expect(config.limits.inlineBytes).toBe(4096);
    expect(config.paths.allowed).toEqual(['/srv/depot/staging']);
    expect(config.sources.allowedHosts).toEqual(['moodle.example.org']);
  });

  test('YAML gives the same configuration as the equivalent JSON', () => {
    const fromJson = loadText(JSON.stringify(JSON_CONFIG), {}, 'depot.json').config;
    const fromYaml = loadText(YAML_CONFIG, {}, 'depot.yml').config;
    // Each file's folder differs, and so, like `source`, do the catalog's default path beside it (CONTRACT §8) and the spool's (§9).
    const alike = (c: typeof fromJson) => ({ ...c, source: '', catalog: c.catalog.url, http: { ...c.http, spoolDir: path.basename(c.http.spoolDir) } });
    expect(alike(fromYaml)).toEqual(alike(fromJson));
  });

  test('a relative DEPOT_CONFIG is resolved against cwd', () => {
    const cwd = tempDir();
    const file = writeFile(cwd, 'etc/depot.yaml', FS_DRIVER);
    expect(load({ DEPOT_CONFIG: 'etc/depot.yaml' }, cwd).config.source).toBe(file);
  });

  test('a single driver without defaultDriver is the default', () => {
    expect(loadText(FS_DRIVER).config.defaultDriver).toBe('local');
  });

  test('a missing file is an error named DEPOT_CONFIG', () => {
    const cwd = tempDir();
    const error = configError(() => load({ DEPOT_CONFIG: path.join(cwd, 'absent.yaml') }, cwd));
    expect(fields(error.issues)).toEqual(['DEPOT_CONFIG']);
    expect(error.issues[0].message).toMatch(/ENOENT/);
  });

  test.each([
    ['unclosed flow sequence', 'drivers: [\n'],
    ['bad indentation', 'drivers:\n  local:\n    type: filesystem\n   root: /x\n'],
    ['unclosed JSON', '{"drivers": {"local": {"type": "filesystem", "root": "/x"}'],
    ['duplicate key', `${FS_DRIVER}defaultDriver: local\ndefaultDriver: local\n`],
    ['tab indentation', 'drivers:\n\tlocal: {}\n'],
  ])('malformed file (%s) is a ConfigError on (file)', (_label, text) => {
    const error = loadTextError(text);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.issues[0].field).toBe('(file)');
    expect(error.message).toContain(error.source);
  });

  test('a parse error does not echo the file content around it', () => {
    const error = loadTextError('callbacks:\n  url: https://h.example\n  secret: "leaked-literal-value\n drivers: [\n');
    expect(shownText(error)).not.toContain('leaked-literal-value');
  });

  test.each([
    ['a list', '- drivers\n'],
    ['a scalar', 'just text\n'],
  ])('a file that is %s is an error on (root)', (_label, text) => {
    expect(fields(loadTextError(text).issues)).toEqual(['(root)']);
  });

  test('an empty file lacks drivers', () => {
    expect(fields(loadTextError('').issues)).toContain('drivers');
  });
});

describe('${ENV} interpolation in ordinary fields', () => {
  test('in driver settings, lists and nested fields, also as part of a string', () => {
    const { config } = loadText(
      [
        'drivers:',
        '  local: { type: filesystem, root: "${ARCHIVE_BASE}/main", fileMode: "${MODE}" }',
        'queue: { name: "${QUEUE}", prefix: "{${QUEUE}}" }',
        'paths: { allowed: ["${STAGING}", /fixed] }',
        'callbacks: { url: "https://${HOOK_HOST}/hook" }',
      ].join('\n'),
      { ARCHIVE_BASE: '/mnt/nas', MODE: '0440', QUEUE: 'archives', STAGING: '/srv/staging', HOOK_HOST: 'moodle.example.org' },
    );
    expect(config.drivers.local).toMatchObject({ root: '/mnt/nas/main', fileMode: 0o440 });
    expect(config.queue).toMatchObject({ name: 'archives', prefix: '{archives}' });
    expect(config.paths.allowed).toEqual(['/srv/staging', '/fixed']);
    expect(config.callbacks?.url).toBe('https://moodle.example.org/hook');
  });

  test('a missing variable is an error naming the field and the variable', () => {
    const error = loadTextError('drivers:\n  local: { type: filesystem, root: "${NOT_SET_ROOT}/x" }\n');
    const issue = issueFor(error, 'drivers.local.root');
    expect(issue.message).toContain('NOT_SET_ROOT');
  });

  test('a missing variable inside a list names the entry', () => {
    const error = loadTextError(`${FS_DRIVER}paths: { allowed: [/ok, "\${NOPE}"] }\n`);
    expect(issueFor(error, 'paths.allowed[1]').message).toContain('NOPE');
  });

  test('an empty variable is substituted as empty (and then validated)', () => {
    const error = loadTextError('drivers:\n  local: { type: filesystem, root: "${EMPTY}" }\n', { EMPTY: '' });
    expect(fields(error.issues)).toContain('drivers.local.root');
  });

  test('a variable of the process environment is not consulted when env is given', () => {
    const name = Object.keys(process.env).find((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && process.env[k]);
    expect(name).toBeDefined();
    const error = loadTextError(`drivers:\n  local: { type: filesystem, root: "/x/\${${name}}" }\n`);
    expect(issueFor(error, 'drivers.local.root').message).toContain(String(name));
  });
});

describe('validation names the field', () => {
  test('unknown top-level field', () => {
    const error = loadTextError(`${FS_DRIVER}defaultDrivr: local\n`);
    expect(issueFor(error, 'defaultDrivr').message).toMatch(/unknown/);
  });

  test('a misspelt drivers section: unknown field and missing drivers', () => {
    const error = loadTextError('drivrs:\n  local: { type: filesystem, root: /x }\n');
    expect(fields(error.issues)).toEqual(expect.arrayContaining(['drivrs', 'drivers']));
  });

  test('unknown nested field', () => {
    expect(fields(loadTextError(`${FS_DRIVER}queue: { nmae: x }\n`).issues)).toContain('queue.nmae');
  });

  test('unknown driver type → drivers.X.type, listing the known types', () => {
    const error = loadTextError('drivers:\n  cloud: { type: dropbox, root: /x }\n');
    const issue = issueFor(error, 'drivers.cloud.type');
    expect(issue.message).toContain('filesystem');
    expect(issue.message).toContain('dropbox');
  });

  test('missing driver type → drivers.X.type', () => {
    expect(fields(loadTextError('drivers:\n  cloud: { root: /x }\n').issues)).toContain('drivers.cloud.type');
  });

  test('filesystem without root → drivers.X.root', () => {
    expect(fields(loadTextError('drivers:\n  local: { type: filesystem }\n').issues)).toEqual(['drivers.local.root']);
  });

  test('filesystem with empty root → drivers.X.root', () => {
    expect(fields(loadTextError('drivers:\n  local: { type: filesystem, root: "" }\n').issues)).toEqual(['drivers.local.root']);
  });

  test.each([['abc'], ['0999'], ['12345'], ['rw-r--r--']])('filesystem fileMode %j → drivers.X.fileMode', (mode) => {
    const error = loadTextError(`drivers:\n  local: { type: filesystem, root: /x, fileMode: "${mode}" }\n`);
    expect(fields(error.issues)).toEqual(['drivers.local.fileMode']);
  });

  test('filesystem fileMode out of range → drivers.X.fileMode', () => {
    expect(fields(loadTextError('drivers:\n  local: { type: filesystem, root: /x, fileMode: 65536 }\n').issues)).toEqual(['drivers.local.fileMode']);
  });

  test('filesystem fsync not a boolean → drivers.X.fsync', () => {
    expect(fields(loadTextError('drivers:\n  local: { type: filesystem, root: /x, fsync: "yes" }\n').issues)).toEqual(['drivers.local.fsync']);
  });

  test('unknown filesystem setting → drivers.X.<setting>', () => {
    expect(fields(loadTextError('drivers:\n  local: { type: filesystem, root: /x, bucket: b }\n').issues)).toEqual(['drivers.local.bucket']);
  });

  test('common driver settings are checked: maxConcurrent 0 → drivers.X.maxConcurrent', () => {
    expect(fields(loadTextError('drivers:\n  local: { type: filesystem, root: /x, maxConcurrent: 0 }\n').issues)).toEqual(['drivers.local.maxConcurrent']);
  });

  test('issues of several drivers are all reported', () => {
    const error = loadTextError('defaultDriver: a\ndrivers:\n  a: { type: filesystem }\n  b: { type: filesystem, root: /x, fileMode: abc }\n');
    expect(fields(error.issues)).toEqual(expect.arrayContaining(['drivers.a.root', 'drivers.b.fileMode']));
  });

  test('no drivers at all', () => {
    expect(fields(loadTextError('drivers: {}\n').issues)).toContain('drivers');
  });

  test('defaultDriver that is not configured', () => {
    const error = loadTextError(`${FS_DRIVER}defaultDriver: worm\n`);
    expect(issueFor(error, 'defaultDriver').message).toContain('worm');
  });

  test('several drivers without defaultDriver', () => {
    const error = loadTextError('drivers:\n  a: { type: filesystem, root: /a }\n  b: { type: filesystem, root: /b }\n');
    expect(fields(error.issues)).toEqual(['defaultDriver']);
  });

  test('failover to an unknown driver names the entry', () => {
    const error = loadTextError(`${FS_DRIVER}failover: { local: [worm] }\n`);
    expect(issueFor(error, 'failover.local[0]').message).toContain('worm');
  });

  test('failover of a driver to itself names the entry', () => {
    const error = loadTextError(
      'defaultDriver: a\ndrivers:\n  a: { type: filesystem, root: /a }\n  b: { type: filesystem, root: /b }\nfailover: { a: [b, a] }\n',
    );
    expect(fields(error.issues)).toEqual(['failover.a[1]']);
  });

  test('failover from an unknown driver', () => {
    expect(fields(loadTextError(`${FS_DRIVER}failover: { ghost: [local] }\n`).issues)).toEqual(['failover.ghost']);
  });

  test('all the cross-checks are reported together', () => {
    const error = loadTextError(`${FS_DRIVER}defaultDriver: nope\nfailover: { local: [local, z] }\n`);
    expect(fields(error.issues)).toEqual(expect.arrayContaining(['defaultDriver', 'failover.local[0]', 'failover.local[1]']));
  });

  test.each([
    ['queue.attempts', 'queue: { attempts: 0 }'],
    ['queue.backoffMs', 'queue: { backoffMs: -1 }'],
    ['queue.name', 'queue: { name: "has space" }'],
    ['limits.inlineBytes', 'limits: { inlineBytes: 1.5 }'],
    ['http.port', 'http: { port: 70000 }'],
    ['callbacks.url', 'callbacks: { url: "ftp://h.example/x" }'],
  ])('%s out of bounds', (field, yaml) => {
    expect(fields(loadTextError(`${FS_DRIVER}${yaml}\n`).issues)).toContain(field);
  });

  test('the ConfigError message names the source file and each field', () => {
    const error = loadTextError('drivers:\n  local: { type: filesystem }\n');
    expect(error.message).toContain(error.source);
    expect(error.message).toContain('drivers.local.root');
    expect(error.name).toBe('ConfigError');
  });

  test('ftp: caFile is resolved against the config file, must be readable, and the password comes from the environment', () => {
    const ftp = (caFile: string) =>
      `drivers:\n  box: { type: ftp, host: 127.0.0.1, user: archive, password: "\${FTP_PASSWORD}", secure: true, caFile: ${caFile} }\n`;
    const dir = tempDir();
    writeFile(dir, 'certs/ca.pem', '-----BEGIN CERTIFICATE-----\n');
    const file = writeFile(dir, 'depot.yaml', ftp('certs/ca.pem'));
    const { config, redactor } = load({ DEPOT_CONFIG: file, FTP_PASSWORD: 'ftp-secret-123' }, tempDir());
    expect(config.drivers.box).toMatchObject({
      type: 'ftp',
      host: '127.0.0.1',
      port: 21,
      user: 'archive',
      secure: true,
      rejectUnauthorized: true,
      root: '/',
      caFile: path.join(dir, 'certs', 'ca.pem'),
    });
    expect(redactor.redact('login with ftp-secret-123')).not.toContain('ftp-secret-123');

    const missing = loadTextError(ftp('nowhere.pem'), { FTP_PASSWORD: 'ftp-secret-123' });
    expect(issueFor(missing, 'drivers.box.caFile').message).toContain('nowhere.pem');
    const noUser = ftp(path.join(dir, 'certs', 'ca.pem')).replace('user: archive, ', '');
    expect(fields(loadTextError(noUser, { FTP_PASSWORD: 'ftp-secret-123' }).issues)).toEqual(['drivers.box.user']);
  });
});
