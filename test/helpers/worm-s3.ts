import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { s3SettingsSchema, S3Settings } from '../../src/storage/drivers/s3';

/**
 * A real S3 server that enforces Object Lock: Ceph's RADOS Gateway on a
 * one-node cluster (test/helpers/worm-s3.sh), on a free loopback port with its
 * data in a fresh temp directory. It starts in about 13 s, so a test file
 * starts one and shares it between its tests (one bucket each).
 *
 * What it enforces and what it ignores (measured, radosgw 16.2.15): Object Lock
 * on versioned DELETE and on shortening retention; If-None-Match: * on PutObject
 * in unversioned buckets only. It ignores If-None-Match on versioned (so every
 * Object Lock) bucket and on CompleteMultipartUpload, and the lock headers of
 * CreateMultipartUpload. The S3 driver must hold write-once there anyway.
 */
export interface WormS3 {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** A client with the server's credentials (path style). */
  client(): S3Client;
  /** A bucket; `objectLock` enables Object Lock (and with it versioning). */
  createBucket(name: string, options?: { objectLock?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

const SCRIPT = path.join(__dirname, 'worm-s3.sh');
const START_TIMEOUT_MS = 180_000;

export async function startWormS3(): Promise<WormS3> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'depot-worm-s3-'));
  let stdout: string;
  try {
    stdout = await new Promise<string>((resolve, reject) => {
      execFile('bash', [SCRIPT, 'start', dataDir], { timeout: START_TIMEOUT_MS }, (error, out, err) => {
        if (error) reject(new Error(`worm-s3.sh did not start: ${error.message}\n${err}`));
        else resolve(out);
      });
    });
  } catch (error) {
    stopSync(dataDir);
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  const info = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  // Ceph's daemons run detached: a test process that dies must not leave them behind.
  const onExit = () => stopSync(dataDir);
  process.once('exit', onExit);
  const credentials = { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey };
  const clients: S3Client[] = [];
  const client = () => {
    const c = new S3Client({ region: info.region, endpoint: info.endpoint, forcePathStyle: true, credentials: { ...credentials } });
    clients.push(c);
    return c;
  };
  const admin = client();
  return {
    endpoint: info.endpoint,
    region: info.region,
    credentials,
    client,
    createBucket: async (name, options = {}) => {
      await admin.send(new CreateBucketCommand({ Bucket: name, ...(options.objectLock ? { ObjectLockEnabledForBucket: true } : {}) }));
    },
    stop: async () => {
      process.removeListener('exit', onExit);
      for (const c of clients) c.destroy();
      await new Promise<void>((resolve) => execFile('bash', [SCRIPT, 'stop', dataDir], { timeout: 90_000 }, () => resolve()));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function stopSync(dataDir: string): void {
  try {
    execFileSync('bash', [SCRIPT, 'stop', dataDir], { timeout: 90_000, stdio: 'ignore' });
  } catch {
    // Nothing was running, or it is gone already.
  }
}

/** Settings of an s3 driver against this server (the SDK's default checksums work there). */
export function wormSettings(server: WormS3, bucket: string, overrides: Record<string, unknown> = {}): S3Settings {
  return s3SettingsSchema.parse({
    type: 's3',
    bucket,
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    partSizeMiB: 5,
    timeoutMs: 10_000,
    ...server.credentials,
    ...overrides,
  });
}
