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
    return this.indexOf(offered) >= 0;
  }

  /** The position of the offered secret in the list, or -1; every one is compared, whichever matches. */
  indexOf(offered: string): number {
    const candidate = digest(offered);
    let found = -1;
    this.digests.forEach((known, i) => {
      if (timingSafeEqual(known, candidate) && found < 0) found = i;
    });
    return found;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
