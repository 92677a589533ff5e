import path from 'node:path';
import { Config, DEFAULT_REDIS_URL } from '../../../src/config/load';
import { redactor as processRedactor } from '../../../src/support/redaction';
import { configError, FS_DRIVER, issueFor, load, loadText, removeTempDirs, shownText, tempDir } from './helpers';

afterAll(removeTempDirs);

describe('embedded default (no DEPOT_CONFIG)', () => {
  test('one filesystem driver `local` at ./data/archive relative to cwd, the default driver', () => {
    const cwd = tempDir();
    const { config } = load({}, cwd);
    expect(config.source).toBe('embedded default');
    expect(config.defaultDriver).toBe('local');
    expect(Object.keys(config.drivers)).toEqual(['local']);
    expect(config.drivers.local).toMatchObject({ type: 'filesystem', root: path.join(cwd, 'data', 'archive') });
    expect(config.failover).toEqual({});
  });

  test('root from an absolute DEPOT_DATA', () => {
    const cwd = tempDir();
    const data = path.join(tempDir(), 'archives');
    expect(load({ DEPOT_DATA: data }, cwd).config.drivers.local.root).toBe(data);
  });

  test('a relative DEPOT_DATA is resolved against cwd', () => {
    const cwd = tempDir();
    expect(load({ DEPOT_DATA: 'store/here' }, cwd).config.drivers.local.root).toBe(path.join(cwd, 'store', 'here'));
  });

  test('an empty DEPOT_CONFIG means the embedded default', () => {
    const cwd = tempDir();
    expect(load({ DEPOT_CONFIG: '' }, cwd).config.source).toBe('embedded default');
  });

  test('filesystem defaults: fsync true, fileMode 0444', () => {
    const { config } = load({}, tempDir());
    expect(config.drivers.local).toMatchObject({ fsync: true, fileMode: 0o444 });
  });

  test('contract defaults for queue, limits, http and redis', () => {
    const { config } = load({}, tempDir());
    expect(config.queue).toMatchObject({ name: 'depot', prefix: 'bull', attempts: 5, backoffMs: 1000, concurrency: 4 });
    expect(config.limits.inlineBytes).toBe(1048576);
    expect(config.http.tokens).toEqual([]);
    expect(singleUrl(config)).toBe('redis://127.0.0.1:6379');
    expect(DEFAULT_REDIS_URL).toBe('redis://127.0.0.1:6379');
  });

  test('secrets go to the given redactor, not the process one', () => {
    const before = processRedactor.size;
    const { redactor } = load({ REDIS_URL: 'redis://:only-in-this-test@redis.example:6379' }, tempDir());
    expect(redactor.redact('x only-in-this-test y')).toBe('x *** y');
    expect(processRedactor.size).toBe(before);
  });
});

describe('Redis connection', () => {
  test('REDIS_URL is used when the config has no redis.url', () => {
    const url = 'redis://redis.internal:6380/2';
    expect(singleUrl(load({ REDIS_URL: url }, tempDir()).config)).toBe(url);
  });

  test('REDIS_URL is used with a config file that has no redis section', () => {
    const url = 'rediss://redis.internal:6380';
    expect(singleUrl(loadText(FS_DRIVER, { REDIS_URL: url }).config)).toBe(url);
  });

  test('redis.url in the file wins over REDIS_URL', () => {
    const { config } = loadText(`${FS_DRIVER}redis: { url: "redis://from-file:6379" }\n`, { REDIS_URL: 'redis://from-env:6379' });
    expect(singleUrl(config)).toBe('redis://from-file:6379');
  });

  test('the password of REDIS_URL is registered for redaction, decoded and URL-encoded', () => {
    const password = 'p@ss word/42';
    const url = `redis://default:${encodeURIComponent(password)}@redis.internal:6379`;
    const { redactor } = load({ REDIS_URL: url }, tempDir());
    expect(redactor.redact(`auth ${password} failed`)).toBe('auth *** failed');
    expect(redactor.redact(`connecting to ${url}`)).not.toContain(encodeURIComponent(password));
  });

  test('the password of an interpolated redis.url is registered for redaction', () => {
    const { config, redactor } = loadText(`${FS_DRIVER}redis: { url: "redis://:\${REDIS_PASSWORD}@redis.internal:6379" }\n`, {
      REDIS_PASSWORD: 'interpolated-redis-pw',
    });
    expect(singleUrl(config)).toBe('redis://:interpolated-redis-pw@redis.internal:6379');
    expect(redactor.redact(singleUrl(config))).toBe('redis://:***@redis.internal:6379');
  });

  test('a REDIS_URL that is not redis:// is an error named REDIS_URL that does not echo it', () => {
    const error = configError(() => load({ REDIS_URL: 'http://:leaky-password@redis.internal' }, tempDir()));
    expect(issueFor(error, 'REDIS_URL').message).toMatch(/redis:\/\//);
    expect(shownText(error)).not.toContain('leaky-password');
  });

  test('a redis.url that is not redis:// is an error named redis.url', () => {
    const error = configError(() => loadText(`${FS_DRIVER}redis: { url: "https://redis.internal" }\n`));
    expect(issueFor(error, 'redis.url')).toBeDefined();
  });
});

/** The URL of a single-server topology (CONTRACT §10); fails for Sentinel or Cluster. */
function singleUrl(config: Config): string {
  if (config.redis.kind !== 'single') throw new Error(`expected a single server, got ${config.redis.kind}`);
  return config.redis.url;
}
