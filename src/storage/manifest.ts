import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DepotError, Manifest, MANIFEST_SUFFIX, MAX_METADATA_LIST, MAX_NAME_BYTES, Metadata } from '../contract';

/** The manifest as stored beside an archive; read back strictly, since a bad one must not pass for a good one. */
const manifestSchema = z.object({
  name: z.string(),
  key: z.string(),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  storedAt: z.string(),
  taskId: z.string(),
  // Values are strings, or lists of strings (CONTRACT §8); manifests written before lists existed hold strings only.
  metadata: z.record(z.string(), z.union([z.string(), z.array(z.string()).max(MAX_METADATA_LIST)])),
  retainUntil: z.string().optional(),
  deleteAfter: z.string().optional(),
});

/**
 * The sidecar's file name: `<name>.depot.json`, or, when that would pass the
 * 255-byte file-name limit of common filesystems, `.<hash of name>.depot.json`.
 * The contract keeps archive names out of this ending (MANIFEST_SUFFIX), so
 * no archive can be taken for a sidecar.
 */
export function sidecarName(name: string): string {
  if (Buffer.byteLength(name, 'utf8') + MANIFEST_SUFFIX.length <= MAX_NAME_BYTES) return name + MANIFEST_SUFFIX;
  return `.${createHash('sha256').update(name).digest('hex').slice(0, 32)}${MANIFEST_SUFFIX}`;
}

/**
 * The first field in which a manifest found at a key differs from the one a
 * store would write there (storedAt aside: a retry stores later), or null when
 * they describe the same archive. A store adopts a manifest it did not write
 * only when this is null: the same bytes under another owner, metadata or
 * retention are not the same archive.
 */
export function manifestDifference(found: Manifest, wanted: Manifest): keyof Manifest | null {
  const fields: (keyof Manifest)[] = ['key', 'name', 'taskId', 'size', 'sha256', 'retainUntil', 'deleteAfter'];
  for (const field of fields) if (found[field] !== wanted[field]) return field;
  return sameMetadata(found.metadata, wanted.metadata) ? null : 'metadata';
}

/** The same names with the same values; a list equals only the same list, in the same order (a string is not a list of one). */
export function sameMetadata(a: Metadata, b: Metadata): boolean {
  const order = ([x]: [string, unknown], [y]: [string, unknown]) => (x < y ? -1 : x > y ? 1 : 0);
  const left = Object.entries(a).sort(order);
  const right = Object.entries(b).sort(order);
  return left.length === right.length && left.every(([k, v], i) => right[i][0] === k && sameValue(v, right[i][1]));
}

function sameValue(a: string | string[], b: string | string[]): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * An object at depot's key without a manifest: depot never writes an archive
 * before its manifest, so another writer put it there. `conflict`, as the key
 * holds other content; depot never replaces it, and never deletes it.
 */
export function foreignObject(driver: string, key: string): DepotError {
  return new DepotError('conflict', `${driver}:${key} holds an object without a manifest: not an archive depot wrote`);
}

export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
}

/** Parses a stored manifest and checks it belongs to `key`; anything else is `integrity`. */
export function parseManifest(bytes: Buffer | string, key: string): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString());
  } catch {
    throw new DepotError('integrity', `the manifest of ${key} is not JSON`);
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) throw new DepotError('integrity', `the manifest of ${key} is malformed`);
  if (result.data.key !== key) throw new DepotError('integrity', `the manifest beside ${key} names ${result.data.key}`);
  return result.data;
}
