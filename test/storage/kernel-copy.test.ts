import { chmod, mkdtemp, open, readdir, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { openSource } from '../../src/archiving/sources';
import { RetrievedArchive, writeToPath } from '../../src/archiving/targets';
import { newTaskId, archiveKey, DepotError } from '../../src/contract';
import { ArchiveStore } from '../../src/storage/archive-store';
import { FilesystemDriver } from '../../src/storage/drivers/filesystem';
import { filesystemSettingsSchema } from '../../src/storage/drivers/filesystem/types';
import { silentLogger } from '../../src/support/logging';
import { archiveKeysBelow, digestFile, stagingEntries, TempDirs, writePatternFile } from '../helpers/queue-harness';
import { MiB } from '../helpers/streams';

/**
 * A path source on the filesystem driver's own filesystem is copied into the
 * staging file inside the kernel and hashed from the staged copy (issue 19,
 * src/storage/drivers/filesystem/kernel-copy.ts); one elsewhere is streamed.
 * Elsewhere a source of that size is copied through two reused buffers.
 * Whatever the source does during the copy, the manifest describes the bytes
 * the archive holds, or nothing is published. A retrieve to a path is copied
 * the same way, and its file checked against the manifest before it appears.
 */
jest.setTimeout(120_000);

const temp = new TempDirs();
const logger = silentLogger();
const policy = { inlineBytes: MiB, timeoutMs: 10_000, maxDurationMs: 60_000, maxBytes: 1024 * MiB };

const shmDirs: string[] = [];
afterAll(async () => {
  await temp.cleanup();
  await Promise.all(shmDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function setup() {
  const work = await temp.make('depot-kernel-copy-');
  const root = path.join(work, 'archive');
  const driver = new FilesystemDriver('local', filesystemSettingsSchema.parse({ type: 'filesystem', root }));
  return { work, root, driver, store: new ArchiveStore(driver, logger) };
}

/** Opens `file` as a store task's path source, exactly as the task runner does. */
async function pathSource(file: string) {
  const source = await openSource({ path: file }, policy, new AbortController().signal);
  return { body: source.stream, file: source.file, sourceSize: source.totalBytes };
}

function ref(name: string) {
  const taskId = newTaskId();
  return { key: archiveKey(new Date(), taskId, name), taskId, name };
}

test('a source on the root’s filesystem is copied, not read: its stream stays unread and the archive holds its bytes', async () => {
  const { work, root, driver, store } = await setup();
  const file = path.join(work, 'source.bin');
  const digest = await writePatternFile(file, 32 * MiB, 'kernel');
  const source = await pathSource(file);
  expect(source.file).toBeDefined();
  const stored = await store.store({ ...ref('copied.bin'), ...source });
  expect(source.body.readableDidRead).toBe(false);
  expect(stored.manifest).toMatchObject(digest);
  expect(await digestFile(path.join(root, ...stored.manifest.key.split('/')))).toEqual(digest);
  expect(await stagingEntries(root)).toEqual([]);
  await driver.close();
});

/** A folder on /dev/shm (a tmpfs): another filesystem than the temp directory's, where the driver's roots are. */
async function elsewhereDir(work: string): Promise<string> {
  // The case only exists where the two differ: /dev/shm is a tmpfs, the temp directory is not.
  expect((await stat('/dev/shm')).dev).not.toBe((await stat(work)).dev);
  const elsewhere = await mkdtemp('/dev/shm/depot-kernel-copy-');
  shmDirs.push(elsewhere);
  return elsewhere;
}

test('a source on another filesystem (tmpfs) is copied through reused buffers, not streamed: the archive holds its bytes', async () => {
  const { root, driver, store, work } = await setup();
  const file = path.join(await elsewhereDir(work), 'source.bin');
  // Not a whole number of the copy's 1 MiB segments: the last one is short.
  const digest = await writePatternFile(file, 16 * MiB + 12_345, 'buffered');
  const source = await pathSource(file);
  const stored = await store.store({ ...ref('buffered.bin'), ...source });
  expect(source.body.readableDidRead).toBe(false);
  expect(stored.manifest).toMatchObject(digest);
  expect(await digestFile(path.join(root, ...stored.manifest.key.split('/')))).toEqual(digest);
  expect(await stagingEntries(root)).toEqual([]);
  await driver.close();
});

test('a source on another filesystem that is not what the task declares: integrity, nothing published, no staging file', async () => {
  const { root, driver, store, work } = await setup();
  const file = path.join(await elsewhereDir(work), 'declared.bin');
  const digest = await writePatternFile(file, 16 * MiB, 'declared');
  const wrongSize = await store.store({ ...ref('declared.bin'), ...(await pathSource(file)), size: digest.size + 1 }).then(
    () => null,
    (error: unknown) => error,
  );
  expect(wrongSize).toMatchObject({ code: 'integrity', field: 'size' });
  const wrongSha = await store.store({ ...ref('declared.bin'), ...(await pathSource(file)), sha256: '0'.repeat(64) }).then(
    () => null,
    (error: unknown) => error,
  );
  expect(wrongSha).toMatchObject({ code: 'integrity', field: 'sha256' });
  expect(await archiveKeysBelow(root)).toEqual([]);
  expect(await stagingEntries(root)).toEqual([]);
  await driver.close();
});

describe('a source that changes during the copy', () => {
  const SIZE = 512 * MiB;

  test('cut short, with its size declared: integrity, nothing published, no staging file', async () => {
    const { work, root, driver, store } = await setup();
    const file = path.join(work, 'shrinking.bin');
    const digest = await writePatternFile(file, SIZE, 'shrinks');
    let cut = false;
    const outcome = await store
      .store({
        ...ref('shrinking.bin'),
        ...(await pathSource(file)),
        size: SIZE,
        sha256: digest.sha256,
        onBytes: () => {
          if (cut) return;
          cut = true;
          void truncate(file, 3 * MiB);
        },
      })
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(cut).toBe(true);
    expect(outcome).toBeInstanceOf(DepotError);
    expect(outcome).toMatchObject({ code: 'integrity', field: 'size' });
    expect(await archiveKeysBelow(root)).toEqual([]);
    expect(await stagingEntries(root)).toEqual([]);
    await driver.close();
  });

  test('overwritten in place, nothing declared: the manifest’s sha256 and size are those of the bytes the archive holds', async () => {
    const { work, root, driver, store } = await setup();
    const file = path.join(work, 'changing.bin');
    const original = await writePatternFile(file, SIZE, 'changes');
    let changed: Promise<void> | undefined;
    const stored = await store.store({
      ...ref('changing.bin'),
      ...(await pathSource(file)),
      onBytes: () => {
        // Near the end of the file, which the copy has not reached yet when the first segment is hashed.
        changed ??= open(file, 'r+').then(async (handle) => {
          await handle.write(Buffer.alloc(MiB, 0xee), 0, MiB, SIZE - 2 * MiB);
          await handle.close();
        });
      },
    });
    await changed;
    const archived = await digestFile(path.join(root, ...stored.manifest.key.split('/')));
    expect(stored.manifest).toMatchObject(archived);
    // The change landed in the copy: the archive is not the file as it was.
    expect(archived.sha256).not.toBe(original.sha256);
    expect(await digestFile(file)).toEqual(archived);
    await driver.close();
  });
});

describe('retrieve to a path', () => {
  /** A retrieve to `target` as the task runner does it (task-runner.ts): written into a file beside it, then linked. */
  function retrieveTo(store: ArchiveStore, key: string, target: string) {
    const archive: RetrievedArchive = {
      open: () => store.retrieve(key),
      writeInto: (file) => store.retrieveInto(key, file),
    };
    return writeToPath(archive, target, undefined);
  }

  async function storedArchive(size: number, seed: string) {
    const { work, root, driver, store } = await setup();
    const file = path.join(work, 'source.bin');
    const digest = await writePatternFile(file, size, seed);
    const stored = await store.store({ ...ref(`${seed}.bin`), ...(await pathSource(file)) });
    const retrieves = jest.spyOn(driver, 'retrieve');
    return { work, root, driver, store, digest, key: stored.manifest.key, retrieves };
  }

  test('on the root’s filesystem: copied in the kernel (the driver’s stream never opened), the file holds the archive, no temporary left', async () => {
    const { work, driver, store, digest, key, retrieves } = await storedArchive(32 * MiB, 'fetched');
    const out = await temp.make('depot-kernel-retrieve-');
    expect((await stat(out)).dev).toBe((await stat(work)).dev);
    const target = path.join(out, 'fetched.bin');
    const { manifest } = await retrieveTo(store, key, target);
    expect(retrieves).not.toHaveBeenCalled();
    expect(manifest).toMatchObject(digest);
    expect(await digestFile(target)).toEqual(digest);
    expect(await readdir(out)).toEqual(['fetched.bin']);
    await driver.close();
  });

  test('on another filesystem (tmpfs): copied through reused buffers; smaller than a copy is worth: streamed through the verified stream', async () => {
    const large = await storedArchive(16 * MiB + 12_345, 'elsewhere');
    const target = path.join(await elsewhereDir(large.work), 'elsewhere.bin');
    const { manifest } = await retrieveTo(large.store, large.key, target);
    expect(large.retrieves).not.toHaveBeenCalled();
    expect(manifest).toMatchObject(large.digest);
    expect(await digestFile(target)).toEqual(large.digest);
    await large.driver.close();

    const small = await storedArchive(MiB, 'small');
    const out = await temp.make('depot-kernel-retrieve-');
    await retrieveTo(small.store, small.key, path.join(out, 'small.bin'));
    expect(small.retrieves).toHaveBeenCalledTimes(1);
    expect(await digestFile(path.join(out, 'small.bin'))).toEqual(small.digest);
    await small.driver.close();
  });

  test('an archive altered on disk (same size, other bytes): integrity, nothing at the target, no temporary left', async () => {
    const { root, driver, store, key, retrieves } = await storedArchive(32 * MiB, 'altered');
    const archive = path.join(root, ...key.split('/'));
    await chmod(archive, 0o644);
    const handle = await open(archive, 'r+');
    await handle.write(Buffer.alloc(MiB, 0xee), 0, MiB, 20 * MiB);
    await handle.close();
    const out = await temp.make('depot-kernel-retrieve-');
    const error = await retrieveTo(store, key, path.join(out, 'altered.bin')).then(
      () => null,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(DepotError);
    expect(error).toMatchObject({ code: 'integrity', field: 'sha256' });
    expect(retrieves).not.toHaveBeenCalled();
    expect(await readdir(out)).toEqual([]);
    await driver.close();
  });
});
