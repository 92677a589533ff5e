import type { IncomingMessage, ServerResponse } from 'node:http';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Job, Queue } from 'bullmq';
import { BasicAuth } from './basic-auth';
import { shownJobJson } from './job-view';
import { sendError } from './reply';
import type { Exchange } from './router';

export const DASHBOARD_PATH = '/queues';

/**
 * What the operator's browser may load: the board's own scripts, styles and
 * images, nothing from another host (bull-board's page asks Google for its
 * fonts; without them the board falls back to the system's). Inline styles
 * are the board's own; its configuration is an inline JSON block, not a script.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The board reads every job it shows through its queue adapter (`getJob`,
 * `getJobs`; bull-board's formatJob then serves `job.toJSON()` to the
 * browser): jobs handed out here show no credentials, no inline bytes and no
 * stack frames (job-view.ts). The rest of a job is the job itself.
 */
class ShownJobsAdapter extends BullMQAdapter {
  override async getJob(id: string): Promise<Job | undefined> {
    const job = await super.getJob(id);
    return job ? shown(job) : job;
  }

  override async getJobs(...args: Parameters<BullMQAdapter['getJobs']>): Promise<Job[]> {
    return (await super.getJobs(...args)).map(shown);
  }
}

/** The job, with `toJSON` giving what may be shown; everything else (getState, …) is the job's own. */
function shown(job: Job): Job {
  const view = Object.create(job) as Job;
  Object.defineProperty(view, 'toJSON', { value: () => shownJobJson(job) });
  return view;
}

type ViewEngine = (file: string, options: object, callback: (error: Error | null, html?: string) => void) => void;

/** Links and scripts to another host (`https://…`, `//…`) taken out of a page. */
function withoutOutsideResources(html: string): string {
  return html
    .replace(/<link\b[^>]*\bhref="(?:https?:)?\/\/[^"]*"[^>]*>\s*/gi, '')
    .replace(/<script\b[^>]*\bsrc="(?:https?:)?\/\/[^"]*"[^>]*>\s*<\/script>\s*/gi, '');
}

/**
 * bull-board on the task queue and the webhook queue, read-only, behind HTTP
 * basic auth (config `http.auth`; without it the dashboard is off). Its route
 * is `* /queues/*` with `auth` as the route's credentials.
 */
export class Dashboard {
  private readonly handle?: (request: IncomingMessage, response: ServerResponse) => void;
  /** The credentials the dashboard's route asks for; none when it is off (every request is then 404). */
  readonly auth?: BasicAuth;

  constructor(queues: Queue[], auth: { user: string; password: string } | undefined) {
    if (!auth) return;
    this.auth = new BasicAuth(auth);
    const adapter = new ExpressAdapter();
    adapter.setBasePath(DASHBOARD_PATH);
    // Read-only: adding or editing jobs there would bypass the task API's checks, and an edited
    // webhook delivery would go out with a valid signature.
    createBullBoard({ queues: queues.map((q) => new ShownJobsAdapter(q, { readOnlyMode: true })), serverAdapter: adapter });
    const app = adapter.getRouter() as { engines: Record<string, ViewEngine>; engine(ext: string, render: ViewEngine): void } & ((
      request: IncomingMessage,
      response: ServerResponse,
    ) => void);
    // The page is rendered by the engine bull-board registered for its index.ejs; what it renders loses its outside links.
    const render = app.engines['.ejs'];
    app.engine('ejs', (file, options, callback) =>
      render(file, options, (error, html) => callback(error, html === undefined ? html : withoutOutsideResources(html))),
    );
    this.handle = app;
  }

  /** A request the route let in (the credentials of `auth`, when the dashboard is on). */
  serve({ request, response }: Exchange): void {
    if (!this.handle) return sendError(response, 404, { code: 'not_found', message: 'the dashboard is off: configure http.auth (user, password)' });
    response.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
    // Mounted as express would mount it: the board's routes are relative to its base path.
    request.url = (request.url ?? '/').slice(DASHBOARD_PATH.length) || '/';
    this.handle(request, response);
  }
}
