/**
 * The S3 driver's part loop (src/storage/drivers/s3/multipart-upload.ts) on its
 * own, against a client whose UploadPart answers locally: part boundaries,
 * the part cap, the reuse of part buffers and how a failed part ends the
 * upload. The requests on a real server: s3-requests.test.ts.
 */
import { createHash } from 'node:crypto';
import { S3Client, UploadPartCommandInput } from '@aws-sdk/client-s3';
import { DepotError } from '../../src/contract';
import { uploadParts, PartsPlan } from '../../src/storage/drivers/s3/multipart-upload';
import { PartBuffers } from '../../src/storage/drivers/s3/part-buffers';
import { MAX_PARTS } from '../../src/storage/drivers/s3/part-size';
import { patternBytes } from '../helpers/streams';

const KiB = 1024;

interface Seen {
  number: number;
  bytes: Buffer;
  arrayBuffer: ArrayBufferLike;
  sha256?: string;
  md5?: string;
}

/** A client whose UploadPart never leaves the process: `answer` decides each part's fate after `delayMs`. */
function localClient(answer: (part: number) => Error | undefined = () => undefined, delayMs = 1) {
  const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
  const seen: Seen[] = [];
  let running = 0;
  let maxRunning = 0;
  client.middlewareStack.add(
    () => async (args) => {
      const input = args.input as UploadPartCommandInput;
      const body = input.Body as Buffer;
      seen.push({
        number: input.PartNumber ?? 0,
        bytes: Buffer.from(body),
        arrayBuffer: body.buffer,
        sha256: input.ChecksumSHA256,
        md5: input.ContentMD5,
      });
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      try {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        const error = answer(input.PartNumber ?? 0);
        if (error) throw error;
        return { output: { ETag: `"etag-${input.PartNumber}"`, $metadata: {} }, response: {} };
      } finally {
        running -= 1;
      }
    },
    { step: 'initialize', name: 'testLocalUploadPart', priority: 'high' },
  );
  return { client, seen, running: () => running, maxRunning: () => maxRunning };
}

function plan(client: S3Client, overrides: Partial<PartsPlan> = {}): PartsPlan {
  return {
    client,
    bucket: 'b',
    key: 'k',
    uploadId: 'u',
    partSize: 64 * KiB,
    queueSize: 3,
    checksum: 'none',
    buffers: new PartBuffers(3),
    onFailure: () => undefined,
    ...overrides,
  };
}

async function* chunksOf(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

const digest = (algorithm: 'sha256' | 'md5', bytes: Buffer) => createHash(algorithm).update(bytes).digest('base64');

test.each([
  ['a multiple of the part size: no empty last part', 4 * 64 * KiB, 10_000],
  ['a short last part, chunks across part boundaries', 3 * 64 * KiB + 100, 7_001],
  ['chunks larger than a part', 5 * 64 * KiB + 1, 150 * KiB],
])('%s', async (_label, size, chunkSize) => {
  const { client, seen } = localClient();
  const bytes = patternBytes(size, 'parts');
  const parts = await uploadParts(plan(client, { checksum: 'sha256' }), chunksOf(bytes, chunkSize));
  const count = Math.ceil(size / (64 * KiB));
  expect(parts.map((p) => p.PartNumber)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  expect(parts.map((p) => p.ETag)).toEqual(parts.map((p) => `"etag-${p.PartNumber}"`));
  const sent = [...seen].sort((a, b) => a.number - b.number);
  expect(Buffer.concat(sent.map((s) => s.bytes))).toEqual(bytes);
  for (const s of sent) {
    expect(s.bytes.length).toBe(s.number < count ? 64 * KiB : size - (count - 1) * 64 * KiB);
    expect(s.sha256).toBe(digest('sha256', s.bytes)); // the digest taken while filling is the part's own
    expect(s.md5).toBeUndefined();
  }
});

test('md5: Content-MD5 of each part, and no x-amz-checksum-sha256', async () => {
  const { client, seen } = localClient();
  const bytes = patternBytes(2 * 64 * KiB + 5, 'md5');
  await uploadParts(plan(client, { checksum: 'md5' }), chunksOf(bytes, 4096));
  for (const s of seen) {
    expect(s.md5).toBe(digest('md5', s.bytes));
    expect(s.sha256).toBeUndefined();
  }
});

test('at most queueSize parts in flight, and as many buffers, reused from part to part and from upload to upload', async () => {
  const { client, seen, maxRunning } = localClient(() => undefined, 5);
  const buffers = new PartBuffers(3);
  for (let i = 0; i < 2; i++) await uploadParts(plan(client, { buffers }), chunksOf(patternBytes(20 * 64 * KiB, `reuse ${i}`), 16 * KiB));
  expect(seen).toHaveLength(40);
  expect(maxRunning()).toBe(3);
  expect(new Set(seen.map((s) => s.arrayBuffer)).size).toBe(3);
});

test('a part refused for good: the upload rejects with its error once no part runs, the source is told once and read no further', async () => {
  const refused = new DepotError('unavailable', 'part 2 refused');
  const { client, running } = localClient((part) => (part === 2 ? refused : undefined), 5);
  const failures: unknown[] = [];
  let read = 0;
  async function* source(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 1000; i++) {
      read += 1;
      yield patternBytes(16 * KiB, `chunk ${i}`);
    }
  }
  await expect(uploadParts(plan(client, { onFailure: (e) => failures.push(e) }), source())).rejects.toBe(refused);
  expect(running()).toBe(0);
  expect(failures).toEqual([refused]);
  expect(read).toBeLessThan(100);
});

test(`more than ${MAX_PARTS} parts: no_space before the part beyond the cap is sent`, async () => {
  const { client, seen } = localClient(() => undefined, 0);
  // Parts of 1 byte would be refused by S3 (5 MiB at least); the loop does not care, which keeps this test small.
  const bytes = Buffer.alloc(MAX_PARTS + 1, 1);
  const upload = uploadParts(plan(client, { partSize: 1, queueSize: 64, buffers: new PartBuffers(64) }), chunksOf(bytes, 4096));
  await expect(upload).rejects.toMatchObject({ code: 'no_space' });
  expect(Math.max(...seen.map((s) => s.number))).toBe(MAX_PARTS);
});
