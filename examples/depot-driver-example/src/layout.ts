import { createHash } from 'node:crypto';
import path from 'node:path';

/**
 * Where things are below the root: every archive as one flat file named by the
 * sha256 of its key (keys of any length or script fit a file name), its
 * manifest beside it; unfinished writes and probes in `staging/`.
 */
export const ARCHIVES_DIR = 'archives';
export const STAGING_DIR = 'staging';

export interface KeyFiles {
  archive: string;
  manifest: string;
}

export function keyFiles(root: string, key: string): KeyFiles {
  const id = createHash('sha256').update(key).digest('hex');
  return { archive: path.join(root, ARCHIVES_DIR, `${id}.bin`), manifest: path.join(root, ARCHIVES_DIR, `${id}.json`) };
}
