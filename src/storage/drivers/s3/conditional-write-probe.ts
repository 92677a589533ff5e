import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { WriteOnce } from '../../../contract';
import { isNotFound, isPreconditionFailed } from './errors';
import { ignoreFailure } from '../../../support/ignore';

/**
 * Whether the store itself refuses to write over an existing object: a probe
 * object is written, then written again with `If-None-Match: *`, once by
 * PutObject and once by CompleteMultipartUpload. Both must be refused (412)
 * for `enforced`; Ceph RGW 16, for one, ignores the condition on versioned
 * buckets and on every CompleteMultipartUpload. Every version the probe made
 * is deleted again, including the ones a store that ignores the condition
 * adds.
 */
export async function probeConditionalWrites(client: S3Client, bucket: string, key: string, signal: AbortSignal): Promise<WriteOnce> {
  // Buffers, so that the driver's middleware signs them and adds its checksum header.
  const body = (text: string) => Buffer.from(text);
  const made: (string | undefined)[] = [];
  try {
    made.push((await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body('first') }), { abortSignal: signal })).VersionId);
    const putRefused = await refused(async () => {
      const response = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body('second'), IfNoneMatch: '*' }), { abortSignal: signal });
      made.push(response.VersionId);
    });
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    let completed = false;
    let completeRefused = false;
    try {
      const part = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: body('third') }), {
        abortSignal: signal,
      });
      completeRefused = await refused(async () => {
        const response = await client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId,
            IfNoneMatch: '*',
            MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
          }),
          { abortSignal: signal },
        );
        completed = true;
        made.push(response.VersionId);
      });
    } finally {
      if (!completed) {
        await ignoreFailure(
          client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })),
          'an upload left behind is swept after a day (abortStaleUploads) and is invisible meanwhile',
        );
      }
    }
    return putRefused && completeRefused ? 'enforced' : 'best_effort';
  } finally {
    await removeProbe(client, bucket, key, made);
  }
}

/**
 * Deletes what the probe made: each version on a versioned bucket (a delete
 * without a version would only add a delete marker), the one object on an
 * unversioned one.
 */
async function removeProbe(client: S3Client, bucket: string, key: string, made: (string | undefined)[]): Promise<void> {
  if (made.length === 0) return;
  const versions = made.some((v) => v !== undefined) ? made.filter((v) => v !== undefined) : [undefined];
  for (const VersionId of versions) {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId })).catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    });
  }
}

/** true when the write was refused with 412 Precondition Failed; other failures are thrown. */
async function refused(write: () => Promise<void>): Promise<boolean> {
  try {
    await write();
    return false;
  } catch (error) {
    if (isPreconditionFailed(error)) return true;
    throw error;
  }
}
