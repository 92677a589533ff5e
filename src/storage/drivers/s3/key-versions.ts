import { HeadObjectCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { isAccessDenied } from './errors';

/** What a PutObject or CompleteMultipartUpload answered about the object it made. */
export interface Written {
  /** Present on versioned buckets (every Object Lock bucket). */
  versionId?: string;
  etag?: string;
}

/** Another version found under a key besides the one depot wrote. */
export interface OtherVersion {
  versionId?: string;
  etag?: string;
  size?: number;
  deleteMarker: boolean;
}

/**
 * How a key looks right after depot wrote to it: the versions there besides
 * depot's own (none: the key is depot's alone), or `replaced` when an
 * unversioned key no longer holds what depot wrote.
 *
 * Stores that ignore If-None-Match (Ceph RGW on versioned buckets, and on
 * CompleteMultipartUpload everywhere) let a second writer put a version on
 * top of the first, or under it in a race; only the version list shows it.
 * `sameBytes` compares by the store's own ETag and size of each version, never
 * by what a writer claims.
 */
export async function versionsBeside(
  client: S3Client,
  target: { bucket: string; key: string },
  written: Written,
  signal?: AbortSignal,
): Promise<{ ours?: OtherVersion; others: OtherVersion[] } | { replaced: true; etag?: string }> {
  if (written.versionId === undefined) {
    // Unversioned: only the ETag tells whether the object is still the one written.
    const head = await client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.key }), { abortSignal: signal });
    if (written.etag !== undefined && head.ETag !== written.etag) return { replaced: true, etag: head.ETag };
    return { others: [] };
  }
  let versions: OtherVersion[];
  try {
    versions = await listVersions(client, target, signal);
  } catch (error) {
    if (!isAccessDenied(error)) throw error;
    // No s3:ListBucketVersions permission: the latest version must at least be depot's.
    const head = await client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.key }), { abortSignal: signal });
    if (head.VersionId === written.versionId) return { others: [] };
    return { others: [{ versionId: head.VersionId, etag: head.ETag, size: head.ContentLength, deleteMarker: false }] };
  }
  return { ours: versions.find((v) => v.versionId === written.versionId), others: versions.filter((v) => v.versionId !== written.versionId) };
}

/** Every version and delete marker of exactly `key` (a prefix listing also returns longer keys). */
async function listVersions(client: S3Client, target: { bucket: string; key: string }, signal?: AbortSignal): Promise<OtherVersion[]> {
  const found: OtherVersion[] = [];
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListObjectVersionsCommand({ Bucket: target.bucket, Prefix: target.key, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker }),
      { abortSignal: signal },
    );
    for (const v of page.Versions ?? []) {
      if (v.Key === target.key) found.push({ versionId: v.VersionId, etag: v.ETag, size: v.Size, deleteMarker: false });
    }
    for (const m of page.DeleteMarkers ?? []) {
      if (m.Key === target.key) found.push({ versionId: m.VersionId, deleteMarker: true });
    }
    // Keys are listed in order: once a page ends past `key`, its versions are all seen.
    if (!page.IsTruncated || page.NextKeyMarker !== target.key) return found;
    keyMarker = page.NextKeyMarker;
    versionIdMarker = page.NextVersionIdMarker;
  }
}

/** Whether every other version holds the same bytes as depot's, by the store's own ETag and size. */
export function sameBytes(ours: OtherVersion | undefined, others: OtherVersion[]): boolean {
  if (!ours?.etag) return false;
  return others.every((o) => !o.deleteMarker && o.etag === ours.etag && o.size === ours.size);
}
