/**
 * The one conformance suite every storage driver runs (like rclone's fstests or
 * Flysystem's adapter test case). Checks are data, so that the meta-test can run
 * each of them against deliberately broken drivers and prove it can fail.
 *
 * Every check goes through ArchiveStore, as depot does: hashing, size checks,
 * idempotency and retention live there, on top of the driver under test.
 */
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openSourceFile } from '../archiving/path-policy';
import { archiveKey, DepotError, ErrorCode, isErrorCode, Manifest, newTaskId } from '../contract';
import { ArchiveStore, StoreInput } from '../storage/archive-store';
import type { StorageDriver } from '../storage/driver';
import { silentLogger } from '../support/logging';
import { ConformanceRunner, expect, runnerTest, useRunner } from './runner';
import { delay, Digest, digestOf, digestStream, KiB, MiB, patternBytes, patternSource, readAll } from './streams';

export interface ConformanceHarness {
  name: string;
  /** fresh driver for a test, on a fresh empty backend area */
  makeDriver(): Promise<StorageDriver>;
  /** modify stored bytes of key behind the driver's back (e.g. chmod+rewrite a byte) */
  tamper(driver: StorageDriver, key: string): Promise<void>;
  /** another writer puts `bytes` at `key` behind the driver's back, without a manifest */
  plant(driver: StorageDriver, key: string, bytes: Buffer): Promise<void>;
  /** raw view of what is visible on the backend: all entries (paths/objects) excluding driver-internal staging — used to assert 'nothing visible' */
  visibleEntries(driver: StorageDriver): Promise<string[]>;
  /** Optional: the driver-internal staging entries (temp files, pending uploads) still there; failed stores must leave none. */
  stagingEntries?(driver: StorageDriver): Promise<string[]>;
  /** Optional: make the backend unusable (remove it, revoke access), so a connection check must then report ok: false. */
  breakBackend?(driver: StorageDriver): Promise<void>;
  cleanup(): Promise<void>;
}

export interface ConformanceCheck {
  name: string;
  timeoutMs?: number;
  run(h: ConformanceHarness): Promise<void>;
}

/** A check's own failure that is not an `expect` (the meta-test tells these from crashes). */
export class ConformanceFailure extends Error {
  override name = 'ConformanceFailure';
}

const DEFAULT_TIMEOUT_MS = 30_000;
const logger = silentLogger();

interface Context {
  h: ConformanceHarness;
  driver: StorageDriver;
  store: ArchiveStore;
}

/** A check that gets a fresh driver and an ArchiveStore on it, and closes the driver afterwards. */
function check(name: string, run: (ctx: Context) => Promise<void>, timeoutMs?: number): ConformanceCheck {
  return {
    name,
    timeoutMs,
    async run(h) {
      const driver = await h.makeDriver();
      try {
        await run({ h, driver, store: new ArchiveStore(driver, logger) });
      } finally {
        await driver.close();
      }
    },
  };
}

interface Ref {
  key: string;
  taskId: string;
  name: string;
}

function newRef(name: string, day = new Date(), taskId = newTaskId()): Ref {
  return { key: archiveKey(day, taskId, name), taskId, name };
}

/** `YYYY/MM/DD/` of a day, as keys start. */
function dayPrefix(day: Date): string {
  return archiveKey(day, 'x', 'x').slice(0, 'YYYY/MM/DD/'.length);
}

function bodyOf(bytes: Buffer): Readable {
  return Readable.from(bytes.length > 0 ? [bytes] : [], { objectMode: false });
}

async function storeBytes(store: ArchiveStore, ref: Ref, bytes: Buffer, extra: Partial<StoreInput> = {}) {
  return store.store({ ...ref, body: bodyOf(bytes), ...extra });
}

async function retrieveBytes(store: ArchiveStore, key: string): Promise<Buffer> {
  const { stream } = await store.retrieve(key);
  return readAll(stream);
}

/** Compares digests, so a mismatch reads as two checksums rather than two dumps of bytes. */
function expectSameBytes(actual: Buffer, expected: Buffer): void {
  expect(digestOf(actual)).toEqual(digestOf(expected));
}

/** List order is the backend's; checks compare sorted by key. */
function byKey(manifests: Manifest[]): Manifest[] {
  return [...manifests].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

async function listAll(store: ArchiveStore, prefix: string): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for await (const manifest of store.list(prefix)) out.push(manifest);
  return byKey(out);
}

/** The operation must reject with a DepotError (of `code`, when given). */
async function expectFailure(operation: Promise<unknown>, code?: ErrorCode): Promise<DepotError> {
  const wanted = code ? `a DepotError '${code}'` : 'a DepotError';
  const outcome = await operation.then(
    () => ({ failed: false as const }),
    (error: unknown) => ({ failed: true as const, error }),
  );
  if (!outcome.failed) throw new ConformanceFailure(`expected ${wanted}, but the operation succeeded`);
  if (!(outcome.error instanceof DepotError)) throw new ConformanceFailure(`expected ${wanted}, got ${String(outcome.error)}`);
  if (code) expect(outcome.error.code).toBe(code);
  return outcome.error;
}

/** After a failed store: no archive, no manifest, no staging leftovers, and the key reads as free. */
async function expectNothingLeft({ h, driver, store }: Context, key: string): Promise<void> {
  expect(await h.visibleEntries(driver)).toEqual([]);
  if (h.stagingEntries) expect(await h.stagingEntries(driver)).toEqual([]);
  expect(await store.stat(key)).toBeNull();
}

/**
 * The driver as a retried store sees it when another attempt published between
 * its stat and its write: stat finds nothing, so the driver's own publish must
 * refuse to replace the key.
 */
function staleStat(driver: StorageDriver): StorageDriver {
  return {
    name: driver.name,
    type: driver.type,
    capabilities: driver.capabilities,
    store: (key, body, signal) => driver.store(key, body, signal),
    retrieve: (key, signal) => driver.retrieve(key, signal),
    stat: () => Promise.resolve(null),
    delete: (key) => driver.delete(key),
    list: (prefix) => driver.list(prefix),
    check: (signal) => driver.check(signal),
    space: () => driver.space(),
    close: () => Promise.resolve(),
  };
}

/**
 * Lets `parties` sources go on only once all of them have started, so their
 * stores really overlap. A driver that caps its concurrency still gets through
 * after `fallbackMs` (this is liveness, not a timing assertion).
 */
function startGate(parties: number, fallbackMs: number): { arrive(): Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let arrived = 0;
  let timer: NodeJS.Timeout | undefined;
  void opened.then(() => clearTimeout(timer));
  return {
    arrive() {
      arrived += 1;
      if (arrived >= parties) open();
      else timer ??= setTimeout(open, fallbackMs);
      return opened;
    },
  };
}

function roundTrip(label: string, size: number, timeoutMs?: number): ConformanceCheck {
  return check(
    `round trip: ${label}`,
    async ({ store }) => {
      const ref = newRef(`round-trip-${label.replace(/\s/g, '')}.bin`);
      const source = patternSource(size, `round trip ${size}`);
      const stored = await store.store({ ...ref, body: source.stream, size });
      const sent: Digest = source.sent();
      expect(sent.size).toBe(size);
      expect(stored.created).toBe(true);
      expect(stored.manifest).toMatchObject({ key: ref.key, name: ref.name, taskId: ref.taskId, ...sent });
      expect(await store.stat(ref.key)).toEqual(stored.manifest);
      const { manifest, stream } = await store.retrieve(ref.key);
      expect(manifest).toEqual(stored.manifest);
      // sha256 on the receiving side, against the sending side's.
      expect(await digestStream(stream)).toEqual(sent);
    },
    timeoutMs,
  );
}

export const conformanceChecks: ConformanceCheck[] = [
  roundTrip('0 B', 0),
  roundTrip('1 B', 1),
  roundTrip('5 MiB', 5 * MiB),
  roundTrip('100 MiB', 100 * MiB, 180_000),

  check('manifest fields round trip', async ({ driver, store }) => {
    const ref = newRef('manifest.zip');
    const bytes = patternBytes(3000, 'manifest');
    const extra = {
      // A list value (CONTRACT §8: an archive holding several people's data) comes back as the same list, in order.
      metadata: { courseId: '12', userId: '34', 'note ✓': 'Grüße, 試験', userIds: ['34', '35', 'Grüße'], none: [] },
      retainUntil: '2099-01-31T00:00:00.000Z',
      deleteAfter: '2100-06-30T12:00:00.000Z',
    };
    const { manifest } = await storeBytes(store, ref, bytes, extra);
    expect(Number.isNaN(Date.parse(manifest.storedAt))).toBe(false);
    const expected: Manifest = { ...ref, ...digestOf(bytes), ...extra, storedAt: manifest.storedAt };
    expect(manifest).toEqual(expected);
    expect(await store.stat(ref.key)).toEqual(expected);
    const retrieved = await store.retrieve(ref.key);
    expect(retrieved.manifest).toEqual(expected);
    expectSameBytes(await readAll(retrieved.stream), bytes);
    if (driver.capabilities.list) expect(await listAll(store, ref.key)).toEqual([expected]);

    // Without the optional fields, none appear.
    const plain = newRef('plain.zip');
    const stored = await storeBytes(store, plain, bytes);
    const back = await store.stat(plain.key);
    expect(back).toEqual(stored.manifest);
    expect(back).toMatchObject({ metadata: {} });
    expect(back?.retainUntil).toBeUndefined();
    expect(back?.deleteAfter).toBeUndefined();
  }),

  check('same name twice: two keys, both intact', async ({ driver, store }) => {
    const first = newRef('exam.zip');
    const second = newRef('exam.zip');
    if (first.key === second.key) throw new ConformanceFailure('two taskIds gave one key');
    const bytesA = patternBytes(10 * KiB, 'same name a');
    const bytesB = patternBytes(12 * KiB, 'same name b');
    expect((await storeBytes(store, first, bytesA)).created).toBe(true);
    expect((await storeBytes(store, second, bytesB)).created).toBe(true);
    expectSameBytes(await retrieveBytes(store, first.key), bytesA);
    expectSameBytes(await retrieveBytes(store, second.key), bytesB);
    if (driver.capabilities.list) expect((await listAll(store, '')).map((m) => m.key)).toEqual([first.key, second.key].sort());
  }),

  check('re-store of the same bytes is idempotent', async ({ h, driver, store }) => {
    const ref = newRef('again.zip');
    // Larger than the shared layer's stream buffers, so a driver that answers before reading the body is exercised.
    const bytes = patternBytes(3 * MiB, 'again');
    const first = await storeBytes(store, ref, bytes, digestOf(bytes));
    expect(first.created).toBe(true);
    const visible = await h.visibleEntries(driver);
    const retries = [
      () => storeBytes(store, ref, bytes, digestOf(bytes)), // a retry that knows its checksum
      () => storeBytes(store, ref, bytes), // one that does not: hashed and compared
      () => storeBytes(new ArchiveStore(staleStat(driver), logger), ref, bytes), // the driver itself finds the key taken
    ];
    for (const retry of retries) {
      const again = await retry();
      expect(again.created).toBe(false);
      expect(again.manifest).toEqual(first.manifest);
    }
    expect(await h.visibleEntries(driver)).toEqual(visible);
    if (driver.capabilities.list) expect(await listAll(store, '')).toEqual([first.manifest]);
    expectSameBytes(await retrieveBytes(store, ref.key), bytes);
  }),

  check('re-store of other bytes is a conflict; the original stays intact', async ({ h, driver, store }) => {
    const ref = newRef('contested.zip');
    const original = patternBytes(3 * MiB, 'original');
    const other = patternBytes(3 * MiB, 'other');
    const first = await storeBytes(store, ref, original);
    const visible = await h.visibleEntries(driver);
    await expectFailure(storeBytes(store, ref, other), 'conflict');
    await expectFailure(storeBytes(store, ref, other, digestOf(other)), 'conflict');
    await expectFailure(storeBytes(new ArchiveStore(staleStat(driver), logger), ref, other), 'conflict');
    expect(await store.stat(ref.key)).toEqual(first.manifest);
    expectSameBytes(await retrieveBytes(store, ref.key), original);
    expect(await h.visibleEntries(driver)).toEqual(visible);
  }),

  check('a retry whose key holds other bytes than its manifest is a conflict, never an idempotent success', async ({ h, driver, store }) => {
    const ref = newRef('replaced.zip');
    const bytes = patternBytes(64 * KiB, 'replaced');
    await storeBytes(store, ref, bytes);
    // Another writer changes the bytes; the manifest still matches the task (same sha256 and size),
    // so only the stored bytes can tell — as when a store that ignores conditional writes let a writer in.
    await h.tamper(driver, ref.key);
    await expectFailure(storeBytes(store, ref, bytes, digestOf(bytes)), 'conflict');
    await expectFailure(storeBytes(new ArchiveStore(staleStat(driver), logger), ref, bytes), 'conflict');
  }),

  check("another writer's object at depot's key (no manifest): conflict; never replaced, adopted or deleted", async ({ h, driver, store }) => {
    const ref = newRef('foreign.zip');
    // Another size than depot's bytes: a store that raced past its look at the key can tell it is not its own.
    await h.plant(driver, ref.key, patternBytes(4 * KiB, 'theirs'));
    const visible = await h.visibleEntries(driver);
    const ours = patternBytes(5 * KiB, 'ours');
    await expectFailure(store.stat(ref.key), 'conflict');
    await expectFailure(storeBytes(store, ref, ours), 'conflict');
    await expectFailure(storeBytes(new ArchiveStore(staleStat(driver), logger), ref, ours), 'conflict');
    await expectFailure(store.delete(ref.key), 'conflict');
    await expectFailure(store.retrieve(ref.key), 'conflict');
    // Nothing replaced, nothing added beside it (no manifest of depot's claims it), nothing deleted.
    expect(await h.visibleEntries(driver)).toEqual(visible);
  }),

  check('wrong sha256: integrity, nothing visible', async (ctx) => {
    const ref = newRef('checksum.zip');
    const size = 256 * KiB;
    const wrong = digestOf(patternBytes(size, 'other bytes')).sha256;
    const source = patternSource(size, 'checksum', { chunkSize: 64 * KiB });
    await expectFailure(ctx.store.store({ ...ref, body: source.stream, sha256: wrong }), 'integrity');
    await expectNothingLeft(ctx, ref.key);
    // Nothing blocks the key either: the right bytes can be stored there now.
    const bytes = patternBytes(size, 'checksum');
    expect((await storeBytes(ctx.store, ref, bytes, digestOf(bytes))).created).toBe(true);
  }),

  check('wrong size (too small or too big): integrity, nothing visible', async (ctx) => {
    const actual = 256 * KiB;
    for (const declared of [actual - 1, actual + 1]) {
      const ref = newRef(`size-${declared}.zip`);
      const source = patternSource(actual, 'size', { chunkSize: 64 * KiB });
      await expectFailure(ctx.store.store({ ...ref, body: source.stream, size: declared }), 'integrity');
      await expectNothingLeft(ctx, ref.key);
    }
  }),

  check('tampered archive: reading it fails with integrity', async ({ h, driver, store }) => {
    const ref = newRef('tampered.zip');
    const bytes = patternBytes(64 * KiB, 'tampered');
    await storeBytes(store, ref, bytes);
    // Untouched it reads back fine, so the failure below is the tampering's.
    expectSameBytes(await retrieveBytes(store, ref.key), bytes);
    await h.tamper(driver, ref.key);
    await expectFailure(retrieveBytes(store, ref.key), 'integrity');
  }),

  check('missing key: retrieve and delete are not_found, stat is null', async ({ store }) => {
    const expectMissing = async (key: string) => {
      expect(await store.stat(key)).toBeNull();
      await expectFailure(store.retrieve(key), 'not_found');
      await expectFailure(store.delete(key), 'not_found');
    };
    await expectMissing(newRef('never-stored.zip').key); // an empty backend
    const present = newRef('present.zip');
    await storeBytes(store, present, patternBytes(1000, 'present'));
    await expectMissing(present.key.replace(/[^/]+$/, 'sibling.zip')); // same task, other name
    await expectMissing(newRef('present.zip').key); // same name, other task
  }),

  check('delete removes the archive and its manifest', async ({ h, driver, store }) => {
    const keep = newRef('keep.zip');
    const keepBytes = patternBytes(4 * KiB, 'keep');
    await storeBytes(store, keep, keepBytes);
    const before = await h.visibleEntries(driver);
    const gone = newRef('gone.zip');
    await storeBytes(store, gone, patternBytes(5 * KiB, 'gone'));
    expect(await h.visibleEntries(driver)).not.toEqual(before);
    await store.delete(gone.key);
    expect(await store.stat(gone.key)).toBeNull();
    await expectFailure(store.retrieve(gone.key), 'not_found');
    await expectFailure(store.delete(gone.key), 'not_found');
    expect(await h.visibleEntries(driver)).toEqual(before);
    if (driver.capabilities.list) expect((await listAll(store, '')).map((m) => m.key)).toEqual([keep.key]);
    expectSameBytes(await retrieveBytes(store, keep.key), keepBytes);
  }),

  check('retention: delete refused while retainUntil is ahead, allowed after it', async ({ driver, store }) => {
    const now = new Date();
    const retainUntil = new Date(now.getTime() + 24 * 60 * 60 * 1000).toISOString();
    const ref = newRef('retained.zip');
    const bytes = patternBytes(2 * KiB, 'retained');
    await storeBytes(store, ref, bytes, { retainUntil });
    await expectFailure(store.delete(ref.key, { now }), 'retention');
    expect((await store.stat(ref.key))?.retainUntil).toBe(retainUntil);
    expectSameBytes(await retrieveBytes(store, ref.key), bytes);
    // A backend that enforces retention itself (WORM) keeps refusing until the real clock gets there.
    if (!driver.capabilities.retention) {
      await store.delete(ref.key, { now: new Date(Date.parse(retainUntil) + 1000) });
      expect(await store.stat(ref.key)).toBeNull();
    }
  }),

  check('list: prefix filtering returns exactly the stored manifests', async ({ driver, store }) => {
    if (!driver.capabilities.list) return; // nothing to check for a driver that says it cannot list
    const today = new Date();
    const leapDay = new Date('2020-02-29T12:00:00Z');
    const alpha = newTaskId();
    const beta = newTaskId();
    const refs = [
      newRef('a.zip', today, alpha),
      newRef('b.zip', today, alpha),
      newRef('a.zip', today, beta),
      newRef('c.zip', leapDay, newTaskId()),
      // A producer-chosen taskId and a name may start with a dot; they are archives like any other.
      newRef('.d.zip', today, `.producer-${newTaskId()}`),
    ];
    const stored: Manifest[] = [];
    for (const [i, ref] of refs.entries()) stored.push((await storeBytes(store, ref, patternBytes(100 + i, ref.key))).manifest);
    const [alphaA, alphaB, betaA, leap, dotted] = stored;
    expect(await listAll(store, '')).toEqual(byKey(stored));
    expect(await listAll(store, dayPrefix(today))).toEqual(byKey([alphaA, alphaB, betaA, dotted]));
    expect(await listAll(store, `${dayPrefix(today)}${alpha}/`)).toEqual(byKey([alphaA, alphaB]));
    expect(await listAll(store, `${dayPrefix(today)}${alpha}`)).toEqual(byKey([alphaA, alphaB]));
    expect(await listAll(store, alphaA.key)).toEqual([alphaA]);
    expect(await listAll(store, '2020/02/')).toEqual([leap]);
    expect(await listAll(store, '1999/')).toEqual([]);
  }),

  check('check: ok with timings, leaves no probe behind', async ({ h, driver, store }) => {
    const result = await store.check();
    expect(result.error).toBeUndefined();
    expect(result.ok).toBe(true);
    for (const ms of [result.writeMs, result.readMs, result.deleteMs]) {
      expect(typeof ms).toBe('number');
      expect(Number.isFinite(ms)).toBe(true);
      expect(ms).toBeGreaterThanOrEqual(0);
    }
    expect(await h.visibleEntries(driver)).toEqual([]);
    // The check must really touch the backend: without one it fails.
    if (h.breakBackend) {
      await h.breakBackend(driver);
      const failed = await store.check();
      expect(failed.ok).toBe(false);
      expect(isErrorCode(failed.error?.code)).toBe(true);
    }
  }),

  check('space: figures present are finite, non-negative and consistent', async ({ driver, store }) => {
    const space = await store.space();
    for (const figure of [space.totalBytes, space.freeBytes, space.usedBytes]) {
      if (figure === undefined) continue;
      expect(typeof figure).toBe('number');
      expect(Number.isFinite(figure)).toBe(true);
      expect(figure).toBeGreaterThanOrEqual(0);
    }
    if (space.totalBytes !== undefined && space.freeBytes !== undefined) expect(space.freeBytes).toBeLessThanOrEqual(space.totalBytes);
    if (space.totalBytes !== undefined && space.usedBytes !== undefined) expect(space.usedBytes).toBeLessThanOrEqual(space.totalBytes);
    // A driver that says it reports space reports something.
    if (driver.capabilities.space) expect(space.totalBytes !== undefined || space.freeBytes !== undefined).toBe(true);
  }),

  check('Unicode names round trip exactly (NFC and NFD are two names)', async ({ driver, store }) => {
    const day = new Date();
    const taskId = newTaskId();
    const nfc = 'Caf\u00e9 Übung.zip';
    const nfd = nfc.normalize('NFD');
    const long = '試験'.repeat(41) + 'x📦.zip'; // 246 + 1 + 4 + 4 = 255 bytes of UTF-8
    const names = ['Prüfung – Ωmega 試験 📦.zip', nfc, nfd, long];
    if (nfc === nfd || Buffer.byteLength(long, 'utf8') !== 255) throw new ConformanceFailure('the test names are not what they claim');
    const refs = names.map((name) => newRef(name, day, taskId));
    const bytes = names.map((name, i) => patternBytes(1000 + i, name));
    for (const [i, ref] of refs.entries()) {
      const { manifest, created } = await storeBytes(store, ref, bytes[i]);
      expect(created).toBe(true);
      expect(manifest.name).toBe(ref.name);
      expect(manifest.key).toBe(ref.key);
    }
    for (const [i, ref] of refs.entries()) {
      expect((await store.stat(ref.key))?.name).toBe(ref.name);
      expectSameBytes(await retrieveBytes(store, ref.key), bytes[i]);
    }
    if (driver.capabilities.list) {
      const listed = await listAll(store, `${dayPrefix(day)}${taskId}/`);
      expect(listed.map((m) => m.name).sort()).toEqual([...names].sort());
      expect(listed.map((m) => m.key).sort()).toEqual(refs.map((r) => r.key).sort());
    }
  }),

  check('20 concurrent stores do not interfere', async ({ driver, store }) => {
    const count = 20;
    const chunkSize = 16 * KiB;
    const gate = startGate(count, 2000);
    const jobs = Array.from({ length: count }, (_, i) => ({
      ref: newRef(`concurrent-${i}.bin`),
      // Distinct sizes and contents; each source waits after its first chunk until all stores run.
      source: patternSource(64 * KiB + i * 4099, `concurrent ${i}`, {
        chunkSize,
        afterChunk: (produced) => (produced === chunkSize ? gate.arrive() : undefined),
      }),
    }));
    const results = await Promise.allSettled(jobs.map(({ ref, source }) => store.store({ ...ref, body: source.stream })));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    expect(failures).toEqual([]);
    for (const { ref, source } of jobs) {
      const { manifest, stream } = await store.retrieve(ref.key);
      expect(manifest).toMatchObject({ key: ref.key, ...source.sent() });
      expect(await digestStream(stream)).toEqual(source.sent());
    }
    if (driver.capabilities.list) expect(await listAll(store, '')).toHaveLength(count);
  }),

  check('aborted store: rejects and leaves nothing', async (ctx) => {
    const ref = newRef('aborted.bin');
    const controller = new AbortController();
    const size = 64 * MiB;
    // A slow source; the abort comes once some bytes went through, outside the source's own call.
    const source = patternSource(size, 'aborted', {
      chunkSize: 64 * KiB,
      afterChunk: async (produced) => {
        if (produced >= 256 * KiB && !controller.signal.aborted) setImmediate(() => controller.abort());
        await delay(2);
      },
    });
    await expectFailure(ctx.store.store({ ...ref, body: source.stream, signal: controller.signal }), 'unavailable');
    expect(controller.signal.aborted).toBe(true);
    expect(source.sent().size).toBeLessThan(size);
    expect(source.stream.destroyed).toBe(true);
    await expectNothingLeft(ctx, ref.key);
  }),

  check('source failing mid-way: store rejects, nothing visible', async (ctx) => {
    const ref = newRef('broken-source.bin');
    const source = patternSource(MiB, 'broken source', { chunkSize: 64 * KiB, failAfter: 256 * KiB });
    await expectFailure(ctx.store.store({ ...ref, body: source.stream }));
    await expectNothingLeft(ctx, ref.key);
  }),

  // A path source comes as a file too (StoreInput.file): a driver with storeFile may copy it instead of reading it.
  check(
    'a local source file (16 MiB): stored intact; again: idempotent; other bytes: conflict',
    async ({ store }) => {
      const file = await localSourceFile(16 * MiB, 'local file');
      try {
        const ref = newRef('local-file.bin');
        const stored = await store.store({ ...ref, ...(await file.open()) });
        expect(stored.created).toBe(true);
        expect(stored.manifest).toMatchObject({ key: ref.key, ...file.digest });
        expect(await digestStream((await store.retrieve(ref.key)).stream)).toEqual(file.digest);
        expect((await store.store({ ...ref, ...(await file.open()) })).created).toBe(false);
        const other = await localSourceFile(16 * MiB, 'other local file');
        try {
          await expectFailure(store.store({ ...ref, ...(await other.open()) }), 'conflict');
        } finally {
          await other.remove();
        }
        expect(await digestStream((await store.retrieve(ref.key)).stream)).toEqual(file.digest);
      } finally {
        await file.remove();
      }
    },
    60_000,
  ),

  check(
    'a local source file that is not what the task declares (sha256, size): integrity, nothing visible',
    async (ctx) => {
      const file = await localSourceFile(16 * MiB, 'declared wrongly');
      try {
        const ref = newRef('local-file-wrong.bin');
        const wrongSha = await expectFailure(ctx.store.store({ ...ref, ...(await file.open()), sha256: '0'.repeat(64) }), 'integrity');
        expect(wrongSha.field).toBe('sha256');
        const wrongSize = await expectFailure(ctx.store.store({ ...ref, ...(await file.open()), size: file.digest.size - 1 }), 'integrity');
        expect(wrongSize.field).toBe('size');
        await expectNothingLeft(ctx, ref.key);
      } finally {
        await file.remove();
      }
    },
    60_000,
  ),

  // A retrieve to a path fills a local file (ArchiveStore.retrieveInto): a driver with retrieveFile may copy into it.
  check(
    'an archive retrieved into a local file (16 MiB): the file holds it; tampered: integrity',
    async ({ h, driver, store }) => {
      const file = await localSourceFile(16 * MiB, 'retrieved file');
      const dir = await mkdtemp(path.join(tmpdir(), 'depot-conformance-target-'));
      /** Retrieves into a new file of `dir`, as a retrieve to a path does; resolves with the manifest and the file's digest. */
      const retrieveInto = async (key: string, name: string) => {
        const handle = await open(path.join(dir, name), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
        try {
          const into = { handle, dev: (await handle.stat()).dev, link: `/proc/${process.pid}/fd/${handle.fd}` };
          const manifest = await store.retrieveInto(key, into);
          return { manifest, written: await digestStream(createReadStream(path.join(dir, name))) };
        } finally {
          await handle.close();
        }
      };
      try {
        const ref = newRef('retrieved-file.bin');
        const stored = await store.store({ ...ref, ...(await file.open()) });
        const { manifest, written } = await retrieveInto(ref.key, 'first.bin');
        expect(manifest).toEqual(stored.manifest);
        expect(written).toEqual(file.digest);
        await h.tamper(driver, ref.key);
        await expectFailure(retrieveInto(ref.key, 'tampered.bin'), 'integrity');
      } finally {
        await file.remove();
        await rm(dir, { recursive: true, force: true });
      }
    },
    60_000,
  ),
];

/** A file of `size` pattern bytes in the temp directory, opened as depot opens a path source (file and stream). */
async function localSourceFile(size: number, seed: string) {
  const dir = await mkdtemp(path.join(tmpdir(), 'depot-conformance-source-'));
  const file = path.join(dir, 'source.bin');
  const source = patternSource(size, seed);
  await pipeline(source.stream, createWriteStream(file));
  return {
    digest: source.sent(),
    async open(): Promise<Pick<StoreInput, 'body' | 'file' | 'sourceSize'>> {
      const { handle, size: length, local } = await openSourceFile(file, undefined);
      return { body: createReadStream('', { fd: handle }), file: local, sourceSize: length };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Runs one check on a fresh harness and cleans up after it, pass or fail. */
export async function runCheck(check: ConformanceCheck, makeHarness: () => ConformanceHarness | Promise<ConformanceHarness>): Promise<void> {
  const h = await makeHarness();
  try {
    await check.run(h);
  } finally {
    await h.cleanup();
  }
}

/**
 * Registers one test per check, with the runner's `test` and `expect` as given,
 * else its globals (jest's).
 */
export function describeConformance(makeHarness: () => ConformanceHarness | Promise<ConformanceHarness>, runner: ConformanceRunner = {}): void {
  useRunner(runner);
  const test = runnerTest();
  for (const c of conformanceChecks) {
    test(c.name, () => runCheck(c, makeHarness), c.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }
}
