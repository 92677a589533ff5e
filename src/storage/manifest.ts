import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DepotError, Manifest, MAX_NAME_BYTES } from '../contract';

/** The manifest as stored beside an archive; read back strictly, since a bad one must not pass for a good one. */
const manifestSchema = z.object({
  name: z.string(),
  key: z.string(),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  storedAt: z.string(),
  taskId: z.string(),
  metadata: z.record(z.string(), z.string()),
  retainUntil: z.string().optional(),
  deleteAfter: z.string().optional(),
});

export const SIDECAR_SUFFIX = '.depot.json';

/**
 * The sidecar's file name: `<name>.depot.json`, or, when that would pass the
 * 255-byte file-name limit of common filesystems, `.<hash of name>.depot.json`.
 */
export function sidecarName(name: string): string {
  if (Buffer.byteLength(name, 'utf8') + SIDECAR_SUFFIX.length <= MAX_NAME_BYTES) return name + SIDECAR_SUFFIX;
  return `.${createHash('sha256').update(name).digest('hex').slice(0, 32)}${SIDECAR_SUFFIX}`;
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
