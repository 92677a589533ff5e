/**
 * The NATS peer of depot for large archives: what an operator would write
 * without it — `@nats-io/obj`'s `put` of `fs.createReadStream(file)` into an
 * object store bucket, with the chunk size given (depot's default, as the S3
 * peer gets depot's part size) and the client's native SHA-256, which its
 * documentation recommends on Node. The store's own digest only: no second
 * hash, no manifest, no write-once condition, no check of what was stored.
 *
 * Started once per measurement (like the depot worker, so start-up is not
 * timed); connects and creates (or opens) its bucket before it says it is
 * ready. Stores one file per `{ file, name }` message on its IPC channel and
 * answers `{ ok: true }` or `{ ok: false, error }`.
 *
 *   node --import tsx bench/nats-obj-uploader.ts SERVER BUCKET CHUNK_BYTES
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { Objm, setSha256Backend } from '@nats-io/obj';
import { connect } from '../src/storage/drivers/nats/client';

export interface NatsUploadRequest {
  file: string;
  name: string;
}

export type NatsUploadReply = { ok: true } | { ok: false; error: string };

async function main(): Promise<void> {
  const [server, bucket, chunkBytes] = process.argv.slice(2);
  if (!server || !bucket || !chunkBytes || !process.send) {
    throw new Error('usage: nats-obj-uploader.ts SERVER BUCKET CHUNK_BYTES (with an IPC channel)');
  }
  setSha256Backend('native');
  const nc = await connect({ servers: server, name: 'bench:obj' });
  const store = await new Objm(nc).create(bucket);
  const reply = (message: NatsUploadReply) => process.send?.(message);
  process.on('message', (request: NatsUploadRequest) => {
    const body = Readable.toWeb(createReadStream(request.file)) as ReadableStream<Uint8Array>;
    store.put({ name: request.name, options: { max_chunk_size: Number(chunkBytes) } }, body).then(
      () => reply({ ok: true }),
      (error: Error) => reply({ ok: false, error: error.message }),
    );
  });
  // The benchmark holds the other end of the channel: when it goes away, so does this process.
  process.once('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => process.exit(0));
  process.stdout.write('nats obj uploader ready\n');
}

main().catch((error: Error) => {
  process.stderr.write(`nats obj uploader: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
