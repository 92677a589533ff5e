/**
 * The S3 driver's settings (CONTRACT §7), through the factory and the config
 * loader as operators meet them, and the driver's pure pieces: part sizes,
 * Object Lock dates, object metadata and the error mapping.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/config/config-error';
import { loadConfig, validateConfig } from '../../src/config/load';
import { DepotError } from '../../src/contract';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { s3SettingsSchema } from '../../src/storage/drivers/s3';
import { toDepotError } from '../../src/storage/drivers/s3/errors';
import { metadataContradicts, objectMetadata, readObjectMetadata, sidecarKey } from '../../src/storage/drivers/s3/manifest-metadata';
import { MAX_PARTS, partSizeFor } from '../../src/storage/drivers/s3/part-size';
import { lockFor } from '../../src/storage/drivers/s3/retention';
import { SettingsError } from '../../src/storage/factory';
import { Redactor } from '../../src/support/redaction';

const MiB = 1024 * 1024;
const DAY = 24 * 60 * 60 * 1000;
const minimal = { type: 's3', bucket: 'archives', region: 'eu-central-1' };

function issues(raw: unknown): string[] {
  try {
    defaultDriverFactory().parseSettings('worm', raw);
  } catch (error) {
    if (error instanceof SettingsError) return error.issues.map((i) => `${i.field}: ${i.message}`);
    throw error;
  }
  return [];
}

describe('settings', () => {
  test('bucket and region are required; the defaults are the contract’s', () => {
    expect(issues({ type: 's3' })).toEqual([expect.stringMatching(/^drivers\.worm\.bucket: /), expect.stringMatching(/^drivers\.worm\.region: /)]);
    expect(s3SettingsSchema.parse(minimal)).toEqual({
      ...minimal,
      prefix: '',
      forcePathStyle: false,
      checksums: 'when_supported',
      partSizeMiB: 16,
      queueSize: 4,
    });
  });

  test('every setting of §7 is accepted', () => {
    const all = {
      ...minimal,
      endpoint: 'https://s3.example.org',
      prefix: 'depot/prod',
      forcePathStyle: true,
      accessKeyId: 'AKIA0000',
      secretAccessKey: 'secret',
      checksums: 'when_required',
      partSizeMiB: 64,
      queueSize: 8,
      objectLock: { mode: 'COMPLIANCE', days: 3650 },
      storageClass: 'STANDARD_IA',
      sse: 'aws:kms',
      kmsKeyId: 'arn:aws:kms:eu-central-1:111122223333:key/x',
      quotaBytes: 10 ** 12,
      timeoutMs: 10_000,
      maxConcurrent: 4,
    };
    expect(issues(all)).toEqual([]);
    expect(s3SettingsSchema.parse(all).prefix).toBe('depot/prod/');
  });

  test.each([
    [{ bucket: 'a' }, 'drivers.worm.bucket'],
    [{ bucket: 'has/slash' }, 'drivers.worm.bucket'],
    [{ region: 'eu central' }, 'drivers.worm.region'],
    [{ endpoint: 'ftp://s3.example.org' }, 'drivers.worm.endpoint'],
    [{ prefix: '/abs' }, 'drivers.worm.prefix'],
    [{ prefix: 'a//b' }, 'drivers.worm.prefix'],
    [{ prefix: 'a/../b' }, 'drivers.worm.prefix'],
    [{ checksums: 'never' }, 'drivers.worm.checksums'],
    [{ partSizeMiB: 4 }, 'drivers.worm.partSizeMiB'],
    [{ partSizeMiB: 5121 }, 'drivers.worm.partSizeMiB'],
    [{ queueSize: 0 }, 'drivers.worm.queueSize'],
    [{ objectLock: { mode: 'FOREVER', days: 1 } }, 'drivers.worm.objectLock.mode'],
    [{ objectLock: { mode: 'COMPLIANCE' } }, 'drivers.worm.objectLock.days'],
    [{ objectLock: { mode: 'COMPLIANCE', days: 1, years: 1 } }, 'drivers.worm.objectLock.years'],
    [{ storageClass: 'standard' }, 'drivers.worm.storageClass'],
    [{ sse: 'aws:kms:dsse' }, 'drivers.worm.sse'],
    [{ kmsKeyId: 'k' }, 'drivers.worm.kmsKeyId'],
    [{ sse: 'AES256', kmsKeyId: 'k' }, 'drivers.worm.kmsKeyId'],
    [{ accessKeyId: 'AKIA0000' }, 'drivers.worm.secretAccessKey'],
    [{ secretAccessKey: 'secret' }, 'drivers.worm.accessKeyId'],
    [{ quotaBytes: 0 }, 'drivers.worm.quotaBytes'],
    [{ timeoutMs: 0 }, 'drivers.worm.timeoutMs'],
    [{ bucketName: 'x' }, 'drivers.worm.bucketName'],
  ])('%j is refused on %s', (override, field) => {
    const found = issues({ ...minimal, ...override });
    expect(found.map((i) => i.split(':')[0])).toEqual([field]);
  });
});

describe('in a config file: credentials only from ${ENV} or *File, and masked', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'depot-s3-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const options = (env: NodeJS.ProcessEnv, redactor = new Redactor()) => ({ env, source: 'test', baseDir: dir, factory: defaultDriverFactory(), redactor });

  test('accessKeyId from the environment, secretAccessKeyFile from a file', () => {
    writeFileSync(path.join(dir, 's3-secret'), 'file-secret-value\n');
    const redactor = new Redactor();
    const config = validateConfig(
      { drivers: { worm: { ...minimal, accessKeyId: '${S3_KEY}', secretAccessKeyFile: 's3-secret' } } },
      options({ S3_KEY: 'AKIAFROMENV' }, redactor),
    );
    expect(config.drivers.worm).toMatchObject({ accessKeyId: 'AKIAFROMENV', secretAccessKey: 'file-secret-value' });
    expect(redactor.redact('AKIAFROMENV / file-secret-value')).toBe('*** / ***');
    expect(defaultDriverFactory().definition('s3')?.secretFields).toEqual(['accessKeyId', 'secretAccessKey']);
  });

  test('a literal credential is refused without being echoed', () => {
    let error: unknown;
    try {
      validateConfig({ drivers: { worm: { ...minimal, accessKeyId: 'AKIALITERAL', secretAccessKey: 'literal-secret' } } }, options({}));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('drivers.worm.accessKeyId');
    expect(message).toContain('drivers.worm.secretAccessKey');
    expect(message).not.toContain('AKIALITERAL');
    expect(message).not.toContain('literal-secret');
  });

  test('examples/depot.s3.yaml (the compose file’s worker config) is valid', () => {
    const config = loadConfig({
      env: {
        DEPOT_CONFIG: path.join(__dirname, '../../examples/depot.s3.yaml'),
        S3_ENDPOINT: 'http://minio:9000',
        S3_REGION: 'us-east-1',
        S3_BUCKET: 'depot-archives',
        S3_ACCESS_KEY_ID: 'depot-worker',
        S3_SECRET_ACCESS_KEY: 'worker-secret',
      },
      redactor: new Redactor(),
    });
    expect(config.defaultDriver).toBe('worm');
    expect(config.drivers.worm).toMatchObject({ type: 's3', bucket: 'depot-archives', prefix: 'archives/', objectLock: { mode: 'GOVERNANCE', days: 365 } });
    expect(config.failover).toEqual({ worm: ['local'] });
  });
});

describe('part size', () => {
  test('the configured one while it fits in 10,000 parts, else grown in whole MiB', () => {
    expect(partSizeFor(16)).toBe(16 * MiB);
    expect(partSizeFor(16, 100 * MiB)).toBe(16 * MiB);
    expect(partSizeFor(16, 16 * MiB * MAX_PARTS)).toBe(16 * MiB);
    expect(partSizeFor(16, 16 * MiB * MAX_PARTS + 1)).toBe(17 * MiB);
    const huge = 4 * 1024 * 1024 * MiB; // 4 TiB
    expect(Math.ceil(huge / partSizeFor(16, huge))).toBeLessThanOrEqual(MAX_PARTS);
    expect(partSizeFor(16, 5 * 1024 * 1024 * 1024 * MiB)).toBe(5 * 1024 * MiB); // S3's ceiling per part
  });
});

describe('Object Lock dates', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  test('none without objectLock', () => {
    expect(lockFor({}, '2099-01-01T00:00:00Z', now)).toBeUndefined();
  });
  test('the later of objectLock.days and the task’s retainUntil', () => {
    const settings = { objectLock: { mode: 'COMPLIANCE' as const, days: 10 } };
    expect(lockFor(settings, undefined, now)).toEqual({ ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(now.getTime() + 10 * DAY) });
    expect(lockFor(settings, '2030-01-05T00:00:00Z', now)?.ObjectLockRetainUntilDate).toEqual(new Date(now.getTime() + 10 * DAY));
    expect(lockFor(settings, '2031-01-01', now)?.ObjectLockRetainUntilDate).toEqual(new Date('2031-01-01T00:00:00Z'));
  });
});

describe('object metadata', () => {
  test('ASCII only, names round-trip, under S3’s 2 KB even at the largest taskId and name', () => {
    const name = '試験'.repeat(41) + 'x📦.zip';
    const taskId = 'x'.repeat(128);
    const metadata = objectMetadata({ taskId, name, sha256: 'a'.repeat(64), size: 2 ** 53 - 1 });
    for (const value of Object.values(metadata)) expect(value).toMatch(/^[\x20-\x7e]*$/);
    const bytes = Object.entries(metadata).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    expect(bytes).toBeLessThan(2048);
    expect(readObjectMetadata(metadata)).toEqual({ taskId, name, sha256: 'a'.repeat(64), size: 2 ** 53 - 1 });
    expect(readObjectMetadata({ 'depot-name': '%E0%A4' }).name).toBeUndefined(); // malformed: ignored, not thrown
  });

  test('contradictions with the manifest are noticed; absent fields are not contradictions', () => {
    const manifest = { name: 'a.zip', key: 'k', size: 3, sha256: 'b'.repeat(64), storedAt: '', taskId: 't', metadata: {} };
    expect(metadataContradicts(manifest, objectMetadata({ taskId: 't', name: 'a.zip' }))).toBe(false);
    expect(metadataContradicts(manifest, objectMetadata({ taskId: 't', name: 'a.zip', sha256: 'b'.repeat(64), size: 3 }))).toBe(false);
    expect(metadataContradicts(manifest, objectMetadata({ taskId: 't', name: 'b.zip' }))).toBe(true);
    expect(metadataContradicts(manifest, objectMetadata({ taskId: 't', name: 'a.zip', size: 4 }))).toBe(true);
    expect(sidecarKey('p/2024/01/01/t/a.zip')).toBe('p/2024/01/01/t/a.zip.depot.json');
  });
});

describe('error mapping', () => {
  const sdk = (name: string, status?: number, message = name) => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });

  test.each([
    [sdk('InvalidAccessKeyId', 403), 'auth'],
    [sdk('SignatureDoesNotMatch', 403), 'auth'],
    [sdk('ExpiredToken', 400), 'auth'],
    [sdk('CredentialsProviderError'), 'auth'],
    [sdk('Unknown', 401), 'auth'],
    [sdk('NoSuchKey', 404), 'not_found'],
    [sdk('NotFound', 404), 'not_found'],
    [sdk('PreconditionFailed', 412), 'conflict'],
    [sdk('EntityTooLarge', 400), 'no_space'],
    [sdk('XMinioStorageFull', 507), 'no_space'],
    [sdk('Unknown', 507), 'no_space'],
    [sdk('SlowDown', 503), 'unavailable'],
    [sdk('Unknown', 502), 'unavailable'],
    [sdk('TimeoutError'), 'unavailable'],
    [sdk('AbortError'), 'unavailable'],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }), 'unavailable'],
    [new Error('AWS SDK error wrapper for Error: read ECONNRESET'), 'unavailable'],
    [sdk('BadDigest', 400), 'unavailable'],
    // A 4xx that will not change by retrying is an operator's problem (CONTRACT §13), not `internal`.
    [sdk('InvalidArgument', 400), 'misconfigured'],
    [sdk('InvalidRequest', 400), 'misconfigured'],
    [sdk('MethodNotAllowed', 405), 'misconfigured'],
    [sdk('InvalidBucketState', 409), 'misconfigured'],
    [Object.assign(new Error('boom'), { name: 'TypeError' }), 'internal'],
  ])('%p → %s', (error, code) => {
    const mapped = toDepotError(error, 'worm: put k');
    expect(mapped).toBeInstanceOf(DepotError);
    expect(mapped.code).toBe(code);
    expect(mapped.message.startsWith('worm: put k')).toBe(true);
  });

  test('an error depot does not map keeps its S3 code and HTTP status in the message', () => {
    // Ceph answers lock headers on a bucket without Object Lock with 400 InvalidRequest and no message of its own.
    const refused = toDepotError(sdk('InvalidRequest', 400, 'UnknownError'), 'worm: put k');
    expect(refused.message).toContain('InvalidRequest, HTTP 400');
    const unknown = toDepotError(sdk('XCephSomethingNew', 400, 'odd'), 'worm: put k');
    expect(unknown).toMatchObject({ code: 'misconfigured' });
    expect(unknown.message).toContain('XCephSomethingNew, HTTP 400: odd');
  });

  test('a refusal of credentials says which, never what the store echoed', () => {
    const echoed = sdk('InvalidAccessKeyId', 403, 'The key AKIASECRETLOOKING does not exist');
    expect(toDepotError(echoed, 'worm: head k').message).toBe('worm: head k: the store refused the credentials (InvalidAccessKeyId, HTTP 403)');
  });
});
