import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ArchivingManager } from '../../src/archiving/manager';
import type { StoreResult } from '../../src/contract';
import {
  archiveKeysBelow,
  cleanupAll,
  eventually,
  exitWithin,
  killAllWorkerProcesses,
  spawnWorkerProcess,
  STAGING_DIR,
  stagingEntries,
  TempDirs,
  writeConfigFile,
  writePatternFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { Digest, MiB } from '../helpers/streams';

/**
 * kill -9 of a worker in the middle of an in-kernel copy (issue 19): a path
 * source on the archive root's filesystem is copied by cp into a staging file.
 * The killed worker leaves that staging file (cp may even go on writing it);
 * nothing is published; its restart hands the task back at once and stores
 * one intact archive, and no staging file is left.
 */
jest.setTimeout(150_000);

const SIZE = 1024 * MiB;
const temp = new TempDirs();
let redis: RedisServer;
let manager: ArchivingManager | undefined;
let work: string;
let root: string;
let sourceFile: string;
let source: Digest;

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make('depot-kernel-crash-');
  root = path.join(work, 'archive');
  sourceFile = path.join(work, 'exam-records.bin');
  source = await writePatternFile(sourceFile, SIZE, 'kernel-crash');
  manager = new ArchivingManager({ redisUrl: redis.url });
  await manager.listen();
});

afterAll(async () => {
  await cleanupAll(
    () => killAllWorkerProcesses(),
    () => manager?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

/** The size of the staging archive file being copied, once it has some bytes but not all. */
async function copyUnderWay(): Promise<number | undefined> {
  for (const entry of await stagingEntries(root)) {
    if (!entry.endsWith('.part')) continue;
    const size = await stat(path.join(root, STAGING_DIR, entry)).then(
      (info) => info.size,
      () => 0,
    );
    if (size > 0 && size < SIZE) return size;
  }
  return undefined;
}

it('SIGKILL during the in-kernel copy of a 1 GiB path source: nothing published; the restarted worker stores one intact archive; no staging file left', async () => {
  const configFile = await writeConfigFile(work, {
    redis: { url: redis.url },
    queue: { lockDurationMs: 120_000, stalledIntervalMs: 60_000, attempts: 3, backoffMs: 50 },
    paths: { allowed: [work] },
    drivers: { local: { type: 'filesystem', root } },
  });
  const first = spawnWorkerProcess(configFile);
  await eventually(() => (first.output().includes('storage worker ready') ? true : undefined), 30_000, 'the worker to be ready');
  const handle = await manager!.store({ path: sourceFile }, { name: 'exam-records.bin', sha256: source.sha256, size: SIZE });
  const copied = await eventually(copyUnderWay, 60_000, 'the copy to be under way').catch((error: Error) => {
    throw new Error(`${error.message}\nworker output:\n${first.output()}`);
  });
  first.child.kill('SIGKILL');
  expect(await exitWithin(first, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });
  expect(copied).toBeLessThan(SIZE);
  expect(await archiveKeysBelow(root)).toEqual([]);

  // Restarted on the same host: it hands back its dead predecessor's task at once.
  const restarted = spawnWorkerProcess(configFile);
  const result: StoreResult = await handle.result(90_000).catch((error: Error) => {
    throw new Error(`${error.message}\nrestarted worker output:\n${restarted.output()}`);
  });
  expect(result).toMatchObject({ size: SIZE, sha256: source.sha256, ref: { driver: 'local' } });
  expect(await archiveKeysBelow(root)).toEqual([result.ref.key]);
  const taskDir = path.join(root, ...result.ref.key.split('/').slice(0, 4));
  expect((await readdir(taskDir)).sort()).toEqual(['exam-records.bin', 'exam-records.bin.depot.json']);
  // The dead worker's staging file went when the restarted worker started (a cp it left may have written on into it).
  await eventually(async () => ((await stagingEntries(root)).length === 0 ? true : undefined), 30_000, 'no staging file left');

  restarted.child.kill('SIGTERM');
  expect(await exitWithin(restarted, 30_000)).toEqual({ code: 0, signal: null });
});
