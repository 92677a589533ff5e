import { ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { s3SettingsSchema, S3Settings } from '../../src/storage/drivers/s3';
import { freePort } from './redis-server';

/**
 * A real S3-protocol server for tests: s3rver 3.7.1 in a child process on a free
 * loopback port, persisting to a temp directory (so it can be stopped and
 * started again with its data). Its credentials are s3rver's built-in
 * `S3RVER`/`S3RVER`; it rejects unknown access key ids but does not check
 * SigV4 signatures.
 *
 * s3rver lacks three things the driver relies on; the child adds them on top
 * of s3rver's own storage, doing what S3 does:
 * - AbortMultipartUpload (DELETE ?uploadId): removes the upload's parts;
 * - ListMultipartUploads (GET ?uploads): lists the uploads in progress, with
 *   their start time taken from the upload directory's mtime;
 * - keys whose last segment plus s3rver's file suffix pass 255 bytes (S3 keys may
 *   be 1024 bytes): s3rver maps each key segment to one file name, so long
 *   segments are stored split over nested directories.
 * Everything else (If-None-Match, Object Lock, checksums) is s3rver's own: it
 * ignores them, which is why test/storage/s3-requests.test.ts checks the
 * requests instead. `conditionalWrites` makes the child answer 412 to
 * `If-None-Match: *` on an existing key, for the driver's 412 paths.
 */
export interface S3Server {
  port: number;
  endpoint: string;
  dataDir: string;
  /** A client with the server's credentials (path style, checksums only when required). */
  client(): S3Client;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

export const S3RVER_CREDENTIALS: Readonly<{ accessKeyId: string; secretAccessKey: string }> = Object.freeze({
  accessKeyId: 'S3RVER',
  secretAccessKey: 'S3RVER',
});

const CHILD = String.raw`
const [s3rverMain, directory, port, mode] = process.argv.slice(1);
const fs = require('fs');
const path = require('path');
const S3rver = require(s3rverMain);
const FilesystemStore = require(path.join(path.dirname(s3rverMain), 'stores', 'filesystem'));

// Long key segments: split into pieces of at most 150 bytes joined by "\u0001/" (no depot key contains U+0001).
const MAX = 150;
const split = (segment) => {
  if (Buffer.byteLength(segment) <= 200) return segment;
  const pieces = [];
  let piece = '';
  for (const ch of segment) {
    if (Buffer.byteLength(piece + ch) > MAX) { pieces.push(piece); piece = ''; }
    piece += ch;
  }
  pieces.push(piece);
  return pieces.join('\u0001/');
};
FilesystemStore.encodeKeyPath = (key) => key.split('/').map(split).join('/');
FilesystemStore.decodeKeyPath = (keyPath) => keyPath.split('\u0001/').join('');

const server = new S3rver({ directory, address: '127.0.0.1', port: Number(port), silent: true });
const uploadsDir = (bucket) => path.join(directory, bucket, '._S3rver_uploads');
const xml = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const reply = (ctx, status, body) => {
  ctx.status = status;
  if (body) { ctx.type = 'application/xml'; ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n' + body; }
};

server.middleware.unshift(async (ctx, next) => {
  // Path style: /<bucket>/<key>, or /<bucket>/ for the bucket itself.
  const [bucket, ...rest] = ctx.path.split('/').slice(1).map(decodeURIComponent);
  const onBucket = rest.join('/') === '';
  if (ctx.method === 'DELETE' && 'uploadId' in ctx.query && !onBucket) {
    const dir = path.join(uploadsDir(bucket), path.basename(String(ctx.query.uploadId)));
    if (!fs.existsSync(dir)) return reply(ctx, 404, '<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>');
    fs.rmSync(dir, { recursive: true, force: true });
    return reply(ctx, 204);
  }
  // Opt-in: If-None-Match: * on PutObject and CompleteMultipartUpload, as AWS has enforced it since 2024.
  const creates = (ctx.method === 'PUT' && !('uploadId' in ctx.query) && !('x-amz-copy-source' in ctx.headers)) || (ctx.method === 'POST' && 'uploadId' in ctx.query);
  if (mode === 'conditional' && !onBucket && creates && ctx.headers['if-none-match'] === '*') {
    const key = (ctx.method === 'POST') ? fs.readFileSync(path.join(uploadsDir(bucket), path.basename(String(ctx.query.uploadId)), 'key'), 'utf8') : rest.join('/');
    if (await server.store.existsObject(bucket, key)) {
      return reply(ctx, 412, '<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>');
    }
  }
  if (ctx.method === 'GET' && 'uploads' in ctx.query && onBucket) {
    const prefix = String(ctx.query.prefix || '');
    const root = uploadsDir(bucket);
    const uploads = (fs.existsSync(root) ? fs.readdirSync(root) : [])
      .map((id) => ({ id, key: fs.readFileSync(path.join(root, id, 'key'), 'utf8'), at: fs.statSync(path.join(root, id)).mtime }))
      .filter((u) => u.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return reply(ctx, 200, '<ListMultipartUploadsResult><Bucket>' + xml(bucket) + '</Bucket><IsTruncated>false</IsTruncated>' +
      uploads.map((u) => '<Upload><Key>' + xml(u.key) + '</Key><UploadId>' + u.id + '</UploadId><Initiated>' + u.at.toISOString() + '</Initiated></Upload>').join('') +
      '</ListMultipartUploadsResult>');
  }
  return next();
});

server.run().then(() => process.stdout.write('ready\n'), (error) => { console.error(error); process.exit(1); });
// The test process holds our stdin: when it goes away, so do we.
process.stdin.on('end', () => process.exit(0)).resume();
`;

export interface S3ServerOptions {
  /** Enforce `If-None-Match: *` (plain s3rver accepts it and overwrites anyway). */
  conditionalWrites?: boolean;
}

export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'depot-s3rver-'));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const s3rverMain = require.resolve('s3rver');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const clients: S3Client[] = [];

  const start = async () => {
    // Already running: a second child would fail on the port and orphan the first (and keep jest from exiting).
    if (child && child.exitCode === null && child.signalCode === null) return;
    const mode = options.conditionalWrites ? 'conditional' : 'plain';
    const proc = spawn(process.execPath, ['-e', CHILD, s3rverMain, dataDir, String(port), mode], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`s3rver did not start within 10 s: ${stderr}`)), 10_000);
      proc.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited with ${code}: ${stderr}`));
      });
    });
  };

  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    child = undefined;
  };

  const client = () => {
    const c = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: { ...S3RVER_CREDENTIALS }, // a copy: the SDK marks the object it is given
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    clients.push(c);
    return c;
  };

  await start();
  const admin = client();
  return {
    port,
    endpoint,
    dataDir,
    client,
    createBucket: async (name) => {
      await admin.send(new CreateBucketCommand({ Bucket: name }));
    },
    stop,
    start,
    destroy: async () => {
      await stop();
      for (const c of clients) c.destroy();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

let buckets = 0;

/** A bucket name no other test of this process uses. */
export function uniqueBucket(label = 'depot'): string {
  buckets += 1;
  return `${label}-${process.pid}-${buckets}-${Date.now().toString(36)}`.toLowerCase();
}

/** Settings of an s3 driver against this server: path style, and checksums only when required (s3rver mangles the default ones). */
export function s3rverSettings(server: S3Server, bucket: string, overrides: Record<string, unknown> = {}): S3Settings {
  return s3SettingsSchema.parse({
    type: 's3',
    bucket,
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    checksums: 'when_required',
    partSizeMiB: 5,
    timeoutMs: 5_000,
    ...S3RVER_CREDENTIALS,
    ...overrides,
  });
}
