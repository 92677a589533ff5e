import { Manifest, MANIFEST_SUFFIX } from '../../../contract';

/**
 * Where an archive's manifest lives on S3. The whole manifest is a sidecar
 * object `<key>.depot.json` (user metadata is capped at 2 KB and the producer's
 * `metadata` has no cap); the object itself carries the essentials as user
 * metadata so that it describes itself when copied out of the bucket. S3 metadata
 * values must be ASCII, so the name is percent-encoded UTF-8.
 */
export function sidecarKey(objectKey: string): string {
  return objectKey + MANIFEST_SUFFIX;
}

/** User metadata (without the `x-amz-meta-` the SDK adds) for an archive object. */
export function objectMetadata(known: { taskId: string; name: string; sha256?: string; size?: number }): Record<string, string> {
  return {
    'depot-task-id': known.taskId,
    'depot-name': encodeURIComponent(known.name),
    // Known only when the object is sent in one PUT after its last byte: a multipart upload's metadata is fixed at its start.
    ...(known.sha256 !== undefined ? { 'depot-sha256': known.sha256 } : {}),
    ...(known.size !== undefined ? { 'depot-size': String(known.size) } : {}),
  };
}

/** The essentials back from an object's user metadata (S3 lower-cases the names). */
export function readObjectMetadata(metadata: Record<string, string> | undefined): { taskId?: string; name?: string; sha256?: string; size?: number } {
  const m = metadata ?? {};
  let name: string | undefined;
  try {
    name = m['depot-name'] !== undefined ? decodeURIComponent(m['depot-name']) : undefined;
  } catch {
    name = undefined;
  }
  const size = m['depot-size'] !== undefined && /^\d+$/.test(m['depot-size']) ? Number(m['depot-size']) : undefined;
  return { taskId: m['depot-task-id'], name, sha256: m['depot-sha256'], size };
}

/** Whether the object's own metadata contradicts its manifest (a replaced object or a mixed-up sidecar). */
export function metadataContradicts(manifest: Manifest, metadata: Record<string, string> | undefined): boolean {
  const own = readObjectMetadata(metadata);
  return (
    (own.sha256 !== undefined && own.sha256 !== manifest.sha256) ||
    (own.size !== undefined && own.size !== manifest.size) ||
    (own.taskId !== undefined && own.taskId !== manifest.taskId) ||
    (own.name !== undefined && own.name !== manifest.name)
  );
}
