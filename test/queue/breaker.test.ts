import IORedis, { Redis } from 'ioredis';
import { RedisBreakers } from '../../src/queue/breaker';
import { cleanupAll } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * The circuit breaker's state machine (CONTRACT §10) against a real
 * redis-server: two RedisBreakers on two connections stand for two worker
 * processes sharing one breaker per driver.
 */
jest.setTimeout(30_000);

const COOL_DOWN_MS = 400;
const FAILURES = 3;
let redis: RedisServer;
const clients: Redis[] = [];
let queueNumber = 0;

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

afterAll(async () => {
  await cleanupAll(() => redis?.stop());
});

/** `count` workers' breakers on a queue of this test's own, with driver `ftp` (breaker on) and `local` (off). */
function workers(count: number, prefix = 'bull'): { breakers: RedisBreakers[]; queue: { prefix: string; name: string }; client: Redis } {
  const queue = { prefix, name: `breakers-${++queueNumber}` };
  const breakers = Array.from({ length: count }, () => {
    const client = new IORedis(redis.url);
    clients.push(client);
    return new RedisBreakers(client, queue, { ftp: { failures: FAILURES, coolDownMs: COOL_DOWN_MS }, local: undefined });
  });
  const client = new IORedis(redis.url);
  clients.push(client);
  return { breakers, queue, client };
}

const states = async (b: RedisBreakers) => Object.fromEntries((await b.report()).map((r) => [r.driver, r.state]));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('consecutive unavailable attempts from two workers open it at the threshold; while open nobody is admitted, until the cool-down ends', async () => {
  const {
    breakers: [a, b],
  } = workers(2);
  expect(await a.admit('ftp')).toEqual({ admitted: true, probe: false });
  await a.record('ftp', 'unavailable', false);
  await b.record('ftp', 'unavailable', false);
  expect(await states(a)).toEqual({ ftp: 'closed', local: 'closed' });
  expect(await b.admit('ftp')).toEqual({ admitted: true, probe: false });
  const before = Date.now();
  await a.record('ftp', 'unavailable', false);
  expect(await states(b)).toEqual({ ftp: 'open', local: 'closed' });
  for (const breaker of [a, b]) {
    const admission = await breaker.admit('ftp');
    expect(admission.admitted).toBe(false);
    if (admission.admitted) continue;
    expect(admission.retryAt).toBeGreaterThan(before);
    expect(admission.retryAt).toBeLessThanOrEqual(Date.now() + COOL_DOWN_MS);
  }
  const report = (await a.report()).find((r) => r.driver === 'ftp');
  expect(report).toMatchObject({ state: 'open', failures: FAILURES, enabled: true });
  expect(Date.parse(report?.openUntil ?? '')).toBeGreaterThan(Date.now());
});

test('a success, by any worker, resets the count: failures must be consecutive; neutral outcomes count for nothing', async () => {
  const {
    breakers: [a, b],
  } = workers(2);
  for (let i = 0; i < FAILURES - 1; i++) await a.record('ftp', 'unavailable', false);
  await a.record('ftp', 'neutral', false);
  await b.record('ftp', 'success', false);
  for (let i = 0; i < FAILURES - 1; i++) await a.record('ftp', 'unavailable', false);
  expect(await states(a)).toMatchObject({ ftp: 'closed' });
  expect(await b.admit('ftp')).toEqual({ admitted: true, probe: false });
  await b.record('ftp', 'unavailable', false);
  expect(await states(a)).toMatchObject({ ftp: 'open' });
});

test('after the cool-down it is half-open: one probe among concurrent workers; the probe failing re-opens it for a whole cool-down', async () => {
  const { breakers } = workers(4);
  for (let i = 0; i < FAILURES; i++) await breakers[0].record('ftp', 'unavailable', false);
  await sleep(COOL_DOWN_MS + 50);
  expect(await states(breakers[0])).toMatchObject({ ftp: 'half-open' });
  const admissions = await Promise.all(breakers.map((b) => b.admit('ftp')));
  const probes = admissions.filter((a) => a.admitted && a.probe);
  expect(probes).toHaveLength(1);
  expect(admissions.filter((a) => !a.admitted)).toHaveLength(3);
  const prober = breakers[admissions.findIndex((a) => a.admitted)];
  await prober.record('ftp', 'unavailable', true);
  expect(await states(breakers[0])).toMatchObject({ ftp: 'open' });
  await sleep(COOL_DOWN_MS / 2);
  expect((await breakers[1].admit('ftp')).admitted).toBe(false);
  await sleep(COOL_DOWN_MS / 2 + 50);
  expect(await breakers[1].admit('ftp')).toEqual({ admitted: true, probe: true });
});

test('a probe that succeeds closes it for everyone; a neutral probe leaves it half-open for the next probe', async () => {
  const {
    breakers: [a, b],
    client,
    queue,
  } = workers(2);
  for (let i = 0; i < FAILURES; i++) await a.record('ftp', 'unavailable', false);
  await sleep(COOL_DOWN_MS + 50);
  expect(await a.admit('ftp')).toEqual({ admitted: true, probe: true });
  await a.record('ftp', 'neutral', true);
  expect(await states(b)).toMatchObject({ ftp: 'half-open' });
  expect(await b.admit('ftp')).toEqual({ admitted: true, probe: true });
  await b.record('ftp', 'success', true);
  expect(await states(a)).toMatchObject({ ftp: 'closed' });
  expect(await a.admit('ftp')).toEqual({ admitted: true, probe: false });
  // Closed and clean leaves nothing in Redis.
  expect(await client.exists(`${queue.prefix}:${queue.name}:depot:breaker:ftp`)).toBe(0);
});

test('a driver whose breaker is off is always admitted and writes nothing to Redis', async () => {
  const {
    breakers: [a],
    client,
    queue,
  } = workers(1);
  for (let i = 0; i < FAILURES * 2; i++) await a.record('local', 'unavailable', false);
  expect(await a.admit('local')).toEqual({ admitted: true, probe: false });
  expect((await a.report()).find((r) => r.driver === 'local')).toEqual({ driver: 'local', state: 'closed', failures: 0, enabled: false });
  expect(await client.keys(`${queue.prefix}:${queue.name}:*`)).toEqual([]);
});

test("its key lies below the queue's, in the queue's cluster slot under a hash-tagged prefix", async () => {
  const {
    breakers: [a],
    client,
    queue,
  } = workers(1, '{depot}');
  await a.record('ftp', 'unavailable', false);
  const key = `{depot}:${queue.name}:depot:breaker:ftp`;
  expect(a.keyOf('ftp')).toBe(key);
  expect(await client.hget(key, 'failures')).toBe('1');
  // Redis Cluster hashes only the first {…} of a key: the prefix's, as for every key of the queue.
  expect(/\{([^}]*)\}/.exec(key)?.[1]).toBe('depot');
});

test('a Redis that does not answer admits the driver (the breaker fails open) instead of holding stores', async () => {
  const queue = { prefix: 'bull', name: `breakers-${++queueNumber}` };
  const dead = new IORedis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  dead.on('error', () => undefined);
  clients.push(dead);
  const breakers = new RedisBreakers(dead, queue, { ftp: { failures: 1, coolDownMs: 60_000 } });
  await breakers.record('ftp', 'unavailable', false);
  expect(await breakers.admit('ftp')).toEqual({ admitted: true, probe: false });
});
