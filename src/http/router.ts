import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from '../support/logging';
import { redactor } from '../support/redaction';
import { sendError } from './reply';

/** What a route's handler is given. */
export interface Exchange {
  request: IncomingMessage;
  response: ServerResponse;
  /** The request target's path as sent: percent-escapes kept, no query. */
  path: string;
  /** Each `:name` segment of the route, percent-decoded; `*`: the rest of the path below a `/*` route, as sent ('' for none). */
  params: Readonly<Record<string, string>>;
}

/**
 * Answers one request. A handler answers its own errors (with `sendError`);
 * a promise that rejects all the same is answered 503 `unavailable` with its
 * message (what escapes depot's handlers is Redis not answering), a handler
 * that throws at once 500 `internal`. A request never takes the server down.
 */
export type Handler = (exchange: Exchange) => void | Promise<void>;

/** Credentials a route asks for; a request without them is answered 401 with `challenge` as its WWW-Authenticate header. */
export interface Guard {
  allows(request: IncomingMessage): boolean;
  readonly challenge: string;
  /** The message of the 401. */
  readonly refusal: string;
}

/**
 * One entry of a route table:
 * `{ method: 'GET', path: '/v1/tasks/:taskId', auth: bearer, handle: (x) => api.status(x) }`.
 */
export interface Route {
  /** A method, several, or '*' for any. HEAD is not implied by GET. */
  method: string | readonly string[];
  /**
   * Literal segments, compared as sent (`/health`); `:name`, one segment that
   * percent-decodes to a value without '/' (`/v1/tasks/:taskId`); a last `*`,
   * the path before it and everything below (`/queues/*` is `/queues`,
   * `/queues/` and `/queues/…`).
   */
  path: string;
  auth?: Guard;
  handle: Handler;
}

interface CompiledRoute extends Route {
  methods: readonly string[];
  match(path: string): Record<string, string> | undefined;
}

/**
 * The request listener of a route table. For each request, in this order:
 * a target that is not a URL is 400; the first route whose path and method
 * match answers, after its `auth` let the request in (else 401); when no route
 * has the path, 404; when routes have it but not for this method, 401 if one
 * of them asks for credentials the request lacks, else 405 with `Allow`
 * listing their methods.
 */
export function routeRequests(routes: readonly Route[], logger: Logger): RequestListener {
  const table = routes.map(compile);
  return (request, response) => {
    try {
      dispatch(table, request, response, logger);
    } catch (error) {
      // A request must never take the server down.
      logger.warn(`request failed: ${redactor.redact((error as Error).message)}`);
      if (!response.headersSent) sendError(response, 500, { code: 'internal', message: 'the request failed' });
    }
  };
}

function dispatch(table: readonly CompiledRoute[], request: IncomingMessage, response: ServerResponse, logger: Logger): void {
  let path: string;
  try {
    path = new URL(request.url ?? '/', 'http://depot').pathname;
  } catch {
    return sendError(response, 400, { code: 'invalid_task', message: 'not a request target' });
  }
  const onPath: CompiledRoute[] = [];
  for (const route of table) {
    const params = route.match(path);
    if (!params) continue;
    onPath.push(route);
    if (!route.methods.includes('*') && !route.methods.includes(request.method ?? '')) continue;
    if (route.auth && !route.auth.allows(request)) return refuse(response, route.auth);
    const answered = route.handle({ request, response, path, params });
    if (answered)
      answered.catch((error: Error) => {
        logger.warn(`${path} failed: ${redactor.redact(error.message)}`);
        if (!response.headersSent) sendError(response, 503, { code: 'unavailable', message: redactor.redact(error.message) });
      });
    return;
  }
  if (!onPath.length) return sendError(response, 404, { code: 'not_found', message: `no route ${path}` });
  const guard = onPath.find((route) => route.auth && !route.auth.allows(request))?.auth;
  if (guard) return refuse(response, guard);
  const allowed = [...new Set(onPath.flatMap((route) => route.methods))];
  sendError(response, 405, { code: 'invalid_task', message: `${request.method} is not allowed on ${path}` }, { headers: { allow: allowed.join(', ') } });
}

function refuse(response: ServerResponse, guard: Guard): void {
  sendError(response, 401, { code: 'auth', message: guard.refusal }, { headers: { 'www-authenticate': guard.challenge } });
}

const PARAM = /^:([A-Za-z][A-Za-z0-9]*)$/;

function compile(route: Route): CompiledRoute {
  const segments = route.path.split('/');
  const rest = segments.at(-1) === '*';
  const fixed = rest ? segments.slice(0, -1) : segments;
  if (segments[0] !== '' || fixed.some((s) => s === '*' || (s.startsWith(':') && !PARAM.test(s)))) throw new Error(`not a route path: ${route.path}`);
  const methods = typeof route.method === 'string' ? [route.method] : route.method;
  const match = (path: string): Record<string, string> | undefined => {
    const parts = path.split('/');
    if (rest ? parts.length < fixed.length : parts.length !== fixed.length) return undefined;
    const params: Record<string, string> = {};
    for (const [i, segment] of fixed.entries()) {
      const name = PARAM.exec(segment)?.[1];
      if (name === undefined) {
        if (segment !== parts[i]) return undefined;
        continue;
      }
      const value = decoded(parts[i]);
      if (!value || value.includes('/')) return undefined;
      params[name] = value;
    }
    if (rest) params['*'] = parts.slice(fixed.length).join('/');
    return params;
  };
  return { ...route, methods, match };
}

/** The segment percent-decoded; undefined when it is not valid percent-encoding. */
function decoded(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
