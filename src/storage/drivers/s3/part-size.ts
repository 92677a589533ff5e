import { MAX_PART_MIB } from './types';

const MiB = 1024 * 1024;
/** S3's ceiling on the number of parts of one multipart upload. */
export const MAX_PARTS = 10_000;

/**
 * The part size for one store: the configured one, grown (in whole MiB) when the
 * archive's size is known and would otherwise need more than 10,000 parts.
 * Without a known size the configured part size caps an archive at
 * 10,000 × partSize (156 GiB at the default 16 MiB).
 */
export function partSizeFor(partSizeMiB: number, size?: number): number {
  const configured = partSizeMiB * MiB;
  if (size === undefined || size <= configured * MAX_PARTS) return configured;
  const needed = Math.ceil(size / MAX_PARTS / MiB) * MiB;
  return Math.min(needed, MAX_PART_MIB * MiB);
}
