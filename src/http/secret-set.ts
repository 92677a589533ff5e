import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Secrets an offered credential is compared with: as SHA-256 digests, in
 * constant time and against every one, so neither content nor length leaks
 * through timing. An empty set lets nothing in.
 */
export class SecretSet {
  private readonly digests: Buffer[];

  constructor(secrets: readonly string[]) {
    this.digests = secrets.map(digest);
  }

  has(offered: string): boolean {
    const candidate = digest(offered);
    let found = false;
    for (const known of this.digests) found = timingSafeEqual(known, candidate) || found;
    return found;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
