/**
 * The S3 peer of depot for large archives: what an operator would write without
 * it — lib-storage's multipart Upload straight from `fs.createReadStream`, with
 * depot's default part size and queue size, path style and checksums only when
 * required. No hashing, no Content-MD5, no manifest, no completion gate.
 *
 * Started once per measurement (like the depot worker, so start-up is not timed);
 * uploads one file per `{ file, key }` message on its IPC channel and answers
 * `{ ok: true }` or `{ ok: false, error }`. Credentials come from the environment.
 *
 *   node --import tsx bench/lib-storage-uploader.ts ENDPOINT BUCKET PART_SIZE_BYTES QUEUE_SIZE
 */
import { createReadStream } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

export interface UploadRequest {
  file: string;
  key: string;
}

export type UploadReply = { ok: true } | { ok: false; error: string };

function main(): void {
  const [endpoint, bucket, partSize, queueSize] = process.argv.slice(2);
  const accessKeyId = process.env.BENCH_S3_ACCESS_KEY_ID;
  const secretAccessKey = process.env.BENCH_S3_SECRET_ACCESS_KEY;
  if (!endpoint || !bucket || !partSize || !queueSize || !accessKeyId || !secretAccessKey || !process.send) {
    throw new Error('usage: lib-storage-uploader.ts ENDPOINT BUCKET PART_SIZE_BYTES QUEUE_SIZE (with BENCH_S3_* credentials and an IPC channel)');
  }
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const reply = (message: UploadReply) => process.send?.(message);
  process.on('message', (request: UploadRequest) => {
    const upload = new Upload({
      client,
      partSize: Number(partSize),
      queueSize: Number(queueSize),
      params: { Bucket: bucket, Key: request.key, Body: createReadStream(request.file), ContentType: 'application/octet-stream' },
    });
    upload.done().then(
      () => reply({ ok: true }),
      (error: Error) => reply({ ok: false, error: error.message }),
    );
  });
  // The benchmark holds the other end of the channel: when it goes away, so does this process.
  process.once('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => process.exit(0));
  process.stdout.write('lib-storage uploader ready\n');
}

main();
