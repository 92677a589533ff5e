import { createServer, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { sendJson } from '../../../src/http/reply';
import { Exchange, Guard, Route, routeRequests } from '../../../src/http/router';
import { silentLogger } from '../../../src/support/logging';

/**
 * The route table's rules (src/http/router.ts), on a real HTTP server: how
 * paths match, what is 404, 405 and 401, and what a handler that fails is
 * answered. depot serve's own answers are pinned in test/http/routes.test.ts.
 */
const KEY = {
  allows: (request: IncomingMessage) => request.headers.authorization === 'Key open',
  challenge: 'Key',
  refusal: 'a key is required',
} satisfies Guard;
const echo = ({ path, params }: Exchange) => ({ path, params });
const answer =
  (name: string) =>
  (exchange: Exchange): void =>
    sendJson(exchange.response, 200, { route: name, ...echo(exchange) });

const routes: Route[] = [
  { method: ['GET', 'HEAD'], path: '/status', handle: answer('status') },
  { method: 'GET', path: '/items/:itemId', handle: answer('item') },
  { method: 'PUT', path: '/items/:itemId', auth: KEY, handle: answer('put item') },
  { method: 'GET', path: '/items/:itemId/parts/:partNo', handle: answer('part') },
  { method: 'GET', path: '/first/:x', handle: answer('first') },
  { method: 'GET', path: '/first/:y', handle: answer('second') },
  { method: '*', path: '/files/*', handle: answer('files') },
  { method: 'GET', path: '/locked', auth: KEY, handle: answer('locked') },
  { method: 'GET', path: '/rejects', handle: () => Promise.reject(new Error('Redis did not answer')) },
  {
    method: 'GET',
    path: '/throws',
    handle: () => {
      throw new Error('a bug');
    },
  },
];

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer(routeRequests(routes, silentLogger()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function call(
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; allow: string | null; challenge: string | null }> {
  const response = await fetch(`${base}${path}`, { method, headers });
  const text = await response.text();
  return {
    status: response.status,
    body: text ? JSON.parse(text) : undefined,
    allow: response.headers.get('allow'),
    challenge: response.headers.get('www-authenticate'),
  };
}

const notFound = (path: string) => ({ ok: false, error: { code: 'not_found', message: `no route ${path}` } });

test('literal paths match as sent, whole', async () => {
  expect(await call('GET', '/status')).toMatchObject({ status: 200, body: { route: 'status', path: '/status', params: {} } });
  expect(await call('GET', '/status?verbose=1')).toMatchObject({ status: 200, body: { path: '/status' } });
  for (const path of ['/status/', '/Status', '/%73tatus', '/statusx', '/'])
    expect(await call('GET', path)).toMatchObject({ status: 404, body: notFound(path) });
});

test('a :name is one segment, percent-decoded; a segment that does not decode, or decodes to a /, does not match', async () => {
  expect(await call('GET', '/items/a%20b')).toMatchObject({ status: 200, body: { route: 'item', params: { itemId: 'a b' } } });
  expect(await call('GET', '/items/7/parts/2')).toMatchObject({ status: 200, body: { route: 'part', params: { itemId: '7', partNo: '2' } } });
  for (const path of ['/items/', '/items/a%2Fb', '/items/%E0%A4%A', '/items/7/parts/'])
    expect(await call('GET', path)).toMatchObject({ status: 404, body: notFound(path) });
});

test('a last * is the path before it and everything below, as sent', async () => {
  expect(await call('GET', '/files')).toMatchObject({ status: 200, body: { route: 'files', params: { '*': '' } } });
  expect(await call('DELETE', '/files/')).toMatchObject({ status: 200, body: { params: { '*': '' } } });
  expect(await call('POST', '/files/a/b%20c')).toMatchObject({ status: 200, body: { params: { '*': 'a/b%20c' } } });
  expect(await call('GET', '/filesx')).toMatchObject({ status: 404 });
});

test('the first route that matches answers', async () => {
  expect(await call('GET', '/first/1')).toMatchObject({ body: { route: 'first', params: { x: '1' } } });
});

test('a path with routes for other methods is 405 with Allow naming them; HEAD is not implied by GET', async () => {
  const refused = await call('POST', '/status');
  expect(refused).toEqual({
    status: 405,
    body: { ok: false, error: { code: 'invalid_task', message: 'POST is not allowed on /status' } },
    allow: 'GET, HEAD',
    challenge: null,
  });
  expect(await call('HEAD', '/items/7', { authorization: 'Key open' })).toMatchObject({ status: 405, allow: 'GET, PUT' });
  expect(await call('DELETE', '/items/7', { authorization: 'Key open' })).toMatchObject({ status: 405, allow: 'GET, PUT' });
});

test('credentials: 401 with the guard challenge, also before a 405 on a path that asks for them', async () => {
  const refused = { status: 401, body: { ok: false, error: { code: 'auth', message: 'a key is required' } }, allow: null, challenge: 'Key' };
  expect(await call('GET', '/locked')).toEqual(refused);
  expect(await call('GET', '/locked', { authorization: 'Key open' })).toMatchObject({ status: 200, body: { route: 'locked' } });
  expect(await call('POST', '/locked')).toEqual(refused);
  expect(await call('POST', '/locked', { authorization: 'Key open' })).toMatchObject({ status: 405, allow: 'GET' });
  expect(await call('PUT', '/items/7')).toEqual(refused);
  expect(await call('PUT', '/items/7', { authorization: 'Key open' })).toMatchObject({ status: 200, body: { route: 'put item' } });
  // A route without credentials on the same path is not held by them.
  expect(await call('GET', '/items/7')).toMatchObject({ status: 200, body: { route: 'item' } });
});

test('a handler that rejects is 503 unavailable with its message, one that throws 500 internal; the server stays up', async () => {
  expect(await call('GET', '/rejects')).toMatchObject({ status: 503, body: { ok: false, error: { code: 'unavailable', message: 'Redis did not answer' } } });
  expect(await call('GET', '/throws')).toMatchObject({ status: 500, body: { ok: false, error: { code: 'internal', message: 'the request failed' } } });
  expect(await call('GET', '/status')).toMatchObject({ status: 200 });
});

test('a request target that is not a URL is 400', async () => {
  const { port } = server.address() as AddressInfo;
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET // HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  expect(raw.endsWith('{"ok":false,"error":{"code":"invalid_task","message":"not a request target"}}')).toBe(true);
});

test('a path that is no route pattern is refused when the table is made', () => {
  for (const path of ['status', '/a/*/b', '/a/:1x', '/a/:x-y']) {
    expect(() => routeRequests([{ method: 'GET', path, handle: () => undefined }], silentLogger())).toThrow(`not a route path: ${path}`);
  }
});
