import { spawnSync } from 'node:child_process';
import { redisForDisplay } from '../../../src/queue/connection';
import { depotCommand } from '../../helpers/queue-harness';
import { configError, FS_DRIVER, issueFor, loadText, removeTempDirs, shownText, tempDir, writeFile } from './helpers';

/** CONTRACT §10: the `redis` section's three topologies, their validation, and secrets in them. */
afterAll(() => removeTempDirs());

const SENTINELS = 'sentinels: [{ host: s1.internal, port: 26379 }, { host: s2.internal, port: 26380 }]';

describe('redis topologies', () => {
  test('sentinels with the master name', () => {
    const { config } = loadText(`${FS_DRIVER}redis: { ${SENTINELS}, name: mymaster, db: 2 }\n`, { REDIS_URL: 'redis://ignored:6379' });
    expect(config.redis).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1.internal', port: 26379 },
        { host: 's2.internal', port: 26380 },
      ],
      name: 'mymaster',
      db: 2,
    });
  });

  test('a cluster with a hash-tagged prefix', () => {
    const { config } = loadText(`${FS_DRIVER}redis: { cluster: [{ host: 10.0.0.1, port: 7000 }] }\nqueue: { prefix: "{depot}" }\n`);
    expect(config.redis).toEqual({ kind: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }] });
  });

  test.each(['bull', 'depot{}', '{depot', 'depot}{x'])('a cluster with prefix %s (no hash tag) is refused, naming queue.prefix and the hash tag', (prefix) => {
    const error = configError(() => loadText(`${FS_DRIVER}redis: { cluster: [{ host: 10.0.0.1, port: 7000 }] }\nqueue: { prefix: "${prefix}" }\n`));
    expect(issueFor(error, 'queue.prefix').message).toMatch(/hash tag such as \{depot\}/);
  });

  test('passwords come from the environment or files and are masked; literal ones are refused', () => {
    const dir = tempDir();
    const file = writeFile(dir, 'sentinel-pw', 'sentinel-secret-42\n');
    const { config, redactor } = loadText(`${FS_DRIVER}redis: { ${SENTINELS}, name: m, password: "\${REDIS_PW}", sentinelPasswordFile: ${file} }\n`, {
      REDIS_PW: 'redis-secret-17',
    });
    expect(config.redis).toMatchObject({ password: 'redis-secret-17', sentinelPassword: 'sentinel-secret-42' });
    expect(redactor.redact('auth redis-secret-17 sentinel-secret-42')).toBe('auth *** ***');
    // Messages show where Redis is, never a credential.
    expect(redisForDisplay(config.redis)).toBe("Sentinel master 'm' via s1.internal:26379,s2.internal:26380");

    const literal = configError(() =>
      loadText(`${FS_DRIVER}redis: { cluster: [{ host: a, port: 1 }], password: hunter2-literal }\nqueue: { prefix: "{d}" }\n`),
    );
    expect(issueFor(literal, 'redis.password').message).toMatch(/\$\{ENV_VAR\}/);
    expect(shownText(literal)).not.toContain('hunter2-literal');
  });

  test.each([
    ['sentinels without name', 'redis.name', `redis: { ${SENTINELS} }`],
    ['url and cluster together', 'redis.cluster', 'redis: { url: "redis://a:1", cluster: [{ host: a, port: 1 }] }'],
    ['no form at all', 'redis', 'redis: { name: m }'],
    ['an empty node list', 'redis.cluster', 'redis: { cluster: [] }'],
    ['a port out of range', 'redis.cluster[0].port', 'redis: { cluster: [{ host: a, port: 70000 }] }'],
    ['a node without host', 'redis.sentinels[0].host', 'redis: { sentinels: [{ port: 26379 }], name: m }'],
    ['sentinelPassword on a cluster', 'redis.sentinelPassword', 'redis: { cluster: [{ host: a, port: 1 }], sentinelPassword: "${X}" }'],
    ['password beside a url', 'redis.password', 'redis: { url: "redis://a:1", password: "${X}" }'],
    ['an unknown field', 'redis.nodes', 'redis: { cluster: [{ host: a, port: 1 }], nodes: [] }'],
  ])('%s: an error naming %s', (_what, field, section) => {
    const error = configError(() => loadText(`${FS_DRIVER}${section}\nqueue: { prefix: "{depot}" }\n`, { X: 'some-secret-value' }));
    expect(error.issues.map((i) => i.field)).toContain(field);
  });

  test('depot refuses a cluster config without a hash tag at start: exit 2, naming queue.prefix and the hash tag', () => {
    const dir = tempDir();
    const file = writeFile(dir, 'depot.yaml', `${FS_DRIVER}redis: { cluster: [{ host: 127.0.0.1, port: 1 }] }\n`);
    const run = depotCommand(['status'], { ...process.env, DEPOT_CONFIG: file });
    const result = spawnSync(run.command, run.args, { env: run.env, encoding: 'utf8', timeout: 30_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/queue\.prefix/);
    expect(result.stderr).toMatch(/hash tag such as \{depot\}/);
  });
});
