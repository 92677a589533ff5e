/**
 * The FTP driver against things planted in its root on the server's disk
 * (issue 9, path confinement): a `.depot-tmp` that is a symlink, files in
 * `.depot-tmp` that are not depot's, and a manifest at a key that is not the
 * store's own.
 */
import { chown, mkdir, readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { archiveKey, DepotError, Manifest, newTaskId, toArchiveKey } from '../../src/contract';
import { ArchiveStore } from '../../src/storage/archive-store';
import { FtpDriver } from '../../src/storage/drivers/ftp';
import { serializeManifest, sidecarName } from '../../src/storage/manifest';
import { silentLogger } from '../../src/support/logging';
import { adoptNodeErrorsInBasicFtp, ftpDriverSettings, FtpServer, startFtpServer } from '../helpers/ftp-server';
import { delay, digestOf, patternBytes } from '../helpers/streams';

// Socket errors must look like errors to basic-ftp under jest (see the helper).
adoptNodeErrorsInBasicFtp();

const logger = silentLogger();
/** Above Linux's largest possible pid_max (2^22): never a live process. */
const DEAD_PID = 4_194_304 + 1;
const HOST_TAG = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
const STAGING_DIR = '.depot-tmp';
const TWO_DAYS_AGO = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);

let server: FtpServer;
const drivers: FtpDriver[] = [];

beforeAll(async () => {
  server = await startFtpServer({ tls: 'off' });
}, 30_000);

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await server?.destroy();
});

async function setup() {
  const { ftpPath, diskPath } = await server.makeRoot();
  const driver = new FtpDriver('ftp', ftpDriverSettings(server, ftpPath), logger);
  drivers.push(driver);
  const owner = await stat(diskPath);
  /** What we make on disk belongs to the FTP user, as if it had made it. */
  const own = (file: string) => chown(file, owner.uid, owner.gid);
  return { driver, store: new ArchiveStore(driver, logger), diskPath, own };
}

function newRef(name = 'exam.zip') {
  const taskId = newTaskId();
  return { key: archiveKey(new Date(), taskId, name), taskId, name };
}

function bodyOf(bytes: Buffer): Readable {
  return Readable.from([bytes], { objectMode: false });
}

async function failure(operation: Promise<unknown>): Promise<DepotError> {
  const error = await operation.then(
    () => new Error('expected the operation to fail'),
    (e: unknown) => e,
  );
  if (!(error instanceof DepotError)) throw error;
  return error;
}

/** Old files, one named like a dead writer's staging file: what a sweep would remove if it looked there. */
async function oldFilesIn(dir: string, own: (file: string) => Promise<void>): Promise<{ staging: string; others: string[] }> {
  const staging = `${HOST_TAG}-${DEAD_PID}-0123abcd.part`;
  const others = ['exam.zip', 'exam.zip.depot.json'];
  for (const name of [staging, ...others]) {
    await writeFile(path.join(dir, name), 'keep me');
    await own(path.join(dir, name));
    await utimes(path.join(dir, name), TWO_DAYS_AGO, TWO_DAYS_AGO);
  }
  return { staging, others };
}

describe('.depot-tmp', () => {
  test('a .depot-tmp that is a symlink is refused (misconfigured); nothing is swept through it', async () => {
    const { store, diskPath, own } = await setup();
    const elsewhere = path.join(diskPath, 'elsewhere');
    await mkdir(elsewhere);
    await own(elsewhere);
    const { staging, others } = await oldFilesIn(elsewhere, own);
    // Relative, so it leads to the same place inside the server's chroot and outside it.
    await symlink('elsewhere', path.join(diskPath, STAGING_DIR));
    const error = await failure(store.store({ ...newRef(), body: bodyOf(patternBytes(100, 'via link')) }));
    expect(error.code).toBe('misconfigured');
    expect(error.message).toContain(STAGING_DIR);
    await delay(500); // the sweep runs in the background: give it time to do harm
    expect((await readdir(elsewhere)).sort()).toEqual([staging, ...others].sort());
  });

  test('the sweep removes only staging files, nothing else that is old in .depot-tmp', async () => {
    const { store, diskPath, own } = await setup();
    const dir = path.join(diskPath, STAGING_DIR);
    await mkdir(dir);
    await own(dir);
    const { staging, others } = await oldFilesIn(dir, own);
    await store.store({ ...newRef(), body: bodyOf(patternBytes(100, 'sweep')) });
    // The sweep runs in the background: wait until it has removed the dead writer's file, then look at the rest.
    for (let i = 0; i < 100 && (await readdir(dir)).includes(staging); i += 1) await delay(50);
    await delay(200);
    expect((await readdir(dir)).sort()).toEqual(others.sort());
  });
});

describe('.depot-check', () => {
  test('a .depot-check that is a symlink fails the check (misconfigured); no probe is written through it', async () => {
    const { store, diskPath, own } = await setup();
    const elsewhere = path.join(diskPath, 'elsewhere');
    await mkdir(elsewhere);
    await own(elsewhere);
    await symlink('elsewhere', path.join(diskPath, '.depot-check'));
    const result = await store.check();
    expect(result).toMatchObject({ ok: false, error: { code: 'misconfigured' } });
    expect(result.error?.message).toContain('.depot-check');
    expect(await readdir(elsewhere)).toEqual([]);
  });
});

describe("a manifest found at the key is adopted only when it is the store's own", () => {
  const future = '2099-01-01T00:00:00.000Z';

  async function storeOverPlanted(differ: Partial<Manifest>) {
    const { driver, store, diskPath, own } = await setup();
    const ref = newRef();
    const bytes = patternBytes(3000, 'planted');
    const wanted: Manifest = { ...ref, ...digestOf(bytes), storedAt: new Date().toISOString(), metadata: { courseId: '7' }, retainUntil: future };
    const planted: Manifest = { ...wanted, storedAt: '2026-01-02T10:00:00.000Z', ...differ };
    const segments = ref.key.split('/').slice(0, -1);
    for (let i = 1; i <= segments.length; i += 1) {
      await mkdir(path.join(diskPath, ...segments.slice(0, i)), { recursive: true });
      await own(path.join(diskPath, ...segments.slice(0, i)));
    }
    const dir = path.join(diskPath, ...segments);
    await writeFile(path.join(dir, sidecarName(ref.name)), serializeManifest(planted));
    await own(path.join(dir, sidecarName(ref.name)));
    const outcome = await driver.store(toArchiveKey(ref.key), { stream: bodyOf(bytes), manifest: () => wanted, declared: {} }, new AbortController().signal);
    return { outcome, planted, dir, ref, bytes, store };
  }

  test.each<[string, Partial<Manifest>]>([
    ['another taskId', { taskId: 'someone-else' }],
    ['no retention', { retainUntil: undefined }],
    ['other metadata', { metadata: { courseId: '8' } }],
  ])('one with %s is not adopted: the key is taken (exists), no archive is published', async (_label, differ) => {
    const { outcome, planted, dir, ref } = await storeOverPlanted(differ);
    expect(outcome).toEqual({ status: 'exists', existing: JSON.parse(serializeManifest(planted).toString()) });
    expect(await readdir(dir)).toEqual([sidecarName(ref.name)]);
  });

  test('through the shared layer, a store over a foreign manifest is conflict', async () => {
    const { planted, ref, bytes, store } = await storeOverPlanted({ taskId: 'someone-else' });
    expect(planted.taskId).toBe('someone-else');
    expect((await failure(store.store({ ...ref, body: bodyOf(bytes), retainUntil: future, metadata: { courseId: '7' } }))).code).toBe('conflict');
  });

  test('one that differs only in storedAt (an earlier attempt) is completed', async () => {
    const { outcome, planted, dir, ref } = await storeOverPlanted({});
    expect(outcome).toEqual({ status: 'created', manifest: planted });
    expect((await readdir(dir)).sort()).toEqual([ref.name, sidecarName(ref.name)].sort());
  });
});
