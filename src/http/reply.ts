import type { ServerResponse } from 'node:http';
import type { ErrorCode } from '../contract';

/**
 * How `depot serve` writes an answer: every answer carries its length and
 * `cache-control: no-store` (states and counts change from one request to
 * the next), and every error is written by `sendError`, in the contract's one
 * shape (CONTRACT §6, "depot serve").
 */

/** The contract's error: a code, a message, and the field it is about when it is about one. A `DepotError` is one. */
export interface ErrorReply {
  code: ErrorCode;
  message: string;
  field?: string;
}

export function send(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  response.end(body);
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  send(response, status, 'application/json', JSON.stringify(body));
}

/**
 * The one way an error is answered: `{ ok: false, error: { code, message, field? } }`.
 * `headers` go out with it (`www-authenticate` on a 401, `allow` on a 405);
 * `body` adds members beside `ok` and `error` (a 409 carries the `task` that
 * holds the taskId).
 */
export function sendError(
  response: ServerResponse,
  status: number,
  error: ErrorReply,
  more: { headers?: Readonly<Record<string, string>>; body?: Readonly<Record<string, unknown>> } = {},
): void {
  for (const [name, value] of Object.entries(more.headers ?? {})) response.setHeader(name, value);
  const { code, message, field } = error;
  sendJson(response, status, { ok: false, error: { code, message, ...(field ? { field } : {}) }, ...more.body });
}
