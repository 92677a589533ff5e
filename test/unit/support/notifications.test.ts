import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deliverCallback, deliveryId, TaskNotification } from '../../../src/support/notifications';

/** One webhook delivery: bounded as a whole, answered by the status alone. */
const notification: TaskNotification = {
  event: 'task.completed',
  taskId: 't1',
  jobId: 't1',
  operation: 'store',
  attempt: 1,
  timestamp: new Date(0).toISOString(),
};
let server: Server;
let base: string;
const sockets = new Set<import('node:net').Socket>();

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    if (request.url === '/silent') return; // never answers
    if (request.url === '/trickle') {
      // The status comes at once, the body never ends.
      response.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => response.write('.'), 100);
      response.on('close', () => clearInterval(timer));
      return;
    }
    response.writeHead(204).end();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('a receiver that never answers fails the delivery within its timeout', async () => {
  const started = Date.now();
  await expect(deliverCallback({ url: `${base}/silent`, notification }, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'unavailable' });
  expect(Date.now() - started).toBeLessThan(2_000);
});

test('a 2xx is the answer even when the body never ends', async () => {
  await expect(deliverCallback({ url: `${base}/trickle`, notification }, { timeoutMs: 1_000 })).resolves.toBe(200);
  await expect(deliverCallback({ url: `${base}/ok`, notification }, { timeoutMs: 1_000 })).resolves.toBe(204);
});

test('link-local targets are refused without a request', async () => {
  await expect(deliverCallback({ url: 'http://169.254.169.254/latest', notification }, { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'invalid_task' });
});

test('delivery ids: one per task, event and URL; every failover hop its own; usable as a BullMQ jobId', () => {
  const a = deliveryId(notification, 'https://a.example/hook');
  expect(deliveryId(notification, 'https://a.example/hook')).toBe(a);
  expect(deliveryId(notification, 'https://b.example/hook')).not.toBe(a);
  const hop = (from: string, to: string): TaskNotification => ({ ...notification, event: 'task.failover', from, to });
  expect(deliveryId(hop('a', 'b'), 'https://a.example/hook')).not.toBe(deliveryId(hop('b', 'c'), 'https://a.example/hook'));
  expect(deliveryId({ ...notification, taskId: 'odd:id' }, 'https://a.example/hook')).not.toContain(':');
});
