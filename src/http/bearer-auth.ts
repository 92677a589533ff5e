import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TokenOperation } from '../config/schema';
import { sendError } from './reply';
import type { Guard } from './router';
import { SecretSet } from './secret-set';
import type { HttpToken } from './token-scope';

/** `Authorization: Bearer <token>` against config `http.tokens`; no tokens configured: nobody is let in. */
export class BearerAuth implements Guard {
  readonly challenge = 'Bearer';
  readonly refusal = 'a valid bearer token (config http.tokens) is required';
  private readonly secrets: SecretSet;

  constructor(private readonly tokens: readonly HttpToken[]) {
    this.secrets = new SecretSet(tokens.map((t) => t.secret));
  }

  allows(request: IncomingMessage): boolean {
    return this.token(request) !== undefined;
  }

  /**
   * The request's token (CONTRACT §9): its name is the audit trail's actor
   * `http:<name>` (CONTRACT §8), its scope limits what the request may do.
   * An unnamed token is `token-<index>`, its place in `http.tokens` (then
   * `http.tokensFile`'s lines).
   */
  token(request: IncomingMessage): HttpToken | undefined {
    const match = /^Bearer ([^\s]+)$/i.exec(request.headers.authorization ?? '');
    const index = match === null ? -1 : this.secrets.indexOf(match[1]);
    return index < 0 ? undefined : this.tokens[index];
  }

  tokenName(request: IncomingMessage): string | undefined {
    return this.token(request)?.name;
  }
}

/** Answers 403 `auth` (CONTRACT §9: a valid token asking for what its scope does not hold). */
export function refuseScope(response: ServerResponse, message: string, field?: string): void {
  sendError(response, 403, { code: 'auth', message, ...(field ? { field } : {}) });
}

/** The scope's operation check, answered 403 when it fails; true when the request may go on. */
export function mayDo(token: HttpToken | undefined, operation: TokenOperation, response: ServerResponse): boolean {
  if (!token || token.scope.allowsOperation(operation)) return true;
  refuseScope(response, `the token '${token.name}' may not ${operation} (its scope.operations)`);
  return false;
}
