/**
 * The nats driver under the storage worker, on a nats-server started here:
 * the server stopped (unavailable, retried, failover to the fallback driver)
 * and started again (later stores land on it); two workers storing the same
 * task at the same moment (one archive; the other run idempotent, or a
 * conflict for other bytes); and a worker killed with SIGKILL in the middle
 * of a store (its chunks removed by the next worker's sweep, the task done).
 */
import { createHash } from 'node:crypto';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { StoreResult } from '../../src/contract';
import type { NatsConnection } from '../../src/storage/drivers/nats/client';
import { chunkSubjects, metaSubject, metaSubjects, streamName } from '../../src/storage/drivers/nats/layout';
import { adminConnection, NatsServer, startNatsServer, uniqueBucket } from '../helpers/nats-server';
import {
  archiveKeysBelow,
  cleanupAll,
  eventually,
  InProcessWorker,
  killAllWorkerProcesses,
  queueClient,
  QueueClient,
  settle,
  sha256Hex,
  spawnWorkerProcess,
  startHttpSource,
  startInProcessWorker,
  TempDirs,
  testConfig,
  writeConfigFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { KiB, MiB, patternBytes } from '../helpers/streams';

jest.setTimeout(120_000);

const temp = new TempDirs();
let redis: RedisServer;
let nats: NatsServer;
let admin: { nc: NatsConnection; jsm: JetStreamManager };
let client: QueueClient;
const workers: InProcessWorker[] = [];

beforeAll(async () => {
  [redis, nats] = await Promise.all([startRedis(), startNatsServer()]);
  admin = await adminConnection(nats.url);
  client = await queueClient(redis.port);
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close()));
  await killAllWorkerProcesses();
  await client.queue.obliterate({ force: true });
});

afterAll(async () => {
  await cleanupAll(
    () => client?.close(),
    () => admin?.nc.close(),
    () => nats?.destroy(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

/** A worker config: the nats driver `js` on the server, failing over to a filesystem driver `local`. */
function rawConfig(bucket: string, fallbackRoot: string, queue: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    redis: { url: redis.url },
    queue: { attempts: 2, backoffMs: 50, ...queue },
    defaultDriver: 'js',
    drivers: {
      js: { type: 'nats', servers: nats.url, bucket, timeoutMs: 1000, maxChunkBytes: 64 * 1024 },
      local: { type: 'filesystem', root: fallbackRoot },
    },
    failover: { js: ['local'] },
  };
}

async function worker(raw: Record<string, unknown>, dir: string): Promise<InProcessWorker> {
  const started = await startInProcessWorker(testConfig(raw, dir));
  workers.push(started);
  return started;
}

async function subjectCounts(bucket: string, filter: string): Promise<Record<string, number>> {
  return (await admin.jsm.streams.info(streamName(bucket), { subjects_filter: filter })).state.subjects ?? {};
}

test('server stopped: the store is unavailable, retried, and fails over; started again: later stores land on it, earlier archives intact', async () => {
  const dir = await temp.make();
  const bucket = uniqueBucket('outage');
  await worker(rawConfig(bucket, `${dir}/fallback`), dir);
  const before = patternBytes(100 * KiB, 'before');
  const first = await settle(client, await client.queue.add('store', { source: { base64: before.toString('base64') }, name: 'before.zip' }));
  expect(first.result).toMatchObject({ ref: { driver: 'js' }, failedOver: false });

  await nats.stop();
  const during = patternBytes(60 * KiB, 'during');
  const second = await settle(client, await client.queue.add('store', { source: { base64: during.toString('base64') }, name: 'during.zip' }));
  expect(second.failedReason).toBeUndefined();
  const failedOver = second.result as StoreResult;
  expect(failedOver).toMatchObject({ ref: { driver: 'local' }, driversTried: ['js', 'local'], failedOver: true, sha256: sha256Hex(during) });
  expect(await archiveKeysBelow(`${dir}/fallback`)).toEqual([failedOver.ref.key]);
  expect(workers[0].logs.some((line) => line.includes('failing over from js to local') && line.includes('"code":"unavailable"'))).toBe(true);

  await nats.start();
  const after = patternBytes(80 * KiB, 'after');
  // The client reconnects by itself; a store that comes too early fails over, as above, so it is tried until one lands.
  const landed = await eventually(
    async () => {
      const done = await settle(client, await client.queue.add('store', { source: { base64: after.toString('base64') }, name: 'after.zip' }));
      const result = done.result as StoreResult | undefined;
      return result?.ref.driver === 'js' ? result : undefined;
    },
    30_000,
    'a store on js after the restart',
  );
  expect(landed).toMatchObject({ driversTried: ['js'], failedOver: false, sha256: sha256Hex(after) });
  const back = await settle(client, await client.queue.add('retrieve', { ref: (first.result as StoreResult).ref, target: { inline: true } }));
  expect(Buffer.from((back.result as { base64: string }).base64, 'base64').equals(before)).toBe(true);
});

describe('two workers, one task, the same moment', () => {
  /** A URL source that answers no one until `parties` requests came in, so the stores overlap. */
  async function meetingSource(parties: number, bodies: (n: number) => Buffer) {
    let arrived = 0;
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    return startHttpSource(async (_req, res, n) => {
      arrived += 1;
      if (arrived >= parties) open();
      await opened;
      const body = bodies(n);
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(body.length) });
      res.end(body);
    });
  }

  test('the same bytes: one archive, one description; both runs complete with it (the second idempotent)', async () => {
    const dir = await temp.make();
    const bucket = uniqueBucket('twins');
    const raw = rawConfig(bucket, `${dir}/fallback`);
    await Promise.all([worker(raw, dir), worker(raw, dir)]);
    const bytes = patternBytes(2 * MiB, 'twins');
    const source = await meetingSource(2, () => bytes);
    try {
      // Two jobs of one task (a producer that added it twice under two job ids): one key.
      const taskId = '01a2b3c4-0000-7000-8000-00000000aaaa';
      const jobs = await Promise.all(
        [1, 2].map((i) => client.queue.add('store', { taskId, source: { url: source.url() }, name: 'twins.zip' }, { jobId: `twin-${i}` })),
      );
      const done = await Promise.all(jobs.map((job) => settle(client, job, 60_000)));
      for (const d of done) expect(d.failedReason).toBeUndefined();
      const results = done.map((d) => d.result as StoreResult);
      expect(results[0].ref).toEqual(results[1].ref);
      expect(results.map((r) => r.ref.driver)).toEqual(['js', 'js']);
      expect(results.map((r) => r.sha256)).toEqual([sha256Hex(bytes), sha256Hex(bytes)]);
      expect(await subjectCounts(bucket, metaSubjects(bucket))).toEqual({ [metaSubject(bucket, results[0].ref.key)]: 1 });
      expect(Object.keys(await subjectCounts(bucket, chunkSubjects(bucket)))).toHaveLength(1);
      expect(source.requests).toBe(2);
    } finally {
      await source.close();
    }
  });

  test('other bytes: one archive; the other run fails with conflict, not retried, not failed over', async () => {
    const dir = await temp.make();
    const bucket = uniqueBucket('rivals');
    const raw = rawConfig(bucket, `${dir}/fallback`);
    await Promise.all([worker(raw, dir), worker(raw, dir)]);
    const bodies = [patternBytes(MiB, 'rival 1'), patternBytes(MiB, 'rival 2')];
    const source = await meetingSource(2, (n) => bodies[(n - 1) % 2]);
    try {
      const taskId = '01a2b3c4-0000-7000-8000-00000000bbbb';
      const jobs = await Promise.all(
        [1, 2].map((i) => client.queue.add('store', { taskId, source: { url: source.url() }, name: 'rivals.zip' }, { jobId: `rival-${i}` })),
      );
      const done = await Promise.all(jobs.map((job) => settle(client, job, 60_000)));
      expect(done.map((d) => d.state).sort()).toEqual(['completed', 'failed']);
      const failed = done.find((d) => d.state === 'failed');
      expect(failed?.failedReason).toMatch(/^conflict: /);
      expect(failed?.job.attemptsMade).toBe(1);
      const won = done.find((d) => d.state === 'completed')?.result as StoreResult;
      expect(won.ref.driver).toBe('js');
      expect(bodies.map(sha256Hex)).toContain(won.sha256);
      expect(await subjectCounts(bucket, metaSubjects(bucket))).toEqual({ [metaSubject(bucket, won.ref.key)]: 1 });
      expect(Object.keys(await subjectCounts(bucket, chunkSubjects(bucket)))).toHaveLength(1);
      expect(await archiveKeysBelow(`${dir}/fallback`)).toEqual([]);
    } finally {
      await source.close();
    }
  });
});

test("a worker killed in the middle of a store: no object appears; the next worker completes the task and sweeps the dead one's chunks", async () => {
  const dir = await temp.make();
  const bucket = uniqueBucket('crash');
  const raw = rawConfig(bucket, `${dir}/fallback`, { lockDurationMs: 2000, stalledIntervalMs: 1000 });
  const bytes = patternBytes(4 * MiB, 'crash');
  let requests = 0;
  const source = await startHttpSource(async (_req, res) => {
    requests += 1;
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(bytes.length) });
    if (requests > 1) {
      res.end(bytes);
      return;
    }
    // The first download sends a quarter and then nothing more: the store is held in the middle.
    res.write(bytes.subarray(0, bytes.length / 4));
    await new Promise((resolve) => res.once('close', resolve));
  });
  try {
    const first = spawnWorkerProcess(await writeConfigFile(dir, raw));
    const job = await client.queue.add('store', { source: { url: source.url() }, name: 'crash.zip' });
    // Chunks are in the bucket: the dead worker's upload, which no description names.
    await eventually(
      async () => (Object.keys(await subjectCounts(bucket, chunkSubjects(bucket)).catch(() => ({}))).length > 0 ? true : undefined),
      60_000,
      'chunks',
    );
    await first.kill();
    expect(await subjectCounts(bucket, metaSubjects(bucket))).toEqual({});
    const orphaned = Object.keys(await subjectCounts(bucket, chunkSubjects(bucket)));
    expect(orphaned).toHaveLength(1);
    expect(orphaned[0]).toContain(`_${first.pid}_`);

    await worker(raw, dir);
    const done = await settle(client, job, 60_000);
    expect(done.failedReason).toBeUndefined();
    const result = done.result as StoreResult;
    expect(result).toMatchObject({ ref: { driver: 'js' }, sha256: createHash('sha256').update(bytes).digest('hex') });
    // The sweep runs beside the store: the dead upload's chunks go, the archive's stay.
    await eventually(
      async () => (Object.keys(await subjectCounts(bucket, chunkSubjects(bucket))).includes(orphaned[0]) ? undefined : true),
      10_000,
      'the sweep',
    );
    expect(Object.keys(await subjectCounts(bucket, chunkSubjects(bucket)))).toHaveLength(1);
    expect(await subjectCounts(bucket, metaSubjects(bucket))).toEqual({ [metaSubject(bucket, result.ref.key)]: 1 });
  } finally {
    await source.close();
  }
});
