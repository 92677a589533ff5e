import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Consumer, DeliverPolicy } from '@nats-io/jetstream';
import { DepotError } from '../../../contract';
import { ignoreFailure } from '../../../support/ignore';
import type { Session } from './connection';
import { isTransient, toDepotError } from './errors';
import { chunkSubject, metaSubject, metaSubjects, ObjectInfo, parseObjectInfo, sha256OfDigest, StoredInfo } from './layout';
import { publishRetried } from './publish';

/** Bytes of chunks asked for at once when reading; the reader holds at most this much ahead of its consumer. */
const READ_AHEAD_BYTES = 4 * 1024 * 1024;
/** Descriptions asked for at once when listing. */
const LIST_BATCH = 256;

/** The description (ObjectInfo) under `name`, with its revision; null when nothing was ever put there or it was purged. */
export async function readInfo(session: Session, bucket: string, name: string): Promise<StoredInfo | null> {
  const message = await session.jsm.streams.getMessage(session.stream, { last_by_subj: metaSubject(bucket, name) });
  if (!message) return null;
  return { info: parseObjectInfo(message.data, `${bucket}:${name}`), revision: message.seq };
}

/** Removes the messages on a subject (an object's description, or its chunks). */
export async function purgeSubject(session: Session, subject: string): Promise<void> {
  await session.jsm.streams.purge(session.stream, { filter: subject });
}

/** What an upload of chunks put on its chunk subject. */
export interface Uploaded {
  chunks: number;
  size: number;
  /** sha256 (hex) of the bytes as they were published, chunk after chunk. */
  sha256: string;
}

/**
 * Streams `body` to `$O.<bucket>.C.<uploadId>` in messages of `chunkBytes`
 * (the last one shorter), one acknowledged publish at a time: at most one
 * chunk and the stream's own buffers are in memory. The chunks are invisible
 * until a description naming `uploadId` is published; nothing here publishes
 * one. The sha256 is of what was published, for the caller to hold against
 * the shared layer's hash of what was read.
 */
export async function uploadChunks(
  session: Session,
  bucket: string,
  uploadId: string,
  body: AsyncIterable<Buffer>,
  budgetMs: number,
  signal?: AbortSignal,
): Promise<Uploaded> {
  const subject = chunkSubject(bucket, uploadId);
  const hash = createHash('sha256');
  const size = session.chunkBytes;
  let held: Buffer[] = [];
  let heldBytes = 0;
  let chunks = 0;
  let total = 0;
  const publish = async (payload: Buffer) => {
    hash.update(payload);
    await publishRetried(session, subject, payload, { msgID: `${uploadId}.${chunks}` }, budgetMs, signal);
    chunks += 1;
    total += payload.length;
  };
  for await (const data of body) {
    held.push(data);
    heldBytes += data.length;
    if (heldBytes < size) continue;
    let all = Buffer.concat(held, heldBytes);
    while (all.length >= size) {
      await publish(all.subarray(0, size));
      all = all.subarray(size);
    }
    held = all.length > 0 ? [all] : [];
    heldBytes = all.length;
  }
  if (heldBytes > 0) await publish(Buffer.concat(held, heldBytes));
  return { chunks, size: total, sha256: hash.digest('hex') };
}

/** The number of messages on one chunk subject, as the stream counts them. */
export async function chunksStored(session: Session, subject: string): Promise<number> {
  const info = await session.jsm.streams.info(session.stream, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

/**
 * The chunks of an object as a stream, read through an ordered consumer on
 * its chunk subject in batches of about READ_AHEAD_BYTES, each batch asked
 * for only when the reader wants more (backpressure), so memory stays bounded
 * whatever the object's size. A consumer lost on the way (a reconnect, a
 * server gone) is made again from the next sequence; a read that makes no
 * progress for `timeoutMs` fails `unavailable`. At the end, the count, size
 * and the object store's own digest are checked: a mismatch errors the stream
 * with `integrity` (the shared layer checks depot's sha256 besides).
 */
export function readChunks(session: Session, bucket: string, info: ObjectInfo, timeoutMs: number, what: string): Readable {
  return Readable.from(chunksOf(session, bucket, info, timeoutMs, what), { objectMode: false, highWaterMark: 1 });
}

async function* chunksOf(session: Session, bucket: string, info: ObjectInfo, timeoutMs: number, what: string): AsyncGenerator<Buffer> {
  const expected = sha256OfDigest(info.digest);
  if (!expected) throw new DepotError('integrity', `${what}: the object has no SHA-256 digest (${info.digest})`);
  const subject = chunkSubject(bucket, info.nuid);
  const hash = createHash('sha256');
  const chunkSize = Math.max(1, info.options?.max_chunk_size ?? session.chunkBytes);
  const batch = Math.max(1, Math.floor(READ_AHEAD_BYTES / chunkSize));
  let received = 0;
  let bytes = 0;
  let nextSeq = 1;
  let lastProgress = Date.now();
  let consumer: Consumer | undefined;
  let attempt = 0;
  try {
    while (received < info.chunks) {
      try {
        consumer ??= await session.js.consumers.get(session.stream, {
          filter_subjects: subject,
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: nextSeq,
        });
        const messages = await consumer.fetch({ max_messages: Math.min(batch, info.chunks - received), expires: Math.min(timeoutMs, 30_000) });
        let got = 0;
        for await (const message of messages) {
          got += 1;
          received += 1;
          nextSeq = message.seq + 1;
          const data = Buffer.from(message.data);
          bytes += data.length;
          hash.update(data);
          lastProgress = Date.now();
          attempt = 0;
          yield data;
          if (received >= info.chunks) break;
        }
        if (got === 0 && Date.now() - lastProgress > timeoutMs) {
          throw new DepotError('unavailable', `${what}: chunk ${received + 1} of ${info.chunks} did not arrive within ${timeoutMs} ms`);
        }
      } catch (error) {
        if (error instanceof DepotError || !isTransient(error) || Date.now() - lastProgress > timeoutMs) throw toDepotError(error, what);
        // Made again from where it stopped: an ordered consumer lost with a connection or a server.
        const lost = consumer;
        consumer = undefined;
        if (lost) void ignoreFailure(lost.delete(), 'a consumer lost with its connection expires on the server by itself');
        attempt += 1;
        await sleep(Math.min(1000, 50 * 2 ** attempt));
      }
    }
  } finally {
    if (consumer) void ignoreFailure(consumer.delete(), 'an ordered consumer left behind expires on the server by itself (inactive_threshold)');
  }
  if (bytes !== info.size) throw new DepotError('integrity', `${what}: read ${bytes} bytes in ${received} chunks, the object store says ${info.size}`);
  const actual = hash.digest('hex');
  if (actual !== expected) {
    throw new DepotError('integrity', `${what}: the bytes read do not match the object store's digest (sha256 ${actual}, expected ${expected})`);
  }
}

/**
 * Every description in the bucket (the last message on each meta subject),
 * through an ordered consumer that delivers the last message per subject,
 * in batches. Deleted ones (other clients leave a `deleted` marker) included:
 * callers decide.
 */
export async function* allInfos(session: Session, bucket: string, timeoutMs: number, what: string): AsyncGenerator<StoredInfo> {
  const subjects = metaSubjects(bucket);
  // Nothing at all: answered at once, instead of waiting out a fetch that can bring nothing.
  if (!(await session.jsm.streams.getMessage(session.stream, { last_by_subj: subjects }))) return;
  const consumer = await session.js.consumers.get(session.stream, { filter_subjects: subjects, deliver_policy: DeliverPolicy.LastPerSubject });
  try {
    for (;;) {
      const messages = await consumer.fetch({ max_messages: LIST_BATCH, expires: Math.min(timeoutMs, 30_000) });
      let got = 0;
      let done = false;
      for await (const message of messages) {
        got += 1;
        let info: ObjectInfo | undefined;
        try {
          info = parseObjectInfo(message.data, `${bucket}:${message.subject}`);
        } catch {
          info = undefined; // not an object's description: nobody's archive
        }
        if (info) yield { info, revision: message.seq };
        if (message.info.pending === 0) {
          done = true;
          break;
        }
      }
      if (done) return;
      if (got === 0) throw new DepotError('unavailable', `${what}: the listing stopped before its end (no answer within ${Math.min(timeoutMs, 30_000)} ms)`);
    }
  } finally {
    void ignoreFailure(consumer.delete(), 'an ordered consumer left behind expires on the server by itself (inactive_threshold)');
  }
}
