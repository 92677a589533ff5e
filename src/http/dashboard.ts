import type { IncomingMessage, ServerResponse } from 'node:http';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import { SecretSet } from './secret-set';

export const DASHBOARD_PATH = '/queues';

/**
 * bull-board on the task queue and the webhook queue, read-only, behind HTTP
 * basic auth (config `http.auth`; without it the dashboard is off).
 */
export class Dashboard {
  private readonly handle?: (request: IncomingMessage, response: ServerResponse) => void;
  private readonly login?: SecretSet;

  constructor(queues: Queue[], auth: { user: string; password: string } | undefined) {
    if (!auth) return;
    this.login = new SecretSet([`${auth.user}:${auth.password}`]);
    const adapter = new ExpressAdapter();
    adapter.setBasePath(DASHBOARD_PATH);
    // Read-only: adding or editing jobs there would bypass the task API's checks, and an edited
    // webhook delivery would go out with a valid signature.
    createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true })), serverAdapter: adapter });
    this.handle = adapter.getRouter() as (request: IncomingMessage, response: ServerResponse) => void;
  }

  serve(request: IncomingMessage, response: ServerResponse, reply: (status: number, body: unknown) => void): void {
    if (!this.handle || !this.login) return reply(404, { ok: false, error: { code: 'not_found', message: 'the dashboard is off: configure http.auth (user, password)' } });
    if (!this.allows(request)) {
      response.setHeader('www-authenticate', 'Basic realm="depot", charset="UTF-8"');
      return reply(401, { ok: false, error: { code: 'auth', message: 'the dashboard needs http.auth credentials' } });
    }
    // Mounted as express would mount it: the board's routes are relative to its base path.
    request.url = (request.url ?? '/').slice(DASHBOARD_PATH.length) || '/';
    this.handle(request, response);
  }

  private allows(request: IncomingMessage): boolean {
    const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(request.headers.authorization ?? '');
    return match !== null && this.login !== undefined && this.login.has(Buffer.from(match[1], 'base64').toString('utf8'));
  }
}
