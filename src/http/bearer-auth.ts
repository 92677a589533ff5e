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
    const match = /^Bearer ([^\s]+)$/i.exec(request.headers.authorization ?? '');
    return match !== null && this.tokens.has(match[1]);
  }
}
