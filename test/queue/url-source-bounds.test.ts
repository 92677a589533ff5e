import path from 'node:path';
import {
  archiveKeysBelow,
  cleanupAll,
  HttpSource,
  InProcessWorker,
  queueClient,
  QueueClient,
  settle,
  sha256Hex,
  startHttpSource,
  startInProcessWorker,
  TempDirs,
  testConfig,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { KiB, patternBytes } from '../helpers/streams';

/**
 * A URL source is bounded as a whole, not only by its idle timeout: one that
 * drips a byte now and then must not hold a worker slot far beyond it, and one
 * without a declared size must not send without end (sources.maxDurationMs,
 * sources.maxBytes). Neither is retried: a retry would meet the same source.
 */
const temp = new TempDirs();
let redis: RedisServer;
let worker: InProcessWorker | undefined;
let client: QueueClient;
let source: HttpSource;
let root: string;
const MAX_BYTES = 64 * KiB;
const big = patternBytes(MAX_BYTES + 1, 'big');

beforeAll(async () => {
  redis = await startRedis();
  root = path.join(await temp.make(), 'archive');
  const config = testConfig(
    {
      redis: { url: redis.url },
      queue: { attempts: 3, backoffMs: 50 },
      drivers: { local: { type: 'filesystem', root } },
      // The idle timeout is well above the drip's interval, so only the whole-transfer bound can end it.
      sources: { timeoutMs: 2_000, maxDurationMs: 1_500, maxBytes: MAX_BYTES },
    },
    root,
  );
  worker = await startInProcessWorker(config);
  client = await queueClient(redis.port);
  source = await startHttpSource(async (req, res) => {
    if (req.url === '/drip') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let i = 0; i < 100 && !res.destroyed; i++) {
        res.write(Buffer.from([i]));
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      res.end();
      return;
    }
    // No Content-Length: chunked, as a generated archive often is.
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(big);
  });
});

afterAll(async () => {
  await cleanupAll(
    () => client?.close(),
    () => worker?.close(),
    () => source?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

test('a source that drips past sources.maxDurationMs fails as source_unavailable, not retried, within the bound', async () => {
  const started = Date.now();
  const before = source.requests;
  const settled = await settle(client, await client.queue.add('store', { source: { url: source.url('/drip') }, name: 'drip.bin' }), 20_000);
  expect(settled.state).toBe('failed');
  expect(settled.failedReason).toMatch(/^source_unavailable: .*sources\.maxDurationMs \(1500 ms\)/);
  expect(source.requests - before).toBe(1); // not retried
  expect(Date.now() - started).toBeLessThan(10_000); // 100 drips would take 30 s
  expect(await archiveKeysBelow(root)).toEqual([]);
});

test('without a declared size, more than sources.maxBytes fails as source_unavailable; with one, the size is the bound', async () => {
  const unbounded = await settle(client, await client.queue.add('store', { source: { url: source.url('/big') }, name: 'big.bin' }));
  expect(unbounded.state).toBe('failed');
  expect(unbounded.failedReason).toMatch(/^source_unavailable: .*sources\.maxBytes \(65536 bytes\)/);
  expect(await archiveKeysBelow(root)).toEqual([]);

  const declared = await settle(client, await client.queue.add('store', { source: { url: source.url('/big') }, name: 'big.bin', size: big.length }));
  expect(declared.state).toBe('completed');
  expect(declared.result).toMatchObject({ size: big.length, sha256: sha256Hex(big) });
});
