import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { StoreResult } from '../../src/contract';
import {
  archiveKeysBelow,
  cleanupAll,
  filesBelowRoot,
  HttpSource,
  InProcessWorker,
  queueClient,
  QueueClient,
  settle,
  sha256Hex,
  stagingEntries,
  startHttpSource,
  startInProcessWorker,
  TempDirs,
  testConfig,
  writePatternFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { KiB, patternBytes } from '../helpers/streams';

/**
 * CONTRACT §3: the worker's own retries with backoff hold for a plain job added
 * without options, and a store whose driver keeps failing goes to the fallback.
 */
const ATTEMPTS = 3;
const temp = new TempDirs();
let redis: RedisServer;
let worker: InProcessWorker | undefined;
let client: QueueClient;
let flaky: HttpSource | undefined;
let work: string;
let primaryRoot: string;
let fallbackRoot: string;
let healthyRoot: string;
const flakyBytes = patternBytes(150 * KiB + 3, 'flaky');

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make();
  // The primary's root lies under a regular file: every mkdir below it fails with ENOTDIR.
  const blocker = path.join(work, 'not-a-directory');
  await writeFile(blocker, 'a file where the primary expects a directory\n');
  primaryRoot = path.join(blocker, 'archive');
  fallbackRoot = path.join(work, 'fallback');
  healthyRoot = path.join(work, 'healthy');
  await mkdir(healthyRoot);
  const config = testConfig(
    {
      redis: { url: redis.url },
      queue: { attempts: ATTEMPTS, backoffMs: 50 },
      defaultDriver: 'healthy',
      drivers: {
        healthy: { type: 'filesystem', root: healthyRoot },
        primary: { type: 'filesystem', root: primaryRoot },
        fallback: { type: 'filesystem', root: fallbackRoot },
      },
      failover: { primary: ['fallback'] },
    },
    work,
  );
  worker = await startInProcessWorker(config);
  client = await queueClient(redis.port);
  flaky = await startHttpSource((_req, res, n) => {
    if (n <= 2) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '0' });
      res.end('busy, try again\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(flakyBytes.length) });
    res.end(flakyBytes);
  });
});

afterAll(async () => {
  await cleanupAll(
    () => client?.close(),
    () => worker?.close(),
    () => flaky?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

it('a URL source that answers 503 twice, then 200: a plain job completes on the third try of the same key', async () => {
  const done = await settle(client, await client.queue.add('store', { source: { url: flaky?.url('/pluginfile.php/12/backup.mbz') }, name: 'backup.mbz' }));
  expect(done.failedReason).toBeUndefined();
  expect(done.state).toBe('completed');
  const result = done.result as StoreResult;
  expect(result).toMatchObject({
    ref: { driver: 'healthy', key: expect.stringMatching(new RegExp(`/${result.taskId}/backup\\.mbz$`)) },
    size: flakyBytes.length,
    sha256: sha256Hex(flakyBytes),
    driversTried: ['healthy'],
    failedOver: false,
    attempts: 3,
  });
  expect(flaky?.requests).toBe(3);
  // The worker retried inside one job run; BullMQ itself saw a single attempt.
  expect(done.job.attemptsMade).toBe(1);
  expect(await archiveKeysBelow(healthyRoot)).toEqual([result.ref.key]);
  expect((await readFile(path.join(healthyRoot, ...result.ref.key.split('/')))).equals(flakyBytes)).toBe(true);
  expect(await stagingEntries(healthyRoot)).toEqual([]);
});

it('a primary whose root is unusable: retries spent, then the store fails over to the fallback', async () => {
  const file = path.join(work, 'failover-src.bin');
  const digest = await writePatternFile(file, 200 * KiB, 'failover');
  const done = await settle(
    client,
    await client.queue.add('store', { driver: 'primary', source: { path: file }, name: 'quiz.zip', metadata: { courseId: '7' } }),
  );
  expect(done.failedReason).toBeUndefined();
  expect(done.state).toBe('completed');
  const result = done.result as StoreResult;
  expect(result).toMatchObject({
    ref: { driver: 'fallback', key: expect.stringMatching(new RegExp(`/${result.taskId}/quiz\\.zip$`)) },
    name: 'quiz.zip',
    size: digest.size,
    sha256: digest.sha256,
    metadata: { courseId: '7' },
    driversTried: ['primary', 'fallback'],
    failedOver: true,
    // Every try on the primary, then one on the fallback.
    attempts: ATTEMPTS + 1,
  });
  expect(await archiveKeysBelow(fallbackRoot)).toEqual([result.ref.key]);
  expect(await stagingEntries(fallbackRoot)).toEqual([]);
  const retrieved = await settle(client, await client.queue.add('retrieve', { ref: result.ref, target: { inline: true } }));
  expect(retrieved.state).toBe('completed');
  expect(sha256Hex(Buffer.from((retrieved.result as { base64: string }).base64, 'base64'))).toBe(digest.sha256);
  // The primary's warning says why it failed over: 'internal' (ENOTDIR), which the contract retries and then fails over.
  expect(worker?.logs.some((line) => line.includes('failing over from primary to fallback') && line.includes('"code":"internal"'))).toBe(true);
  expect(await filesBelowRoot(healthyRoot)).not.toContainEqual(expect.stringContaining('quiz.zip'));
});

it('a task-level fallbacks list overrides the configured one', async () => {
  const bytes = patternBytes(4 * KiB, 'task-fallbacks');
  const done = await settle(
    client,
    await client.queue.add('store', { driver: 'primary', fallbacks: ['healthy'], source: { base64: bytes.toString('base64') }, name: 'override.zip' }),
  );
  expect(done.state).toBe('completed');
  expect(done.result).toMatchObject({
    ref: { driver: 'healthy' },
    driversTried: ['primary', 'healthy'],
    failedOver: true,
    attempts: ATTEMPTS + 1,
    sha256: sha256Hex(bytes),
  });
});

it('with no fallback left the store fails with the last code, after the worker retries', async () => {
  const bytes = patternBytes(KiB, 'no-fallback');
  const done = await settle(
    client,
    await client.queue.add('store', { driver: 'primary', fallbacks: [], source: { base64: bytes.toString('base64') }, name: 'lost.zip' }, { attempts: 1 }),
  );
  expect(done.state).toBe('failed');
  expect(done.failedReason).toMatch(/^internal: .*ENOTDIR/);
  expect(done.job.attemptsMade).toBe(1);
});
