import type { IncomingMessage } from 'node:http';
import type { Guard } from './router';
import { SecretSet } from './secret-set';

/** `Authorization: Bearer <token>` against config `http.tokens`; no tokens configured: nobody is let in. */
export class BearerAuth implements Guard {
  readonly challenge = 'Bearer';
  readonly refusal = 'a valid bearer token (config http.tokens) is required';
  private readonly tokens: SecretSet;

  constructor(tokens: readonly string[]) {
    this.tokens = new SecretSet(tokens);
  }

  allows(request: IncomingMessage): boolean {
    return this.tokenName(request) !== undefined;
  }

  /**
   * The name of the request's token, for the audit trail's actor `http:<name>`
   * (CONTRACT §8, §9): tokens have no names yet, so a token is `token-<index>`,
   * its place in `http.tokens` (then `http.tokensFile`'s lines).
   */
  tokenName(request: IncomingMessage): string | undefined {
    const match = /^Bearer ([^\s]+)$/i.exec(request.headers.authorization ?? '');
    const index = match === null ? -1 : this.tokens.indexOf(match[1]);
    return index < 0 ? undefined : `token-${index}`;
  }
}
