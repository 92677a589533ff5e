import { DepotError } from '../contract';

/**
 * Cursors and positions are opaque to callers: base64url of a JSON list of
 * numbers (a row id; a time and a row id). Anything else handed back is
 * `invalid_task` on `cursor`, never a query.
 */
export function encodeCursor(parts: readonly number[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor(cursor: string, length: number, field = 'cursor'): number[] {
  let parts: unknown;
  try {
    parts = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) : undefined;
  } catch {
    parts = undefined;
  }
  if (!Array.isArray(parts) || parts.length !== length || !parts.every((n) => Number.isSafeInteger(n))) {
    throw new DepotError('invalid_task', 'is not a cursor this catalog handed out', { field });
  }
  return parts as number[];
}
