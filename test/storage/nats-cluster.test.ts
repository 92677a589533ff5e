/**
 * The nats driver on a three-node JetStream cluster (three nats-server
 * processes routed together on loopback) with a bucket of three replicas:
 * the condition write-once rests on holds there too, and a store whose
 * stream leader is killed in the middle completes, through the worker,
 * intact and on the same driver.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { StoreResult } from '../../src/contract';
import { ArchiveStore } from '../../src/storage/archive-store';
import type { NatsConnection } from '../../src/storage/drivers/nats/client';
import { NatsDriver } from '../../src/storage/drivers/nats/driver';
import { chunkSubjects, metaSubject, metaSubjects, streamName } from '../../src/storage/drivers/nats/layout';
import { silentLogger } from '../../src/support/logging';
import { adminConnection, NatsCluster, natsSettings, startNatsCluster, uniqueBucket } from '../helpers/nats-server';
import {
  cleanupAll,
  eventually,
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
import { digestOf, MiB, patternBytes, readAll } from '../helpers/streams';

const logger = silentLogger();
const temp = new TempDirs();
let cluster: NatsCluster;
let admin: { nc: NatsConnection; jsm: JetStreamManager };

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  admin = await adminConnection(cluster.urls);
}, 60_000);

afterAll(async () => {
  await cleanupAll(
    () => admin?.nc.close(),
    () => cluster?.destroy(),
    () => temp.cleanup(),
  );
});

/** The server that leads the bucket's stream (its RAFT group) now. */
async function streamLeader(bucket: string): Promise<string> {
  const info = await admin.jsm.streams.info(streamName(bucket));
  const leader = info.cluster?.leader;
  if (!leader) throw new Error(`the stream of ${bucket} has no leader`);
  return leader;
}

test('of 40 concurrent publishes that expect no message on one subject of a 3-replica stream, the cluster takes exactly one', async () => {
  const bucket = uniqueBucket('cluster-condition');
  const driver = new NatsDriver('nats', natsSettings(cluster.urls, bucket, { replicas: 3, timeoutMs: 10_000 }), logger);
  try {
    expect(await new ArchiveStore(driver, logger).check()).toMatchObject({ ok: true, writeOnce: 'enforced' });
    expect((await admin.jsm.streams.info(streamName(bucket))).config.num_replicas).toBe(3);
    // From three connections, one per node, so the publishes reach the leader by different routes.
    const clients = await Promise.all(cluster.urls.map((url) => adminConnection(url)));
    try {
      for (let round = 0; round < 5; round++) {
        const subject = metaSubject(bucket, `2026/01/01/round-${round}/x.zip`);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 40 }, (_, i) => clients[i % 3].jsm.jetstream().publish(subject, `writer ${i}`, { expect: { lastSubjectSequence: 0 } })),
        );
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        const counts = (await admin.jsm.streams.info(streamName(bucket), { subjects_filter: subject })).state.subjects;
        expect(counts).toEqual({ [subject]: 1 });
      }
    } finally {
      await Promise.all(clients.map((c) => c.nc.close()));
    }
  } finally {
    await driver.close();
  }
}, 60_000);

describe('through the worker', () => {
  let redis: RedisServer;
  let worker: InProcessWorker | undefined;
  let client: QueueClient;

  beforeAll(async () => {
    redis = await startRedis();
    client = await queueClient(redis.port);
  });

  afterAll(async () => {
    await cleanupAll(
      () => client?.close(),
      () => worker?.close(),
      () => redis?.stop(),
    );
  });

  test('the stream leader killed in the middle of a store: the task completes on the same driver, the archive intact, nothing left over', async () => {
    const bucket = uniqueBucket('cluster');
    const work = await temp.make();
    const config = testConfig(
      {
        redis: { url: redis.url },
        queue: { attempts: 5, backoffMs: 200 },
        defaultDriver: 'js',
        drivers: {
          js: { type: 'nats', servers: cluster.urls, bucket, replicas: 3, timeoutMs: 15_000, maxChunkBytes: 256 * 1024 },
          local: { type: 'filesystem', root: `${work}/fallback` },
        },
        failover: { js: ['local'] },
      },
      work,
    );
    worker = await startInProcessWorker(config);
    // The bucket exists (with its leader) before the store: a check through the same config's driver.
    const probe = new NatsDriver('probe', natsSettings(cluster.urls, bucket, { replicas: 3, timeoutMs: 15_000 }), logger);
    // Creating a three-replica stream may take longer than one call's timeout on a loaded machine (the worker
    // may be creating it at the same moment): the check is asked again until the bucket answers.
    const checked = await eventually(
      async () => {
        const result = await new ArchiveStore(probe, logger).check();
        return result.ok ? result : undefined;
      },
      90_000,
      'the bucket answering a check',
    );
    expect(checked.error).toBeUndefined();
    expect(checked).toMatchObject({ ok: true });
    const leader = await streamLeader(bucket);
    const victim = cluster.nodes.find((n) => n.name === leader);
    if (!victim) throw new Error(`no node named ${leader}`);

    const bytes = patternBytes(32 * MiB, 'cluster store');
    let killed = false;
    const source = await startHttpSource(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(bytes.length) });
      const piece = 512 * 1024;
      for (let offset = 0; offset < bytes.length; offset += piece) {
        if (res.destroyed) return;
        if (!killed && offset >= bytes.length / 2) {
          // Half of it is on its way into the stream: its leader goes away without a word.
          killed = true;
          await victim.kill();
        }
        res.write(bytes.subarray(offset, offset + piece));
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
      res.end();
    });
    try {
      const done = await settle(client, await client.queue.add('store', { source: { url: source.url() }, name: 'cluster.zip' }), 120_000);
      expect(killed).toBe(true);
      expect(done.failedReason).toBeUndefined();
      expect(done.state).toBe('completed');
      const result = done.result as StoreResult;
      expect(result).toMatchObject({ ref: { driver: 'js' }, size: bytes.length, sha256: sha256Hex(bytes), driversTried: ['js'], failedOver: false });

      // A new leader took over; the archive reads back whole from the two nodes left.
      expect(await streamLeader(bucket)).not.toBe(leader);
      const reader = new NatsDriver('reader', natsSettings(cluster.urls, bucket, { timeoutMs: 15_000 }), logger);
      try {
        const store = new ArchiveStore(reader, logger);
        const { stream, manifest } = await store.retrieve(result.ref.key);
        expect(manifest).toMatchObject({ size: bytes.length, sha256: sha256Hex(bytes) });
        expect(digestOf(await readAll(stream))).toEqual(digestOf(bytes));
        // One description on the key; the chunks of any attempt given up on are gone (or swept), only the archive's remain.
        const metas = (await admin.jsm.streams.info(streamName(bucket), { subjects_filter: metaSubjects(bucket) })).state.subjects ?? {};
        expect(metas[metaSubject(bucket, result.ref.key)]).toBe(1);
        await reader.sweepStaleUploads({ olderThanMs: 0 });
        const uploads = Object.keys((await admin.jsm.streams.info(streamName(bucket), { subjects_filter: chunkSubjects(bucket) })).state.subjects ?? {});
        expect(uploads).toHaveLength(1);
      } finally {
        await reader.close();
      }
    } finally {
      await source.close();
      await probe.close();
      await victim.start();
    }
  }, 180_000);
});
