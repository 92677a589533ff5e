import type { IncomingMessage } from 'node:http';
import type { Guard } from './router';
import { SecretSet } from './secret-set';

/** HTTP basic auth against one user and password (config `http.auth`, the dashboard's). */
export class BasicAuth implements Guard {
  readonly challenge = 'Basic realm="depot", charset="UTF-8"';
  readonly refusal = 'the dashboard needs http.auth credentials';
  private readonly login: SecretSet;

  constructor(auth: { user: string; password: string }) {
    this.login = new SecretSet([`${auth.user}:${auth.password}`]);
  }

  allows(request: IncomingMessage): boolean {
    const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(request.headers.authorization ?? '');
    return match !== null && this.login.has(Buffer.from(match[1], 'base64').toString('utf8'));
  }
}
