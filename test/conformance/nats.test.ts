import type { JetStreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import type { StorageDriver } from '../../src/storage/driver';
import type { NatsConnection } from '../../src/storage/drivers/nats/client';
import { NatsDriver } from '../../src/storage/drivers/nats/driver';
import { chunkSubject, chunkSubjects, metaSubject, metaSubjects, nuidOfChunkSubject, streamName } from '../../src/storage/drivers/nats/layout';
import { silentLogger } from '../../src/support/logging';
import { adminConnection, NATS_TEST_USER, natsSettings, NatsServer, startNatsServer, uniqueBucket } from '../helpers/nats-server';
import { ConformanceHarness, describeConformance } from './suite';

/**
 * The conformance suite against a real nats-server (2.9.10) with JetStream,
 * started here on a free loopback port: an account with JetStream limits (so
 * space has the server's own figures) and a password (so the driver logs
 * in). One fresh bucket per driver, created by the driver itself; the
 * harness looks at the stream directly, as another client would.
 */
let server: NatsServer;
let admin: { nc: NatsConnection; jsm: JetStreamManager };
const auth = { user: NATS_TEST_USER.user, pass: NATS_TEST_USER.password };

beforeAll(async () => {
  server = await startNatsServer({ account: { maxFileBytes: 4 * 1024 ** 3, maxMemoryBytes: 256 * 1024 ** 2 } });
  admin = await adminConnection(server.url, auth);
});

afterAll(async () => {
  await admin?.nc.close();
  await server?.destroy();
});

/** The last message of every subject under `filter`, by subject. */
async function lastMessages(jsm: JetStreamManager, stream: string, filter: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  let info;
  try {
    info = await jsm.streams.info(stream, { subjects_filter: filter });
  } catch {
    return out; // no stream (yet, or any more)
  }
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    const message = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    if (message) out.set(subject, message.data);
  }
  return out;
}

interface Described {
  name: string;
  nuid: string;
  deleted?: boolean;
}

/** The objects' descriptions in a bucket, read without the driver. */
async function descriptions(bucket: string): Promise<Described[]> {
  const metas = await lastMessages(admin.jsm, streamName(bucket), metaSubjects(bucket));
  return [...metas.values()].map((data) => JSON.parse(Buffer.from(data).toString('utf8')) as Described);
}

function natsHarness(): ConformanceHarness {
  const buckets = new Map<StorageDriver, string>();
  const bucketOf = (driver: StorageDriver): string => {
    const bucket = buckets.get(driver);
    if (!bucket) throw new Error('driver was not made by this harness');
    return bucket;
  };

  return {
    name: 'nats',

    async makeDriver() {
      const bucket = uniqueBucket('conformance');
      const driver = new NatsDriver('conformance', natsSettings(server.url, bucket, { user: auth.user, password: auth.pass }), silentLogger());
      buckets.set(driver, bucket);
      return driver;
    },

    async tamper(driver, key) {
      // The object's first chunk replaced by itself with its first byte flipped (it moves to the end of the
      // subject, as a rewritten message must): only the bytes differ, the description and manifest stay.
      const bucket = bucketOf(driver);
      const stream = streamName(bucket);
      const meta = await admin.jsm.streams.getMessage(stream, { last_by_subj: metaSubject(bucket, key) });
      if (!meta) throw new Error(`nothing stored at ${key}`);
      const { nuid } = meta.json<Described>();
      const subject = chunkSubject(bucket, nuid);
      const first = await admin.jsm.streams.getMessage(stream, { seq: 1, next_by_subj: subject } as { seq: number });
      const bytes = Buffer.from(first?.data ?? []);
      if (bytes.length === 0) bytes.writeUInt8(0x2a);
      else bytes[0] ^= 0xff;
      if (first) await admin.jsm.streams.deleteMessage(stream, first.seq);
      const js = admin.jsm.jetstream();
      await js.publish(subject, bytes);
    },

    async plant(driver, key, bytes) {
      // Another client of the object store writes the key its own way (no manifest, no condition).
      const os = await new Objm(admin.nc).create(bucketOf(driver));
      await os.putBlob({ name: key }, bytes);
    },

    async visibleEntries(driver) {
      return (await descriptions(bucketOf(driver)))
        .filter((d) => !d.deleted)
        .map((d) => d.name)
        .sort();
    },

    async stagingEntries(driver) {
      // Chunks that no description names: an upload that never became an object.
      const bucket = bucketOf(driver);
      const named = new Set((await descriptions(bucket)).filter((d) => !d.deleted).map((d) => d.nuid));
      const chunks = await lastMessages(admin.jsm, streamName(bucket), chunkSubjects(bucket));
      return [...chunks.keys()]
        .map((subject) => nuidOfChunkSubject(bucket, subject) ?? subject)
        .filter((nuid) => !named.has(nuid))
        .map((nuid) => `chunks of upload ${nuid}`)
        .sort();
    },

    async breakBackend(driver) {
      // The bucket disappears under the running driver.
      await admin.jsm.streams.delete(streamName(bucketOf(driver)));
    },

    async cleanup() {
      for (const bucket of buckets.values()) await admin.jsm.streams.delete(streamName(bucket)).catch(() => undefined);
      buckets.clear();
    },
  };
}

describe('nats driver (nats-server 2.9 with JetStream): conformance', () => {
  describeConformance(() => natsHarness());
});
