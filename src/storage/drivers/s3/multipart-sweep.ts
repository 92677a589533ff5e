import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { parseArchiveKey } from '../../../contract';
import { isNotFound } from './errors';

/**
 * Multipart uploads older than this are leftovers of a crashed or killed worker.
 * Younger ones may belong to a live worker (a very large archive over a slow
 * link takes hours), so they are left alone.
 */
export const STALE_UPLOAD_MS = 24 * 60 * 60 * 1000;

/**
 * Aborts stale multipart uploads under `prefix` whose key is one of depot's
 * archive keys (a bucket shared with other software keeps its own uploads).
 * Returns how many were aborted.
 */
export async function abortStaleUploads(
  client: S3Client,
  options: { bucket: string; prefix: string; olderThanMs?: number; now?: Date; signal?: AbortSignal },
): Promise<number> {
  const cutoff = (options.now ?? new Date()).getTime() - (options.olderThanMs ?? STALE_UPLOAD_MS);
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  let aborted = 0;
  do {
    const page = await client.send(
      new ListMultipartUploadsCommand({ Bucket: options.bucket, Prefix: options.prefix || undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      { abortSignal: options.signal },
    );
    for (const upload of page.Uploads ?? []) {
      if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() > cutoff) continue;
      if (!parseArchiveKey(upload.Key.slice(options.prefix.length)).ok) continue;
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket: options.bucket, Key: upload.Key, UploadId: upload.UploadId }), {
          abortSignal: options.signal,
        });
        aborted += 1;
      } catch (error) {
        if (!isNotFound(error)) throw error; // another worker swept it first
      }
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (keyMarker);
  return aborted;
}
