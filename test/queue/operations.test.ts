import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { ArchivingManager, ProgressEvent } from '../../src/archiving/manager';
import type { CheckResult, DeleteResult, RetrieveResult, StoreResult } from '../../src/contract';
import { DepotError } from '../../src/contract';
import {
  archiveKeysBelow,
  cleanupAll,
  eventually,
  InProcessWorker,
  keyDay,
  queueClient,
  QueueClient,
  settle,
  sha256Hex,
  stagingEntries,
  startHttpSource,
  trickle,
  startInProcessWorker,
  startTestRedis,
  TempDirs,
  TestRedis,
  testConfig,
  uuidV7Time,
  writePatternFile,
} from '../helpers/queue-harness';
import { KiB, patternBytes } from '../helpers/streams';

/**
 * Store, retrieve, delete and check through queue `depot`, end to end: a real
 * redis-server (and a Redis Cluster: test/redis/cluster-queue.test.ts runs this file there), the storage worker, and two kinds of producer: plain BullMQ jobs
 * added without options, and ArchivingManager (CONTRACT §2, §4).
 */
const temp = new TempDirs();
let redis: TestRedis;
let worker: InProcessWorker | undefined;
let client: QueueClient;
let root: string;
let work: string;

beforeAll(async () => {
  redis = await startTestRedis();
  root = path.join(await temp.make(), 'archive');
  work = await temp.make();
  const config = testConfig(
    { redis: redis.config, queue: { prefix: redis.prefix, attempts: 3, backoffMs: 50 }, drivers: { local: { type: 'filesystem', root } } },
    work,
  );
  worker = await startInProcessWorker(config);
  client = await queueClient(redis);
});

afterAll(async () => {
  await cleanupAll(
    () => client?.close(),
    () => worker?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

/** A source file of pseudo-random bytes in the work dir, and those bytes. */
async function sourceFile(name: string, size: number): Promise<{ file: string; bytes: Buffer }> {
  const file = path.join(work, name);
  await writePatternFile(file, size, name);
  return { file, bytes: patternBytes(size, name) };
}

async function storedBytes(key: string): Promise<Buffer> {
  return readFile(path.join(root, ...key.split('/')));
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

describe('plain BullMQ jobs (no job options)', () => {
  it('store from a path: result per contract, taskId generated and kept on the job, bytes published under the key', async () => {
    const { file, bytes } = await sourceFile('plain-src.bin', 300 * KiB + 7);
    const added = await client.queue.add('store', { source: { path: file }, name: 'exam.zip', metadata: { courseId: '12', userId: '34' } });
    const done = await settle(client, added);
    expect(done.failedReason).toBeUndefined();
    expect(done.state).toBe('completed');
    const result = done.result as StoreResult;

    const taskId = result.taskId;
    const created = uuidV7Time(taskId); // throws unless a UUIDv7
    expect(Math.abs(created.getTime() - done.job.timestamp)).toBeLessThan(60_000);
    expect(result).toEqual({
      taskId,
      ref: { driver: 'local', key: `${keyDay(created)}/${taskId}/exam.zip` },
      name: 'exam.zip',
      size: bytes.length,
      sha256: sha256Hex(bytes),
      storedAt: expect.stringMatching(ISO),
      metadata: { courseId: '12', userId: '34' },
      driversTried: ['local'],
      failedOver: false,
      attempts: 1,
    });
    // The generated taskId is kept on the job, so a retry would reuse the key.
    expect((done.job.data as { taskId?: string }).taskId).toBe(taskId);
    expect((await storedBytes(result.ref.key)).equals(bytes)).toBe(true);
    const manifest = JSON.parse(await readFile(path.join(root, ...result.ref.key.split('/')) + '.depot.json', 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ name: 'exam.zip', size: bytes.length, sha256: sha256Hex(bytes), taskId, metadata: { courseId: '12', userId: '34' } });
    expect(await stagingEntries(root)).toEqual([]);
  });

  it('store from base64 with a producer taskId: key day is the job creation day; the same name twice gives two keys', async () => {
    const bytes = patternBytes(5000, 'inline');
    const first = await settle(
      client,
      await client.queue.add('store', { taskId: 'course-12.exam_1', source: { base64: bytes.toString('base64') }, name: 'same.zip' }),
    );
    const second = await settle(client, await client.queue.add('store', { source: { base64: bytes.toString('base64') }, name: 'same.zip' }));
    expect([first.state, second.state]).toEqual(['completed', 'completed']);
    const a = first.result as StoreResult;
    const b = second.result as StoreResult;
    expect(a.taskId).toBe('course-12.exam_1');
    expect(a.ref).toEqual({ driver: 'local', key: `${keyDay(new Date(first.job.timestamp))}/course-12.exam_1/same.zip` });
    expect(a).toMatchObject({ size: 5000, sha256: sha256Hex(bytes), metadata: {}, driversTried: ['local'], failedOver: false, attempts: 1 });
    expect(b.ref.key).not.toBe(a.ref.key);
    expect(b.ref.key).toBe(`${keyDay(uuidV7Time(b.taskId))}/${b.taskId}/same.zip`);
    const keys = await archiveKeysBelow(root);
    expect(keys).toEqual(expect.arrayContaining([a.ref.key, b.ref.key]));
    expect((await storedBytes(a.ref.key)).equals(bytes)).toBe(true);
    expect((await storedBytes(b.ref.key)).equals(bytes)).toBe(true);
  });

  it('retrieve inline and to a path, check, delete; a retrieve after the delete fails with not_found', async () => {
    const { file, bytes } = await sourceFile('plain-rt.bin', 64 * KiB);
    const stored = (await settle(client, await client.queue.add('store', { source: { path: file }, name: 'rt.tar.gz' }))).result as StoreResult;
    expect(stored.ref.driver).toBe('local');

    const inline = await settle(client, await client.queue.add('retrieve', { ref: stored.ref, target: { inline: true } }));
    expect(inline.state).toBe('completed');
    expect(inline.result).toEqual({
      taskId: expect.any(String),
      ref: stored.ref,
      size: bytes.length,
      sha256: sha256Hex(bytes),
      base64: bytes.toString('base64'),
    });

    const target = path.join(work, 'plain-retrieved.tar.gz');
    const toPath = await settle(client, await client.queue.add('retrieve', { taskId: 'rt-1', ref: stored.ref, target: { path: target } }));
    expect(toPath.state).toBe('completed');
    expect(toPath.result).toEqual({
      taskId: 'rt-1',
      ref: stored.ref,
      size: bytes.length,
      sha256: sha256Hex(bytes),
      path: path.join(await realpath(work), 'plain-retrieved.tar.gz'),
    });
    expect((await readFile(target)).equals(bytes)).toBe(true);

    const check = await settle(client, await client.queue.add('check', { driver: 'local' }));
    expect(check.state).toBe('completed');
    const checked = check.result as CheckResult;
    expect(checked).toEqual({
      taskId: expect.any(String),
      driver: 'local',
      ok: true,
      writeMs: expect.any(Number),
      readMs: expect.any(Number),
      deleteMs: expect.any(Number),
      writeOnce: 'enforced', // link(2) never replaces a name
      space: { totalBytes: expect.any(Number), freeBytes: expect.any(Number), usedBytes: expect.any(Number) },
    });
    expect(checked.space?.totalBytes).toBeGreaterThan(0);
    // The probe is deleted again.
    expect(await readdir(path.join(root, '.depot-check'))).toEqual([]);

    const deleted = await settle(client, await client.queue.add('delete', { ref: stored.ref }));
    expect(deleted.state).toBe('completed');
    expect(deleted.result).toEqual({ taskId: expect.any(String), ref: stored.ref, deleted: true });
    expect(await archiveKeysBelow(root)).not.toContain(stored.ref.key);
    await expect(stat(path.join(root, ...stored.ref.key.split('/')) + '.depot.json')).rejects.toMatchObject({ code: 'ENOENT' });

    const gone = await settle(client, await client.queue.add('retrieve', { ref: stored.ref, target: { inline: true } }));
    expect(gone.state).toBe('failed');
    expect(gone.failedReason).toMatch(/^not_found: /);
  });
});

describe('ArchivingManager', () => {
  let manager: ArchivingManager;
  const completed: Array<{ jobId: string; result: unknown }> = [];
  const failed: Array<{ jobId: string; error: { code: string; message: string } }> = [];
  const progress: ProgressEvent[] = [];

  beforeAll(async () => {
    manager = new ArchivingManager({ redis: redis.target, prefix: redis.prefix });
    manager.on('completed', (event: { jobId: string; result: unknown }) => completed.push(event));
    manager.on('failed', (event: { jobId: string; error: { code: string; message: string } }) => failed.push(event));
    manager.on('progress', (event: ProgressEvent) => progress.push(event));
    await manager.listen();
  });

  afterAll(async () => {
    await manager?.close();
  });

  /** Events arrive over a separate connection; they may trail the result by a moment. */
  async function eventWhere<T extends { jobId: string }>(list: T[], jobId: string, predicate: (event: T) => boolean = () => true): Promise<T> {
    return eventually(() => list.find((e) => e.jobId === jobId && predicate(e)), 5_000, `an event of job ${jobId}`);
  }

  it('a store that takes a while reports throttled progress { bytes, totalBytes } that grows to the whole archive', async () => {
    const body = patternBytes(64 * KiB, 'slow-progress');
    const source = await startHttpSource((_req, res) => trickle(res, body, 4 * KiB, 80)); // 16 chunks over about 1.3 s
    try {
      const handle = await manager.store({ url: source.url('/exam.zip') }, { name: 'slow.zip' });
      const result = await handle.result(20_000);
      expect(result.size).toBe(body.length);
      await eventWhere(progress, handle.jobId, (p) => p.bytes === body.length);
      const mine = progress.filter((p) => p.jobId === handle.jobId);
      expect(mine.length).toBeGreaterThanOrEqual(2); // some part-way, then the whole
      expect(mine.length).toBeLessThanOrEqual(10); // throttled: not one per chunk
      for (const p of mine) expect(p).toEqual({ jobId: handle.jobId, bytes: expect.any(Number), totalBytes: body.length });
      expect(mine[0].bytes).toBeLessThan(body.length);
      for (let i = 1; i < mine.length; i++) expect(mine[i].bytes).toBeGreaterThan(mine[i - 1].bytes);
    } finally {
      await source.close();
    }
  });

  it('store → result(), with a completed event; retrieve to a path and inline; check; delete', async () => {
    const { file, bytes } = await sourceFile('manager-src.bin', 100 * KiB + 11);
    const handle = await manager.store({ path: file }, { name: 'course-42.mbz', metadata: { courseId: '42' } });
    expect(handle.jobId).toBe(`task-${handle.taskId}`);
    const result = await handle.result(20_000);
    expect(result).toEqual({
      taskId: handle.taskId,
      ref: { driver: 'local', key: `${keyDay(uuidV7Time(handle.taskId))}/${handle.taskId}/course-42.mbz` },
      name: 'course-42.mbz',
      size: bytes.length,
      sha256: sha256Hex(bytes),
      storedAt: expect.stringMatching(ISO),
      metadata: { courseId: '42' },
      driversTried: ['local'],
      failedOver: false,
      attempts: 1,
    });
    expect((await storedBytes(result.ref.key)).equals(bytes)).toBe(true);

    const done = await eventWhere(completed, handle.jobId);
    expect(done.result).toEqual(result);
    // A store done within the throttle interval costs no progress round trips at all.
    expect(progress.filter((p) => p.jobId === handle.jobId)).toEqual([]);

    const target = path.join(work, 'manager-retrieved.mbz');
    const retrieved: RetrieveResult = await (await manager.retrieve(result.ref, { path: target })).result(20_000);
    expect(retrieved).toEqual({
      taskId: expect.any(String),
      ref: result.ref,
      size: bytes.length,
      sha256: sha256Hex(bytes),
      path: path.join(await realpath(work), 'manager-retrieved.mbz'),
    });
    expect((await readFile(target)).equals(bytes)).toBe(true);

    const inline: RetrieveResult = await (await manager.retrieve(result.ref, { inline: true })).result(20_000);
    expect(inline.base64).toBeDefined();
    expect(Buffer.from(inline.base64 ?? '', 'base64').equals(bytes)).toBe(true);
    expect(inline).toMatchObject({ ref: result.ref, size: bytes.length, sha256: sha256Hex(bytes) });
    expect(inline.path).toBeUndefined();

    const checkHandle = await manager.check('local', { taskId: 'check-1' });
    const checked: CheckResult = await checkHandle.result(20_000);
    expect(checked).toMatchObject({ taskId: 'check-1', driver: 'local', ok: true });
    expect(checked.error).toBeUndefined();

    const deleteHandle = await manager.delete(result.ref);
    const deleted: DeleteResult = await deleteHandle.result(20_000);
    expect(deleted).toEqual({ taskId: deleteHandle.taskId, ref: result.ref, deleted: true });
    expect(await archiveKeysBelow(root)).not.toContain(result.ref.key);
  });

  it('a task that fails on the worker: result() rejects with the DepotError code, and a failed event is emitted', async () => {
    const ref = { driver: 'local', key: `${keyDay(new Date())}/never-stored/missing.zip` };
    const handle = await manager.retrieve(ref, { inline: true });
    const failure = await handle.result(20_000).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(DepotError);
    expect(failure).toMatchObject({ code: 'not_found' });
    const event = await eventWhere(failed, handle.jobId);
    expect(event.error.code).toBe('not_found');
    expect(event.error.message.length).toBeGreaterThan(0);
    expect(completed.find((e) => e.jobId === handle.jobId)).toBeUndefined();
  });

  it('refuses an invalid task before it is queued', async () => {
    const before = await client.queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
    await expect(manager.store({ base64: '' }, { name: '../escape' })).rejects.toMatchObject({ code: 'invalid_task', field: 'name' });
    const after = await client.queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
    expect(after).toEqual(before);
  });
});
