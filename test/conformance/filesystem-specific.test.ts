/** What only the filesystem driver promises, beyond the shared conformance suite. */
import { watch } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ArchiveKey, archiveKey, DepotError, ErrorCode, Manifest, newTaskId, toArchiveKey } from '../../src/contract';
import { ArchiveStore } from '../../src/storage/archive-store';
import type { ArchiveBody } from '../../src/storage/driver';
import { FilesystemDriver, filesystemSettingsSchema } from '../../src/storage/drivers/filesystem';
import { serializeManifest, sidecarName } from '../../src/storage/manifest';
import { silentLogger } from '../../src/support/logging';
import { STAGING_DIR } from '../helpers/filesystem-harness';
import { delay, digestOf, KiB, MiB, patternBytes, patternSource } from '../helpers/streams';

/** Above Linux's largest possible pid_max (2^22): never a live process. */
const DEAD_PID = 4_194_304 + 1;
/** How the driver tags its staging files: `<host>-<pid>-<random hex>.part`. */
const HOST_TAG = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
const DAY = new Date('2026-01-02T10:00:00Z');

let sandbox: string;
let root: string;

beforeEach(async () => {
  // The root sits inside a sandbox, so "nothing written outside the root" can be checked.
  sandbox = await mkdtemp(path.join(tmpdir(), 'depot-fs-'));
  root = path.join(sandbox, 'root');
});

afterEach(async () => {
  await rm(sandbox, { recursive: true, force: true });
});

function makeDriver(dir = root): FilesystemDriver {
  return new FilesystemDriver('local', filesystemSettingsSchema.parse({ type: 'filesystem', root: dir }));
}

function makeStore(driver = makeDriver()): ArchiveStore {
  return new ArchiveStore(driver, silentLogger());
}

function newRef(name: string, day = DAY) {
  const taskId = newTaskId();
  return { key: archiveKey(day, taskId, name), taskId, name };
}

function bodyOf(bytes: Buffer): Readable {
  return Readable.from([bytes], { objectMode: false });
}

async function rejection(operation: Promise<unknown>): Promise<DepotError> {
  const error = await operation.then(
    () => new Error('expected the operation to fail'),
    (e: unknown) => e,
  );
  if (!(error instanceof DepotError)) throw error;
  return error;
}

async function expectCode(operation: Promise<unknown>, code: ErrorCode): Promise<void> {
  expect((await rejection(operation)).code).toBe(code);
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => !e.isDirectory()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

const stagingEntries = () => readdir(path.join(root, STAGING_DIR));

test('archives and their manifests are read-only (0444)', async () => {
  const ref = newRef('exam.zip');
  await makeStore().store({ ...ref, body: bodyOf(patternBytes(1000, 'mode')) });
  const file = path.join(root, ...ref.key.split('/'));
  expect((await stat(file)).mode & 0o777).toBe(0o444);
  expect((await stat(path.join(path.dirname(file), sidecarName(ref.name)))).mode & 0o777).toBe(0o444);
});

test('the manifest is a sidecar <key>.depot.json; a name too long for that gets a hashed sidecar name', async () => {
  const store = makeStore();
  const short = newRef('exam.zip');
  const long = newRef('ü'.repeat(125) + '.zip'); // 254 bytes: "<name>.depot.json" would pass 255
  for (const ref of [short, long]) {
    const { manifest } = await store.store({ ...ref, body: bodyOf(patternBytes(500, ref.name)), metadata: { courseId: '7' } });
    const dir = path.join(root, ...ref.key.split('/').slice(0, -1));
    const sidecar = path.join(dir, sidecarName(ref.name));
    expect(JSON.parse(await readFile(sidecar, 'utf8'))).toEqual(manifest);
    expect((await readdir(dir)).sort()).toEqual([ref.name, path.basename(sidecar)].sort());
  }
  expect(await readFile(path.join(root, `${short.key}.depot.json`), 'utf8')).toContain('"courseId": "7"');
  expect(sidecarName(long.name)).toMatch(/^\.[0-9a-f]{32}\.depot\.json$/);
});

test('path traversal keys are refused with invalid_task; nothing is written outside the root', async () => {
  const driver = makeDriver();
  const store = makeStore(driver);
  const taskId = newTaskId();
  const keys = [
    '../../../etc/passwd',
    '/2026/01/02/t/x.zip',
    '2026/01/02/../x.zip',
    '2026/01/02/./x.zip',
    `2026/01/02/${taskId}/..`,
    `2026/01/02/${taskId}/.`,
    `2026/01/02/${taskId}/../../x.zip`,
    `2026/01/02/${taskId}/..\\..\\x.zip`,
    `2026/01/02/${taskId}/a/b.zip`,
    `../01/02/${taskId}/x.zip`,
    `2026/01/02/${taskId}/x\u0000.zip`,
    `2026/01/02/${taskId}/`,
  ];
  const manifest = (): Manifest => ({ ...digestOf(Buffer.from('x')), name: 'x.zip', key: 'x', storedAt: '', taskId, metadata: {} });
  // The driver in use (its root made), so that anything a refused key wrote beside the root would show.
  expect(await driver.stat(toArchiveKey(archiveKey(new Date(), taskId, 'x.zip')))).toBeNull();
  // A driver is given parsed keys only: the parse every caller makes (toArchiveKey) is what refuses these.
  const withKey = <T>(key: string, call: (parsed: ArchiveKey) => Promise<T>): Promise<T> => Promise.resolve().then(() => call(toArchiveKey(key)));
  for (const key of keys) {
    const body: ArchiveBody = { stream: bodyOf(Buffer.from('x')), manifest, declared: {} };
    await expectCode(
      withKey(key, (k) => driver.store(k, body, new AbortController().signal)),
      'invalid_task',
    );
    await expectCode(
      withKey(key, (k) => driver.retrieve(k, new AbortController().signal)),
      'invalid_task',
    );
    await expectCode(
      withKey(key, (k) => driver.stat(k)),
      'invalid_task',
    );
    await expectCode(
      withKey(key, (k) => driver.delete(k)),
      'invalid_task',
    );
    await expectCode(store.store({ key, taskId, name: 'x.zip', body: bodyOf(Buffer.from('x')) }), 'invalid_task');
  }
  expect(await readdir(sandbox)).toEqual(['root']);
  expect(await filesUnder(root)).toEqual([]);
});

test('a symlink planted inside the root and pointing outside is refused; nothing is written outside', async () => {
  const elsewhere = path.join(sandbox, 'elsewhere');
  await mkdir(elsewhere);
  await mkdir(root);
  await symlink(elsewhere, path.join(root, '2026'));
  // And a dangling one, whose target mkdir must not create.
  await symlink(path.join(sandbox, 'gone'), path.join(root, '2025'));
  const store = makeStore();
  await rejection(store.store({ ...newRef('exam.zip'), body: bodyOf(patternBytes(2000, 'escape')) }));
  await rejection(store.store({ ...newRef('exam.zip', new Date('2025-03-04T00:00:00Z')), body: bodyOf(patternBytes(2000, 'dangling')) }));
  expect(await readdir(elsewhere, { recursive: true })).toEqual([]);
  expect((await readdir(sandbox)).sort()).toEqual(['elsewhere', 'root']);
  expect(await stagingEntries()).toEqual([]);
});

test('an archive reachable only through a symlink out of the root is not served', async () => {
  // A complete archive outside the root, then a link to its year directory inside the root.
  const outside = path.join(sandbox, 'outside');
  const ref = newRef('secret.zip');
  await makeStore(makeDriver(outside)).store({ ...ref, body: bodyOf(patternBytes(2000, 'secret')) });
  await mkdir(root);
  await symlink(path.join(outside, '2026'), path.join(root, '2026'));
  const store = makeStore();
  await rejection(store.stat(ref.key));
  await rejection(store.retrieve(ref.key));
  await rejection(store.delete(ref.key));
  expect(await filesUnder(path.join(outside, '2026'))).toHaveLength(2); // archive and manifest still there
});

test('a symlink in place of an archive is not followed', async () => {
  const ref = newRef('linked.zip');
  const dir = path.join(root, ...ref.key.split('/').slice(0, -1));
  const target = path.join(sandbox, 'target.bin');
  const bytes = patternBytes(100, 'linked');
  await writeFile(target, bytes);
  await mkdir(dir, { recursive: true });
  await symlink(target, path.join(dir, ref.name));
  const manifest: Manifest = { ...ref, ...digestOf(bytes), storedAt: new Date().toISOString(), metadata: {} };
  await writeFile(path.join(dir, sidecarName(ref.name)), serializeManifest(manifest));
  const store = makeStore();
  await expectCode(store.stat(ref.key), 'integrity');
  await expectCode(store.retrieve(ref.key), 'integrity');
});

test('leftover staging files of a dead process are removed on first use; a live one is kept', async () => {
  const staging = path.join(root, STAGING_DIR);
  await mkdir(staging, { recursive: true });
  const files = {
    deadPart: `${HOST_TAG}-${DEAD_PID}-0123abcd.part`,
    deadManifest: `${HOST_TAG}-${DEAD_PID}-0123abcd.manifest`,
    live: `${HOST_TAG}-${process.pid}-4567ef01.part`,
    otherHostRecent: `elsewhere.example-${DEAD_PID}-89ab.part`, // another host's writer may still be running
    otherHostOld: `elsewhere.example-${DEAD_PID}-cdef.part`, // untouched for two days: a leftover whoever wrote it
  };
  for (const name of Object.values(files)) await writeFile(path.join(staging, name), 'partial');
  const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
  await utimes(path.join(staging, files.otherHostOld), twoDaysAgo, twoDaysAgo);

  const driver = makeDriver();
  expect(await readdir(staging)).toHaveLength(5); // nothing happens before the first use
  expect(await driver.stat(toArchiveKey(newRef('any.zip').key))).toBeNull();
  expect((await readdir(staging)).sort()).toEqual([files.live, files.otherHostRecent].sort());
});

test('the staging directory is empty after successful, failed and aborted stores', async () => {
  const store = makeStore();
  const bytes = patternBytes(300 * KiB, 'staging');

  await store.store({ ...newRef('ok.zip'), body: bodyOf(bytes) });
  expect(await stagingEntries()).toEqual([]);

  await expectCode(store.store({ ...newRef('bad-sum.zip'), body: bodyOf(bytes), sha256: digestOf(Buffer.from('other')).sha256 }), 'integrity');
  expect(await stagingEntries()).toEqual([]);

  await expectCode(store.store({ ...newRef('bad-size.zip'), body: bodyOf(bytes), size: bytes.length + 1 }), 'integrity');
  expect(await stagingEntries()).toEqual([]);

  const failing = patternSource(MiB, 'failing', { chunkSize: 64 * KiB, failAfter: 128 * KiB });
  await rejection(store.store({ ...newRef('failing.zip'), body: failing.stream }));
  expect(await stagingEntries()).toEqual([]);

  const controller = new AbortController();
  const slow = patternSource(64 * MiB, 'slow', {
    chunkSize: 64 * KiB,
    afterChunk: async (produced) => {
      // Abort once the driver has staged some bytes.
      if (produced >= 256 * KiB && !controller.signal.aborted) {
        const staged = await stagingEntries();
        if (staged.length > 0) setImmediate(() => controller.abort());
      }
      await delay(2);
    },
  });
  await expectCode(store.store({ ...newRef('aborted.zip'), body: slow.stream, signal: controller.signal }), 'unavailable');
  expect(controller.signal.aborted).toBe(true);
  expect(await stagingEntries()).toEqual([]);

  // Only the successful store left anything: its archive and manifest.
  expect((await filesUnder(root)).map((f) => path.basename(f)).sort()).toEqual(['ok.zip', 'ok.zip.depot.json']);
  expect((await lstat(path.join(root, STAGING_DIR))).isDirectory()).toBe(true);
});

describe("the driver's own directories are real directories inside the root", () => {
  const old = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);

  /** Files untouched for two days, one named like a staging file of a dead writer: what a sweep would take. */
  async function oldFilesIn(dir: string): Promise<string[]> {
    const names = [`${HOST_TAG}-${DEAD_PID}-0123abcd.part`, 'exam.zip', 'exam.zip.depot.json'];
    for (const name of names) {
      await writeFile(path.join(dir, name), 'keep me');
      await utimes(path.join(dir, name), old, old);
    }
    return names.sort();
  }

  test('a .depot-tmp that is a symlink is refused (misconfigured); the sweep deletes nothing through it', async () => {
    const elsewhere = path.join(sandbox, 'elsewhere');
    await mkdir(elsewhere);
    const kept = await oldFilesIn(elsewhere);
    await mkdir(root);
    await symlink(elsewhere, path.join(root, STAGING_DIR));
    const store = makeStore();
    const error = await rejection(store.store({ ...newRef('exam.zip'), body: bodyOf(patternBytes(100, 'via link')) }));
    expect(error.code).toBe('misconfigured');
    expect(error.message).toContain(STAGING_DIR);
    await expectCode(store.stat(newRef('any.zip').key), 'misconfigured');
    expect((await readdir(elsewhere)).sort()).toEqual(kept);
  });

  test('a dangling .depot-tmp symlink is refused and not followed', async () => {
    await mkdir(root);
    await symlink(path.join(sandbox, 'gone'), path.join(root, STAGING_DIR));
    await expectCode(makeStore().stat(newRef('any.zip').key), 'misconfigured');
    expect((await readdir(sandbox)).sort()).toEqual(['root']);
  });

  test('the sweep removes only staging files, nothing else that is old in .depot-tmp', async () => {
    const staging = path.join(root, STAGING_DIR);
    await mkdir(staging, { recursive: true });
    const others = (await oldFilesIn(staging)).filter((name) => !name.endsWith('.part'));
    await mkdir(path.join(staging, 'a-dir'));
    await makeDriver().stat(toArchiveKey(newRef('any.zip').key));
    expect((await readdir(staging)).sort()).toEqual(['a-dir', ...others].sort());
  });

  test('a .depot-check that is a symlink fails the connection check; no probe goes through it', async () => {
    const elsewhere = path.join(sandbox, 'elsewhere');
    await mkdir(elsewhere);
    await mkdir(root);
    await symlink(elsewhere, path.join(root, '.depot-check'));
    const seen: string[] = [];
    const watcher = watch(elsewhere, (_event, name) => name && seen.push(name));
    try {
      const result = await makeStore().check();
      expect(result).toMatchObject({ ok: false, error: { code: 'misconfigured' } });
      expect(result.error?.message).toContain('.depot-check');
    } finally {
      watcher.close();
    }
    expect(seen).toEqual([]);
    expect(await readdir(elsewhere)).toEqual([]);
  });
});

describe("manifests are never another archive's", () => {
  const future = '2099-01-01T00:00:00.000Z';

  test('an archive named like a sidecar is refused, so it cannot plant a manifest for the next archive of its task', async () => {
    const store = makeStore();
    const taskId = newTaskId();
    const bytes = patternBytes(2000, 'the real x');
    const x = { key: archiveKey(DAY, taskId, 'x'), taskId, name: 'x' };
    const planted: Manifest = { ...x, ...digestOf(bytes), taskId: 'someone-else', storedAt: new Date().toISOString(), metadata: {} };
    for (const name of ['x.depot.json', 'x.DEPOT.JSON']) {
      const decoy = { key: archiveKey(DAY, taskId, name), taskId, name };
      await expectCode(store.store({ ...decoy, body: bodyOf(serializeManifest(planted)) }), 'invalid_task');
    }
    const stored = await store.store({ ...x, body: bodyOf(bytes), retainUntil: future, metadata: { owner: 'me' } });
    expect(stored.created).toBe(true);
    expect(stored.manifest).toMatchObject({ taskId, retainUntil: future, metadata: { owner: 'me' } });
    expect(await store.stat(x.key)).toEqual(stored.manifest);
    await expectCode(store.delete(x.key), 'retention');
  });

  /** A manifest already at a key whose archive is missing (planted, or another writer's), then the driver's own store of that key. */
  async function storeOverPlanted(differ: Partial<Manifest>) {
    const ref = newRef('exam.zip');
    const bytes = patternBytes(3000, 'planted');
    const wanted: Manifest = { ...ref, ...digestOf(bytes), storedAt: new Date().toISOString(), metadata: { courseId: '7' }, retainUntil: future };
    const planted: Manifest = { ...wanted, storedAt: '2026-01-02T10:00:00.000Z', ...differ };
    const dir = path.join(root, ...ref.key.split('/').slice(0, -1));
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, sidecarName(ref.name)), serializeManifest(planted));
    const driver = makeDriver();
    const outcome = await driver.store(toArchiveKey(ref.key), { stream: bodyOf(bytes), manifest: () => wanted, declared: {} }, new AbortController().signal);
    const archivePresent = await stat(path.join(dir, ref.name)).then(
      () => true,
      () => false,
    );
    return { outcome, planted, archivePresent };
  }

  test.each<[string, Partial<Manifest>]>([
    ['another taskId', { taskId: 'someone-else' }],
    ['no retention', { retainUntil: undefined }],
    ['other retention', { retainUntil: '2030-01-01T00:00:00.000Z' }],
    ['a deleteAfter', { deleteAfter: '2027-01-01T00:00:00.000Z' }],
    ['other metadata', { metadata: { courseId: '8' } }],
    ['more metadata', { metadata: { courseId: '7', extra: '' } }],
  ])('a found manifest with %s is not adopted: the key is taken (exists), no archive is published', async (_label, differ) => {
    const { outcome, planted, archivePresent } = await storeOverPlanted(differ);
    expect(outcome).toEqual({ status: 'exists', existing: JSON.parse(serializeManifest(planted).toString()) });
    expect(archivePresent).toBe(false);
  });

  test('through the shared layer, a store over a foreign manifest is conflict', async () => {
    const ref = newRef('exam.zip');
    const bytes = patternBytes(3000, 'foreign');
    const dir = path.join(root, ...ref.key.split('/').slice(0, -1));
    await mkdir(dir, { recursive: true });
    const foreign: Manifest = { ...ref, ...digestOf(bytes), taskId: 'someone-else', storedAt: new Date().toISOString(), metadata: {} };
    await writeFile(path.join(dir, sidecarName(ref.name)), serializeManifest(foreign));
    await expectCode(makeStore().store({ ...ref, body: bodyOf(bytes), retainUntil: future }), 'conflict');
    expect(await readdir(dir)).toEqual([sidecarName(ref.name)]);
  });

  test("a found manifest that is the store's own but for storedAt (an earlier attempt) is completed", async () => {
    const { outcome, planted, archivePresent } = await storeOverPlanted({});
    expect(outcome).toEqual({ status: 'created', manifest: planted });
    expect(archivePresent).toBe(true);
  });
});
