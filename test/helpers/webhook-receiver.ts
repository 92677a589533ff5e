import { createHmac } from 'node:crypto';
import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { createLogger, Logger } from '../../src/support/logging';

/** One request a receiver got: its raw body exactly as sent. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  body: Record<string, unknown>;
  at: number;
}

export interface WebhookReceiver {
  base: string;
  received: Received[];
  /** Statuses to answer on `path`, consumed in order; afterwards 200. */
  answer(path: string, statuses: number[]): void;
  close(): Promise<void>;
}

/** A local HTTP receiver that records every webhook. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: Received[] = [];
  const answers = new Map<string, number[]>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks);
      const path = request.url ?? '/';
      received.push({ path, headers: request.headers, raw, body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>, at: Date.now() });
      response.writeHead(answers.get(path)?.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    answer: (path, statuses) => answers.set(path, [...statuses]),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** `Depot-Signature` taken apart: `t` and every `v1`. */
export function parseSignature(header: unknown): { t: number; v1: string[] } {
  const parts = String(header).split(',');
  const t = parts.find((p) => p.startsWith('t='));
  return { t: Number(t?.slice(2)), v1: parts.filter((p) => p.startsWith('v1=')).map((p) => p.slice(3)) };
}

/** The receiver's check (CONTRACT §4): HMAC-SHA256 keyed with the secret's UTF-8 bytes over `<t>.` + the raw body bytes. */
export function expectedMac(secret: string, t: number, raw: Buffer): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(Buffer.concat([Buffer.from(`${t}.`), raw]))
    .digest('hex');
}

/** A JSON logger whose lines are kept in memory. */
export function memoryLogger(): { logger: Logger; lines: () => string[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { logger: createLogger({ stream, format: 'json', level: 'debug' }), lines: () => text.split('\n').filter(Boolean) };
}
