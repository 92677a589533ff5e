import { createHash, Hash } from 'node:crypto';
import { CompletedPart, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { DepotError } from '../../../contract';
import { BodyChecksum, withSha256 } from './body-checksums';
import type { PartBuffers } from './part-buffers';
import { MAX_PARTS } from './part-size';

const MiB = 1024 * 1024;

export interface PartsPlan {
  client: S3Client;
  bucket: string;
  key: string;
  uploadId: string;
  partSize: number;
  /** Parts in flight at once, and part buffers in use: the one being filled waits for a free one. */
  queueSize: number;
  checksum: BodyChecksum;
  buffers: PartBuffers;
  /** Called once, on the first failure (a part's, after the SDK's retries, or the source's): the caller stops the source at once. */
  onFailure(error: unknown): void;
}

/** One part being filled: its bytes, copied once from the source's chunks, and their digests, taken as they come. */
class Part {
  length = 0;
  private readonly sha256 = createHash('sha256');
  private readonly md5?: Hash;

  constructor(
    readonly number: number,
    readonly buffer: Buffer,
    checksum: BodyChecksum,
  ) {
    if (checksum === 'md5') this.md5 = createHash('md5');
  }

  get full(): boolean {
    return this.length === this.buffer.length;
  }

  /** Copies what fits of `chunk` from `offset`; returns how many bytes it took. */
  fill(chunk: Buffer, offset: number): number {
    const taken = Math.min(chunk.length - offset, this.buffer.length - this.length);
    const slice = offset === 0 && taken === chunk.length ? chunk : chunk.subarray(offset, offset + taken);
    slice.copy(this.buffer, this.length);
    this.sha256.update(slice);
    this.md5?.update(slice);
    this.length += taken;
    return taken;
  }

  /** The request's body and its checksum fields; the sha256 also signs it (no second pass). */
  request(checksum: BodyChecksum): { Body: Buffer; ContentLength: number; ChecksumSHA256?: string; ContentMD5?: string } {
    const sha256 = this.sha256.digest();
    const body = withSha256(this.buffer.subarray(0, this.length), sha256);
    return {
      Body: body,
      ContentLength: this.length,
      ...(checksum === 'sha256' ? { ChecksumSHA256: sha256.toString('base64') } : {}),
      ...(this.md5 ? { ContentMD5: this.md5.digest('base64') } : {}),
    };
  }
}

/**
 * Uploads `chunks` as the parts of a multipart upload that is already created,
 * in at most `queueSize` buffers of `buffers` at once — parts in flight and the
 * one being filled — each going back once its request is answered. A part is
 * sent as soon as it is full, so while the store is the bottleneck `queueSize`
 * parts are in flight nearly all the time, and the memory is queueSize × partSize. Resolves with the
 * parts for CompleteMultipartUpload when the source ended cleanly and every
 * part is stored; rejects on the first failure, of the source or of a part
 * (after the SDK's own retries), once no part request is running any more — so
 * an abort of the upload that follows leaves no part behind. Completing is
 * the caller's decision.
 */
export async function uploadParts(plan: PartsPlan, chunks: AsyncIterable<Buffer>): Promise<CompletedPart[]> {
  const done: CompletedPart[] = [];
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;

  const fail = (error: unknown) => {
    if (failure) return;
    failure = { error };
    plan.onFailure(error);
  };
  const send = (part: Part) => {
    const task = (async () => {
      try {
        // Not cut short on a failure or abort: a part the store is still receiving could land after the
        // upload is aborted and stay behind, so the abort waits for every part request to be answered.
        const response = await plan.client.send(
          new UploadPartCommand({ Bucket: plan.bucket, Key: plan.key, UploadId: plan.uploadId, PartNumber: part.number, ...part.request(plan.checksum) }),
        );
        if (!response.ETag) throw new DepotError('unavailable', `part ${part.number} of ${plan.key} was answered without an ETag`);
        done.push({
          PartNumber: part.number,
          ETag: response.ETag,
          // A store that verified the part's checksum returns it, and Complete must then list it.
          ...(response.ChecksumSHA256 ? { ChecksumSHA256: response.ChecksumSHA256 } : {}),
        });
        // Answered: no request holds the buffer any more. A failed part's buffer is not reused.
        plan.buffers.give(part.buffer);
      } catch (error) {
        fail(error);
      }
    })();
    running.add(task);
    void task.then(() => running.delete(task));
  };
  const settle = async () => {
    while (running.size > 0) await Promise.all(running);
  };

  let part = new Part(1, plan.buffers.take(plan.partSize), plan.checksum);
  try {
    for await (const chunk of chunks) {
      for (let offset = 0; offset < chunk.length;) {
        if (part.number > MAX_PARTS) {
          throw new DepotError(
            'no_space',
            `${plan.key} needs more than ${MAX_PARTS} parts of ${plan.partSize / MiB} MiB: declare its size, or raise partSizeMiB`,
          );
        }
        offset += part.fill(chunk, offset);
        if (!part.full) continue;
        send(part);
        // The next part's buffer is taken once one of the queueSize is free again.
        while (running.size >= plan.queueSize && !failure) await Promise.race(running);
        if (failure) throw failure.error;
        part = new Part(part.number + 1, plan.buffers.take(plan.partSize), plan.checksum);
      }
      if (failure) throw failure.error;
    }
    // The source ended cleanly: the rest goes as the last part — none when the size is a multiple of the
    // part size, but an empty first one when the source had no bytes after all (Complete needs a part).
    if (part.length > 0 || part.number === 1) send(part);
    else plan.buffers.give(part.buffer);
    await settle();
    if (failure) throw failure.error;
    return done.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  } catch (error) {
    fail(error);
    await settle();
    throw failure?.error ?? error;
  }
}
