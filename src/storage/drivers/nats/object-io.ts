import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Consumer, DeliverPolicy, StoredMsg } from '@nats-io/jetstream';
import { DepotError } from '../../../contract';
import { ignoreFailure } from '../../../support/ignore';
import type { Session } from './connection';
import { isTransient, toDepotError } from './errors';
import { chunkSubject, metaSubject, metaSubjects, ObjectInfo, parseObjectInfo, sha256OfDigest, StoredInfo } from './layout';
import { publishRetried } from './publish';

/** Descriptions asked for at once when listing. */
const LIST_BATCH = 256;

/** The description (ObjectInfo) under `name`, with its revision; null when nothing was ever put there or it was purged. */
export async function readInfo(session: Session, bucket: string, name: string): Promise<StoredInfo | null> {
  const message = await session.jsm.streams.getMessage(session.stream, { last_by_subj: metaSubject(bucket, name) });
  if (!message) return null;
  return { info: parseObjectInfo(message.data, `${bucket}:${name}`), revision: message.seq };
}

/**
 * The first message on a meta subject at or after sequence `from` that is not
 * a `deleted` marker (read from the stream's leader), with its bytes and its
 * description when it is one; null when there is none.
 */
export async function firstLiveDescription(
  session: Session,
  subject: string,
  from: number,
): Promise<{ revision: number; data: Uint8Array; info?: ObjectInfo } | null> {
  for (let seq = from; ;) {
    const message = await session.jsm.streams.getMessage(session.stream, { seq, next_by_subj: subject } as { seq: number });
    if (!message) return null;
    let info: ObjectInfo | undefined;
    try {
      info = parseObjectInfo(message.data, subject);
    } catch {
      info = undefined; // not a description: in the way all the same
    }
    if (!info?.deleted) return { revision: message.seq, data: message.data, info };
    seq = message.seq + 1;
  }
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
    // A read that holds whole chunks (the usual 1 MiB read) is cut as it is, not copied first.
    let all = held.length === 1 ? held[0] : Buffer.concat(held, heldBytes);
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
 * The chunks of an object as a stream: one message get per chunk (the next
 * message on the chunk subject after the last one read), asked for only when
 * the reader wants more, with the following chunk already on its way — so
 * memory stays at about two chunks whatever the object's size. Gets, not a
 * consumer: on a cluster that lost a node, an ephemeral consumer may be
 * placed on the dead node and never answer, while a get is answered by any
 * replica (direct gets, where the stream allows them) or the stream's
 * leader. A replica that has not caught up says "no message": the leader is
 * then asked. A get that fails is tried again until the read has made no
 * progress for `timeoutMs` (`unavailable`). At the end, the count, size and
 * the object store's own digest are checked: a mismatch errors the stream
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
  let bytes = 0;
  // The next chunk is asked for before this one is handed on; its failure is awaited (and reported) in turn.
  const ahead = (after: number) => {
    const get = chunkAfter(session, subject, after, timeoutMs, what);
    void ignoreFailure(get, 'awaited in its turn, which reports the failure; handled now so that it is never unhandled meanwhile');
    return get;
  };
  // A read given up on (the reader went away) leaves its last get to end by itself: nothing to release.
  let next: Promise<StoredMsg> | undefined = info.chunks > 0 ? ahead(0) : undefined;
  for (let received = 0; received < info.chunks; received++) {
    const message: StoredMsg = await (next as Promise<StoredMsg>);
    next = received + 1 < info.chunks ? ahead(message.seq) : undefined;
    const data = Buffer.from(message.data);
    bytes += data.length;
    hash.update(data);
    yield data;
  }
  if (bytes !== info.size) throw new DepotError('integrity', `${what}: read ${bytes} bytes in ${info.chunks} chunks, the object store says ${info.size}`);
  const actual = hash.digest('hex');
  if (actual !== expected) {
    throw new DepotError('integrity', `${what}: the bytes read do not match the object store's digest (sha256 ${actual}, expected ${expected})`);
  }
}

/** The first message on `subject` after sequence `after`; tried again while transient, for up to `timeoutMs` in all. */
async function chunkAfter(session: Session, subject: string, after: number, timeoutMs: number, what: string): Promise<StoredMsg> {
  const until = Date.now() + timeoutMs;
  const query = { seq: after + 1, next_by_subj: subject };
  for (let attempt = 1; ; attempt++) {
    try {
      const direct = session.direct ? await session.jsm.direct.getMessage(session.stream, query) : null;
      // The leader answers for a replica that has not caught up, and for streams without direct gets.
      const message = direct ?? (await session.jsm.streams.getMessage(session.stream, query));
      if (!message) throw new DepotError('integrity', `${what}: a chunk is missing (none after sequence ${after})`);
      return message;
    } catch (error) {
      const pause = Math.min(1000, 50 * 2 ** (attempt - 1));
      if (error instanceof DepotError || !isTransient(error) || Date.now() + pause >= until) throw toDepotError(error, what);
      await sleep(pause);
    }
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
  const consumer = await orderedConsumer(session, subjects, timeoutMs, what);
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

/**
 * An ordered consumer delivering the last message of each subject under
 * `subjects`. Made with a short timeout and made again when it does not
 * answer: on a cluster that lost a node (nats-server 2.9) an ephemeral
 * consumer is placed on one of the stream's peers at random, the dead one
 * included, and the request then waits in vain.
 */
async function orderedConsumer(session: Session, subjects: string, timeoutMs: number, what: string): Promise<Consumer> {
  const until = Date.now() + timeoutMs;
  const js = session.quick.jetstream();
  for (let attempt = 1; ; attempt++) {
    try {
      return await js.consumers.get(session.stream, { filter_subjects: subjects, deliver_policy: DeliverPolicy.LastPerSubject });
    } catch (error) {
      const pause = Math.min(1000, 50 * 2 ** (attempt - 1));
      if (!isTransient(error) || Date.now() + pause >= until) throw toDepotError(error, what);
      await sleep(pause);
    }
  }
}
