import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * `Authorization: Bearer <token>` against config `http.tokens`. Tokens are
 * compared as SHA-256 digests in constant time, so neither their content nor
 * their length leaks through timing. No tokens configured: nobody is let in.
 */
export class BearerAuth {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(digest);
  }

  allows(request: IncomingMessage): boolean {
    const match = /^Bearer ([^\s]+)$/i.exec(request.headers.authorization ?? '');
    if (!match) return false;
    const offered = digest(match[1]);
    let allowed = false;
    for (const known of this.digests) allowed = timingSafeEqual(known, offered) || allowed;
    return allowed;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
