/**
 * The nats driver beyond the conformance suite, on real nats-servers started
 * here: write-once against a concurrent writer (two drivers, one key, the same
 * moment), what the server answers mapped to the contract's codes, the
 * bucket's creation and checks, space from the server's limits, chunk
 * boundaries, the object store's other clients reading depot's archives, and
 * the sweep of abandoned uploads.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { archiveKey, newTaskId } from '../../src/contract';
import { loadConfig } from '../../src/config/load';
import { Redactor } from '../../src/support/redaction';
import { ArchiveStore, StoredArchive } from '../../src/storage/archive-store';
import type { StorageDriver } from '../../src/storage/driver';
import type { NatsConnection } from '../../src/storage/drivers/nats/client';
import { NatsDriver } from '../../src/storage/drivers/nats/driver';
import * as publish from '../../src/storage/drivers/nats/publish';
import { chunkSubject, chunkSubjects, metaSubject, metaSubjects, newUploadId, streamName } from '../../src/storage/drivers/nats/layout';
import { natsSettingsSchema } from '../../src/storage/drivers/nats';
import { silentLogger } from '../../src/support/logging';
import { failure } from '../helpers/depot-failure';
import { adminConnection, NATS_TEST_USER, natsSettings, NatsServer, startNatsServer, uniqueBucket } from '../helpers/nats-server';
import { digestOf, KiB, MiB, patternBytes, patternSource, readAll } from '../helpers/streams';

const logger = silentLogger();
const SCOPED_BUCKET = 'scoped-archives';

/** The NATS permissions docs/drivers/nats.md tells operators to grant depot's user for `bucket` (keep the two in step). */
function documentedPermissions(bucket: string) {
  const stream = `OBJ_${bucket}`;
  return {
    publish: {
      allow: [
        `$O.${bucket}.>`,
        '$JS.API.INFO',
        `$JS.API.STREAM.INFO.${stream}`,
        `$JS.API.STREAM.CREATE.${stream}`,
        `$JS.API.STREAM.MSG.GET.${stream}`,
        `$JS.API.DIRECT.GET.${stream}`,
        `$JS.API.STREAM.PURGE.${stream}`,
        `$JS.API.CONSUMER.CREATE.${stream}.>`,
        `$JS.API.CONSUMER.INFO.${stream}.>`,
        `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
        `$JS.API.CONSUMER.DELETE.${stream}.>`,
      ],
    },
    subscribe: { allow: ['_INBOX.>'] },
  };
}
const auth = { user: NATS_TEST_USER.user, password: NATS_TEST_USER.password };
const ACCOUNT_FILE_BYTES = 512 * MiB;
let server: NatsServer;
let admin: { nc: NatsConnection; jsm: JetStreamManager };
const drivers: NatsDriver[] = [];

beforeAll(async () => {
  server = await startNatsServer({
    account: {
      maxFileBytes: ACCOUNT_FILE_BYTES,
      maxMemoryBytes: 64 * MiB,
      users: [
        // Valid credentials, but no permission for any object store (only the JetStream API's account info).
        { user: 'reader', password: 'reader-password-1', permissions: { publish: { allow: ['$JS.API.INFO'] }, subscribe: { allow: ['_INBOX.>'] } } },
        // Exactly the permissions docs/drivers/nats.md lists for a bucket, and nothing else.
        { user: 'scoped', password: 'scoped-password-1', permissions: documentedPermissions(SCOPED_BUCKET) },
      ],
    },
  });
  admin = await adminConnection(server.url, { user: auth.user, pass: auth.password });
});

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await admin?.nc.close();
  await server?.destroy();
});

function driverFor(bucket: string, overrides: Record<string, unknown> = {}): NatsDriver {
  const driver = new NatsDriver('nats', natsSettings(server.url, bucket, { ...auth, ...overrides }), logger);
  drivers.push(driver);
  return driver;
}

function ref(name = 'exam.zip', taskId = newTaskId()) {
  return { key: archiveKey(new Date(), taskId, name), taskId, name };
}

/** How many messages each subject under `filter` holds, read directly from the stream. */
async function subjectCounts(bucket: string, filter: string): Promise<Record<string, number>> {
  const info = await admin.jsm.streams.info(streamName(bucket), { subjects_filter: filter });
  return info.state.subjects ?? {};
}

/** The driver, with what its store() answered written down (the shared layer's look before storing aside). */
function recording(driver: NatsDriver, outcomes: string[]): StorageDriver {
  return {
    name: driver.name,
    type: driver.type,
    capabilities: driver.capabilities,
    store: async (key, body, signal) => {
      const outcome = await driver.store(key, body, signal).catch((error: { code?: string }) => {
        outcomes.push(`failed: ${error.code}`);
        throw error;
      });
      outcomes.push(outcome.status);
      return outcome;
    },
    retrieve: (key, signal) => driver.retrieve(key, signal),
    stat: (key) => driver.stat(key),
    delete: (key) => driver.delete(key),
    list: (prefix) => driver.list(prefix),
    check: (signal) => driver.check(signal),
    space: () => driver.space(),
    close: () => driver.close(),
  };
}

/** Lets `parties` sources go on only once every one has sent its first piece, so their stores overlap. */
function gate(parties: number): () => Promise<void> {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let arrived = 0;
  return () => {
    arrived += 1;
    if (arrived >= parties) open();
    return opened;
  };
}

describe('write-once against a concurrent writer', () => {
  test('two drivers store the same task with the same bytes at the same moment: one archive, one description, one set of chunks; the other store is idempotent', async () => {
    const bucket = uniqueBucket('race');
    const outcomes: string[] = [];
    const stores = [new ArchiveStore(recording(driverFor(bucket), outcomes), logger), new ArchiveStore(recording(driverFor(bucket), outcomes), logger)];
    for (let round = 0; round < 8; round++) {
      outcomes.length = 0;
      const r = ref(`same-${round}.zip`);
      const size = 2 * MiB + round;
      const arrive = gate(2);
      const sources = stores.map(() =>
        patternSource(size, `race ${round}`, { chunkSize: 64 * KiB, afterChunk: (n) => (n === 64 * KiB ? arrive() : undefined) }),
      );
      const results = await Promise.all(stores.map((store, i) => store.store({ ...r, body: sources[i].stream })));
      expect(results.map((x: StoredArchive) => x.created).sort()).toEqual([false, true]);
      // Both got past the shared layer's look at the key: the server's condition decided, not a check before writing.
      expect(outcomes.sort()).toEqual(['created', 'exists']);
      expect(results[0].manifest).toEqual(results[1].manifest);
      // Exactly one description was ever published on the key's subject, and only its upload's chunks remain.
      expect(await subjectCounts(bucket, metaSubject(bucket, r.key))).toEqual({ [metaSubject(bucket, r.key)]: 1 });
      expect(Object.keys(await subjectCounts(bucket, chunkSubjects(bucket)))).toHaveLength(round + 1);
      const { stream } = await stores[round % 2].retrieve(r.key);
      expect(digestOf(await readAll(stream))).toEqual(sources[0].sent());
    }
  });

  test('two drivers store other bytes under one key at the same moment: one archive, the other store is a conflict', async () => {
    const bucket = uniqueBucket('race');
    const outcomes: string[] = [];
    const stores = [new ArchiveStore(recording(driverFor(bucket), outcomes), logger), new ArchiveStore(recording(driverFor(bucket), outcomes), logger)];
    for (let round = 0; round < 8; round++) {
      outcomes.length = 0;
      const r = ref(`contested-${round}.zip`);
      const arrive = gate(2);
      const sources = stores.map((_, i) =>
        patternSource(MiB, `contested ${round} ${i}`, { chunkSize: 64 * KiB, afterChunk: (n) => (n === 64 * KiB ? arrive() : undefined) }),
      );
      const results = await Promise.allSettled(stores.map((store, i) => store.store({ ...r, body: sources[i].stream })));
      const won = results.flatMap((x, i) => (x.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      const lost = results.find((x) => x.status === 'rejected');
      expect((lost as PromiseRejectedResult).reason).toMatchObject({ code: 'conflict' });
      expect(outcomes.sort()).toEqual(['created', 'exists']);
      expect(await subjectCounts(bucket, metaSubject(bucket, r.key))).toEqual({ [metaSubject(bucket, r.key)]: 1 });
      expect(Object.keys(await subjectCounts(bucket, chunkSubjects(bucket)))).toHaveLength(round + 1);
      const { stream } = await stores[1 - won[0]].retrieve(r.key);
      expect(digestOf(await readAll(stream))).toEqual(sources[won[0]].sent());
    }
  });

  test('what write-once rests on: of 40 concurrent publishes that expect no message on one subject, the server takes exactly one', async () => {
    const bucket = uniqueBucket('condition');
    const store = new ArchiveStore(driverFor(bucket), logger);
    await store.check(); // creates the bucket
    const js = admin.jsm.jetstream();
    const subject = metaSubject(bucket, ref().key);
    const outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => js.publish(subject, `writer ${i}`, { expect: { lastSubjectSequence: 0 } })));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 10071 });
  });

  describe('a server that lets a second conditional description through (nats-server#4320, #5794): depot looks after writing', () => {
    /** Makes the driver's description publish run as such a server would: `rival` lands beside it, before or after. */
    function admitBoth(rival: (subject: string) => Promise<void>, when: 'before' | 'after') {
      const real = publish.publishRetried;
      return jest.spyOn(publish, 'publishRetried').mockImplementation(async (session, subject, payload, options, budgetMs, signal) => {
        if (!options.expect) return real(session, subject, payload, options, budgetMs, signal);
        if (when === 'before') await rival(subject);
        // Admitted although the subject may hold a message: the condition left out, as the faulty servers did.
        const ack = await real(session, subject, payload, { msgID: options.msgID }, budgetMs, signal);
        if (when === 'after') await rival(subject);
        return ack;
      });
    }
    const foreign = (bucket: string) => async (subject: string) => {
      await admin.jsm.jetstream().publish(subject, JSON.stringify({ name: 'theirs', bucket, nuid: 'their-upload', size: 0, chunks: 0, mtime: '', digest: '' }));
    };

    afterEach(() => jest.restoreAllMocks());

    test('another description admitted first: depot puts it back on top, removes its own chunks, and the store is a conflict', async () => {
      const bucket = uniqueBucket('admitted-before');
      const store = new ArchiveStore(driverFor(bucket), logger);
      await store.check();
      const r = ref();
      admitBoth(foreign(bucket), 'before');
      const error = await failure(store.store({ ...r, body: Readable.from([patternBytes(20 * KiB, 'ours')]) }));
      expect(error.code).toBe('conflict');
      // Theirs, ours, theirs again: readers see the first writer's, and the key stays taken.
      expect(await subjectCounts(bucket, metaSubjects(bucket))).toEqual({ [metaSubject(bucket, r.key)]: 3 });
      const top = await admin.jsm.streams.getMessage(streamName(bucket), { last_by_subj: metaSubject(bucket, r.key) });
      expect(top?.json<{ nuid: string }>().nuid).toBe('their-upload');
      expect(await subjectCounts(bucket, chunkSubjects(bucket))).toEqual({});
      jest.restoreAllMocks();
      expect((await failure(store.store({ ...r, body: Readable.from([patternBytes(20 * KiB, 'ours')]) }))).code).toBe('conflict');
    });

    test("another description admitted after depot's and left on top: conflict (it hides depot's archive)", async () => {
      const bucket = uniqueBucket('admitted-after');
      const store = new ArchiveStore(driverFor(bucket, { timeoutMs: 1000 }), logger);
      await store.check();
      admitBoth(foreign(bucket), 'after');
      expect((await failure(store.store({ ...ref(), body: Readable.from([patternBytes(20 * KiB, 'ours')]) }))).code).toBe('conflict');
    });

    test("another description admitted after depot's, whose writer puts depot's back on top a moment later: depot's store succeeds", async () => {
      const bucket = uniqueBucket('stepped-back');
      const store = new ArchiveStore(driverFor(bucket), logger);
      await store.check();
      const r = ref();
      const bytes = patternBytes(20 * KiB, 'ours');
      admitBoth(async (subject) => {
        const js = admin.jsm.jetstream();
        const ours = await admin.jsm.streams.getMessage(streamName(bucket), { last_by_subj: subject });
        await js.publish(subject, JSON.stringify({ name: 'theirs', bucket, nuid: 'their-upload', size: 0, chunks: 0, mtime: '', digest: '' }));
        setTimeout(() => void js.publish(subject, ours?.data ?? ''), 300);
      }, 'after');
      expect(await store.store({ ...r, body: Readable.from([bytes]) })).toMatchObject({ created: true });
      jest.restoreAllMocks();
      expect(digestOf(await readAll((await store.retrieve(r.key)).stream))).toEqual(digestOf(bytes));
    });
  });

  test('check reports writeOnce enforced: the server refused a second description on a taken subject', async () => {
    const result = await new ArchiveStore(driverFor(uniqueBucket('check')), logger).check();
    expect(result).toMatchObject({ ok: true, writeOnce: 'enforced' });
  });
});

describe('what the server answers → the contract', () => {
  test('a wrong password is auth (not retried, fails over); the message holds no password', async () => {
    const password = 'not-the-password-0123';
    const store = new ArchiveStore(driverFor(uniqueBucket('auth'), { password }), logger);
    const error = await failure(store.stat(ref().key));
    expect(error.code).toBe('auth');
    expect(error.retryable).toBe(false);
    expect(error.message).not.toContain(password);
    expect(await store.check()).toMatchObject({ ok: false, error: { code: 'auth' } });
  });

  test('no credentials where the server wants some: auth', async () => {
    const driver = new NatsDriver('nats', natsSettings(server.url, uniqueBucket('auth')), logger);
    drivers.push(driver);
    expect((await failure(new ArchiveStore(driver, logger).stat(ref().key))).code).toBe('auth');
  });

  test('valid credentials without permission for the bucket: misconfigured (an operator must grant it), naming the subject', async () => {
    const store = new ArchiveStore(driverFor(uniqueBucket('perm'), { user: 'reader', password: 'reader-password-1' }), logger);
    const error = await failure(store.stat(ref().key));
    expect(error.code).toBe('misconfigured');
    expect(error.message).toMatch(/\$JS\.API\.STREAM\.INFO\.OBJ_perm/);
  });

  test('the permissions the documentation lists are enough for every operation, the bucket created by depot', async () => {
    const driver = driverFor(SCOPED_BUCKET, { user: 'scoped', password: 'scoped-password-1' });
    const store = new ArchiveStore(driver, logger);
    expect(await store.check()).toMatchObject({ ok: true, writeOnce: 'enforced' });
    const r = ref('scoped.zip');
    const bytes = patternBytes(1200 * KiB, 'scoped');
    await store.store({ ...r, body: Readable.from([bytes]) });
    expect(await store.store({ ...r, body: Readable.from([bytes]) })).toMatchObject({ created: false });
    expect((await store.stat(r.key))?.sha256).toBe(digestOf(bytes).sha256);
    expect(digestOf(await readAll((await store.retrieve(r.key)).stream))).toEqual(digestOf(bytes));
    const listed = [];
    for await (const manifest of store.list('')) listed.push(manifest.key);
    expect(listed).toEqual([r.key]);
    expect((await store.space()).totalBytes).toBe(ACCOUNT_FILE_BYTES);
    expect(await driver.sweepStaleUploads({ olderThanMs: 0 })).toBe(0);
    await store.delete(r.key);
    expect(await store.stat(r.key)).toBeNull();
  });

  test('nobody listening: unavailable, within timeoutMs', async () => {
    const driver = new NatsDriver('nats', natsSettings('nats://127.0.0.1:1', uniqueBucket('down'), { timeoutMs: 1000 }), logger);
    drivers.push(driver);
    const started = Date.now();
    const error = await failure(new ArchiveStore(driver, logger).stat(ref().key));
    expect(error.code).toBe('unavailable');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('a server without JetStream: misconfigured', async () => {
    const plain = await startNatsServer({ jetstream: false });
    try {
      const driver = new NatsDriver('nats', natsSettings(plain.url, uniqueBucket('nojs'), { timeoutMs: 2000 }), logger);
      drivers.push(driver);
      const error = await failure(new ArchiveStore(driver, logger).stat(ref().key));
      expect(error.code).toBe('misconfigured');
      expect(error.message).toMatch(/JetStream is not enabled/);
    } finally {
      await plain.destroy();
    }
  });

  test('a full bucket (the stream its operator limited): no_space; nothing visible, its chunks removed', async () => {
    const bucket = uniqueBucket('full');
    await admin.jsm.streams.add({
      name: streamName(bucket),
      subjects: [chunkSubjects(bucket), metaSubjects(bucket)],
      storage: 'file',
      discard: 'new',
      max_bytes: 1 * MiB,
      allow_rollup_hdrs: true,
    });
    const store = new ArchiveStore(driverFor(bucket, { maxChunkBytes: 64 * KiB }), logger);
    const r = ref('too-big.zip');
    // A body still being read when the stream refuses: the refusal is what the store reports, not the body cut off.
    const source = patternSource(2 * MiB, 'too big', { chunkSize: 64 * KiB, afterChunk: () => new Promise((resolve) => setImmediate(resolve)) });
    const error = await failure(store.store({ ...r, body: source.stream }));
    expect(error.code).toBe('no_space');
    expect(await store.stat(r.key)).toBeNull();
    expect(await subjectCounts(bucket, '>')).toEqual({});
    // Space says so too: the stream's limit is the total.
    expect(await store.space()).toMatchObject({ totalBytes: MiB, usedBytes: 0, freeBytes: MiB });
  });

  test('an existing stream that would lose archives by itself (a max age, discard old) or is no object store: misconfigured, untouched', async () => {
    const aged = uniqueBucket('aged');
    await admin.jsm.streams.add({ name: streamName(aged), subjects: [chunkSubjects(aged), metaSubjects(aged)], discard: 'new', max_age: 3600 * 1e9 });
    const old = uniqueBucket('old');
    await admin.jsm.streams.add({ name: streamName(old), subjects: [chunkSubjects(old), metaSubjects(old)], discard: 'old' });
    const other = uniqueBucket('other');
    await admin.jsm.streams.add({ name: streamName(other), subjects: [`elsewhere.${other}.>`] });
    for (const [bucket, why] of [
      [aged, /maximum age/],
      [old, /discard/],
      [other, /not an object store/],
    ] as const) {
      const error = await failure(new ArchiveStore(driverFor(bucket), logger).stat(ref().key));
      expect(error.code).toBe('misconfigured');
      expect(error.message).toMatch(why);
    }
    expect((await admin.jsm.streams.info(streamName(aged))).config.max_age).toBe(3600 * 1e9);
  });
});

describe('TLS', () => {
  test('a server that requires TLS: the driver connects with tls.caFile (a private CA); without it the certificate is not trusted and the check fails', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'depot-nats-tls-'));
    const run = (args: string[]) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn('openssl', args, { cwd: dir, stdio: 'ignore' });
        child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`openssl ${args[0]} exited with ${code}`))));
      });
    let tlsServer: NatsServer | undefined;
    try {
      await run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=depot test CA']);
      await run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
      // nats.js checks a certificate reached by IP address against the name localhost: both are in it.
      await writeFile(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
      await run([
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'server.pem',
        '-days',
        '1',
        '-extfile',
        'san.ext',
      ]);
      tlsServer = await startNatsServer({ tls: { certFile: path.join(dir, 'server.pem'), keyFile: path.join(dir, 'server.key') } });
      const servers = `tls://127.0.0.1:${tlsServer.port}`;
      const trusted = new NatsDriver('nats', natsSettings(servers, uniqueBucket('tls'), { tls: { caFile: path.join(dir, 'ca.pem') } }), logger);
      const untrusted = new NatsDriver('nats', natsSettings(servers, uniqueBucket('tls'), { timeoutMs: 2000 }), logger);
      drivers.push(trusted, untrusted);
      const checked = await new ArchiveStore(trusted, logger).check();
      expect(checked.error).toBeUndefined();
      expect(checked).toMatchObject({ ok: true, writeOnce: 'enforced' });
      expect(await new ArchiveStore(untrusted, logger).check()).toMatchObject({ ok: false, error: { code: 'misconfigured' } });
    } finally {
      await tlsServer?.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the bucket', () => {
  test('created when missing as an object store with the settings: file storage, discard new, no age limit', async () => {
    const bucket = uniqueBucket('created');
    await new ArchiveStore(driverFor(bucket), logger).stat(ref().key);
    const { config } = await admin.jsm.streams.info(streamName(bucket));
    expect(config).toMatchObject({
      subjects: [chunkSubjects(bucket), metaSubjects(bucket)],
      storage: 'file',
      num_replicas: 1,
      discard: 'new',
      max_age: 0,
    });
  });

  test('memory storage where asked for; replicas beyond a single server are refused by it: misconfigured', async () => {
    const memory = uniqueBucket('memory');
    await new ArchiveStore(driverFor(memory, { storage: 'memory' }), logger).stat(ref().key);
    expect((await admin.jsm.streams.info(streamName(memory))).config.storage).toBe('memory');
    const error = await failure(new ArchiveStore(driverFor(uniqueBucket('r3'), { replicas: 3 }), logger).stat(ref().key));
    expect(error.code).toBe('misconfigured');
  });
});

describe('space from the server', () => {
  test("the account's JetStream limit, when the stream has none; used is the bucket's bytes", async () => {
    const store = new ArchiveStore(driverFor(uniqueBucket('space')), logger);
    const r = ref();
    await store.store({ ...r, body: Readable.from([patternBytes(300 * KiB, 'space')]) });
    const space = await store.space();
    expect(space.totalBytes).toBe(ACCOUNT_FILE_BYTES);
    expect(space.usedBytes).toBeGreaterThanOrEqual(300 * KiB);
    expect(space.freeBytes).toBeLessThanOrEqual(ACCOUNT_FILE_BYTES - 300 * KiB);
  });

  test('a server without limits: used only (it names no total)', async () => {
    const open = await startNatsServer();
    try {
      const driver = new NatsDriver('nats', natsSettings(open.url, uniqueBucket('unlimited')), logger);
      drivers.push(driver);
      const space = await new ArchiveStore(driver, logger).space();
      expect(space).toEqual({ usedBytes: 0 });
    } finally {
      await open.destroy();
    }
  });
});

describe('chunks', () => {
  test('sizes around chunk boundaries round trip, in as many chunks as the description says', async () => {
    const bucket = uniqueBucket('chunks');
    const store = new ArchiveStore(driverFor(bucket, { maxChunkBytes: 1024 }), logger);
    for (const size of [0, 1, 1023, 1024, 1025, 2048, 10 * 1024 + 7]) {
      const r = ref(`size-${size}.bin`);
      const bytes = patternBytes(size, `size ${size}`);
      // Pieces of 700 bytes: chunk boundaries fall inside them.
      const pieces = Array.from({ length: Math.ceil(size / 700) }, (_, i) => bytes.subarray(i * 700, (i + 1) * 700));
      await store.store({ ...r, body: Readable.from(pieces) });
      const meta = await admin.jsm.streams.getMessage(streamName(bucket), { last_by_subj: metaSubject(bucket, r.key) });
      const info = meta?.json<{ chunks: number; nuid: string; size: number }>();
      expect(info).toMatchObject({ chunks: Math.ceil(size / 1024), size });
      if (info && info.chunks > 0)
        expect(await subjectCounts(bucket, chunkSubject(bucket, info.nuid))).toEqual({ [chunkSubject(bucket, info.nuid)]: info.chunks });
      const { stream } = await store.retrieve(r.key);
      expect(digestOf(await readAll(stream))).toEqual(digestOf(bytes));
    }
  });

  test("the object store's own clients read depot's archive, their digest check included", async () => {
    const bucket = uniqueBucket('compat');
    const store = new ArchiveStore(driverFor(bucket, { maxChunkBytes: 4 * KiB }), logger);
    const r = ref('compat.zip');
    const bytes = patternBytes(50 * KiB + 3, 'compat');
    await store.store({ ...r, body: Readable.from([bytes]) });
    const os = await new Objm(admin.nc).open(bucket);
    const info = await os.info(r.key);
    expect(info).toMatchObject({ size: bytes.length, chunks: 13 });
    expect(JSON.parse(info?.metadata?.['depot-manifest'] ?? '{}')).toMatchObject({ key: r.key, sha256: digestOf(bytes).sha256 });
    expect(Buffer.from((await os.getBlob(r.key)) ?? [])).toEqual(bytes);
  });

  test("a description whose digest is not the manifest's sha256: integrity, on stat and on retrieve", async () => {
    const bucket = uniqueBucket('digest');
    const store = new ArchiveStore(driverFor(bucket), logger);
    const r = ref('digest.zip');
    await store.store({ ...r, body: Readable.from([patternBytes(5 * KiB, 'digest')]) });
    const subject = metaSubject(bucket, r.key);
    const meta = await admin.jsm.streams.getMessage(streamName(bucket), { last_by_subj: subject });
    const info = meta?.json<Record<string, unknown>>() ?? {};
    // Rewritten behind depot's back with another digest (as a client that ignores the condition could).
    await admin.jsm.jetstream().publish(subject, JSON.stringify({ ...info, digest: `SHA-256=${Buffer.alloc(32, 7).toString('base64url')}=` }));
    expect((await failure(store.stat(r.key))).code).toBe('integrity');
    expect((await failure(store.retrieve(r.key))).code).toBe('integrity');
  });
});

describe('abandoned uploads', () => {
  /** A pid that no process has now: a child's, once it exited. */
  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((resolve) => child.once('exit', resolve));
    return child.pid ?? 0;
  }

  test('chunks no description names are removed when their writer (of this host) is gone, or are older than the threshold; a live upload and published archives stay', async () => {
    const bucket = uniqueBucket('sweep');
    const driver = driverFor(bucket);
    const store = new ArchiveStore(driver, logger);
    const kept = ref('kept.zip');
    const keptBytes = patternBytes(40 * KiB, 'kept');
    await store.store({ ...kept, body: Readable.from([keptBytes]) });
    const js = admin.jsm.jetstream();
    const dead = newUploadId().replace(`_${process.pid}_`, `_${await deadPid()}_`);
    const live = newUploadId(); // this process: running
    const foreign = 'someone-else-upload';
    for (const id of [dead, live, foreign]) await js.publish(chunkSubject(bucket, id), patternBytes(2 * KiB, id));
    const chunkUploads = async () => Object.keys(await subjectCounts(bucket, chunkSubjects(bucket))).length;
    expect(await chunkUploads()).toBe(4);

    expect(await driver.sweepStaleUploads()).toBe(1); // the dead writer's only; the rest are fresh
    expect(await subjectCounts(bucket, chunkSubject(bucket, dead))).toEqual({});
    expect(await chunkUploads()).toBe(3);

    expect(await driver.sweepStaleUploads({ olderThanMs: 0 })).toBe(2); // now everything nothing names
    expect(await chunkUploads()).toBe(1);
    const { stream } = await store.retrieve(kept.key);
    expect(digestOf(await readAll(stream))).toEqual(digestOf(keptBytes));
  });

  test('a store that fails half-way removes its own chunks at once', async () => {
    const bucket = uniqueBucket('halfway');
    const store = new ArchiveStore(driverFor(bucket, { maxChunkBytes: 4 * KiB }), logger);
    const source = patternSource(512 * KiB, 'half', { chunkSize: 16 * KiB, failAfter: 256 * KiB });
    await failure(store.store({ ...ref(), body: source.stream }));
    expect(await subjectCounts(bucket, '>')).toEqual({});
  });
});

describe('settings', () => {
  test('examples/depot.nats.yaml is valid; passwordFile is read as a secret and a relative credsFile resolved against the config file', async () => {
    const example = loadConfig({
      env: { DEPOT_CONFIG: path.join(__dirname, '../../examples/depot.nats.yaml'), NATS_URL: 'nats://nats:4222' },
      redactor: new Redactor(),
    });
    expect(example.defaultDriver).toBe('stream');
    expect(example.drivers.stream).toMatchObject({
      type: 'nats',
      servers: ['nats://nats:4222'],
      bucket: 'depot-archives',
      replicas: 1,
      storage: 'file',
      maxChunkBytes: 524288,
    });
    expect(example.failover).toEqual({ stream: ['local'] });

    const dir = await mkdtemp(path.join(tmpdir(), 'depot-nats-config-'));
    try {
      await writeFile(path.join(dir, 'nats-password'), 'from-a-file-0123\n');
      await writeFile(path.join(dir, 'depot.creds'), '-----BEGIN NATS USER JWT-----\n');
      await writeFile(
        path.join(dir, 'depot.yaml'),
        [
          'drivers:',
          '  a: { type: nats, servers: nats://n1:4222, bucket: b, user: depot, passwordFile: nats-password }',
          '  b: { type: nats, servers: nats://n1:4222, bucket: b, credsFile: depot.creds }',
          'defaultDriver: a',
          '',
        ].join('\n'),
      );
      const redactor = new Redactor();
      const config = loadConfig({ env: { DEPOT_CONFIG: path.join(dir, 'depot.yaml') }, redactor });
      expect(config.drivers.a).toMatchObject({ user: 'depot', password: 'from-a-file-0123' });
      expect(config.drivers.b).toMatchObject({ credsFile: path.join(dir, 'depot.creds') });
      expect(redactor.redact('login failed for from-a-file-0123')).not.toContain('from-a-file-0123');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('servers: one or a list; credentials in a URL refused; user and password together; one way to authenticate', () => {
    const base = { type: 'nats', bucket: 'archives' };
    expect(natsSettingsSchema.parse({ ...base, servers: 'nats://127.0.0.1:4222' }).servers).toEqual(['nats://127.0.0.1:4222']);
    expect(natsSettingsSchema.parse({ ...base, servers: ['a:4222', 'tls://b.example:4443'] })).toMatchObject({
      servers: ['a:4222', 'tls://b.example:4443'],
      replicas: 1,
      storage: 'file',
    });
    const issues = (raw: Record<string, unknown>) =>
      natsSettingsSchema.safeParse({ ...base, servers: 'x:1', ...raw }).error?.issues.map((i) => i.path.join('.'));
    expect(issues({ servers: 'nats://u:p@host:4222' })).toEqual(['servers']);
    expect(issues({ password: 'p' })).toEqual(['user']);
    expect(issues({ user: 'u' })).toEqual(['password']);
    expect(issues({ user: 'u', password: 'p', token: 't' })).toEqual(['token']);
    expect(issues({ bucket: 'a.b' })).toEqual(['bucket']);
    expect(issues({ tls: { certFile: '/c.pem' } })).toEqual(['tls.keyFile']);
    expect(issues({ tls: { caFile: 'relative/ca.pem' } })).toEqual(['tls.caFile']);
    expect(issues({ maxChunkBytes: 100 })).toEqual(['maxChunkBytes']);
  });
});
