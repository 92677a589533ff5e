/**
 * A delete that runs again after an earlier try of the same task deleted the
 * archive — its answer lost to a timeout, or its worker killed before the job
 * completed — is done, not `not_found` (found by `npm run chaos`). A first try
 * that finds nothing is still `not_found`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runnerSettings } from '../../src/archiving/runner-settings';
import { TaskContext, TaskRunner } from '../../src/archiving/task-runner';
import type { Catalog } from '../../src/catalog/catalog';
import { openCatalog } from '../../src/catalog/open';
import { ArchiveKey, DepotError, StoreResult } from '../../src/contract';
import { StorageAPI } from '../../src/storage/api';
import type { StorageDriver } from '../../src/storage/driver';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { silentLogger } from '../../src/support/logging';
import { failure } from '../helpers/depot-failure';
import { taskContext, TempDirs, testConfig } from '../helpers/queue-harness';

const temp = new TempDirs();
let root: string;
let catalog: Catalog;
let storage: StorageAPI;
let runner: TaskRunner;
/** Keys whose next delete deletes and then loses its answer, as a timed-out request does. */
const answerLost = new Set<string>();
let jobs = 0;

const ctx = (rerun = false): TaskContext => taskContext(`job-${++jobs}`, { rerun });

beforeAll(async () => {
  const work = await temp.make();
  root = path.join(work, 'archive');
  const config = testConfig({ drivers: { local: { type: 'filesystem', root } }, queue: { attempts: 3, backoffMs: 1 } }, work);
  const factory = defaultDriverFactory();
  const real = defaultDriverFactory();
  factory.create = (name, settings, logger): StorageDriver => {
    const driver = real.create(name, settings, logger);
    const remove = driver.delete.bind(driver);
    driver.delete = async (key: ArchiveKey) => {
      await remove(key);
      if (answerLost.delete(key.text)) throw new DepotError('unavailable', 'the answer to the delete was lost');
    };
    return driver;
  };
  catalog = await openCatalog(config.catalog, 'write');
  storage = new StorageAPI(config, factory, silentLogger());
  runner = new TaskRunner(storage, runnerSettings(config), silentLogger(), catalog);
});

afterAll(async () => {
  await storage?.close();
  await catalog?.close();
  await temp.cleanup();
});

const stored = async (name: string) =>
  (await runner.processTask('store', { source: { base64: Buffer.from(name).toString('base64') }, name }, ctx())) as StoreResult;
const trail = async (taskId: string) => (await catalog.findAudit({ taskId })).items.map((e) => [e.operation, e.outcome]);

test('a first try that finds nothing: not_found', async () => {
  const archive = await stored('first.zip');
  await runner.processTask('delete', { ref: archive.ref, taskId: 'del-first-1' }, ctx());
  const error = await failure(runner.processTask('delete', { ref: archive.ref, taskId: 'del-first-2' }, ctx()));
  expect(error.code).toBe('not_found');
  expect(await trail('del-first-2')).toEqual([['delete', 'not_found']]);
});

test('the same task run again after its earlier run deleted the archive: deleted, audited ok', async () => {
  const archive = await stored('rerun.zip');
  await runner.processTask('delete', { ref: archive.ref, taskId: 'del-rerun' }, ctx());
  // The worker died before the job completed; BullMQ runs the job again.
  await expect(runner.processTask('delete', { ref: archive.ref, taskId: 'del-rerun' }, ctx(true))).resolves.toMatchObject({ deleted: true, ref: archive.ref });
  expect(await trail('del-rerun')).toEqual([
    ['delete', 'ok'],
    ['delete', 'ok'],
  ]);
});

test('a try whose answer was lost after it deleted: the next try finds it gone, and the task is done', async () => {
  const archive = await stored('lost.zip');
  answerLost.add(archive.ref.key);
  await expect(runner.processTask('delete', { ref: archive.ref, taskId: 'del-lost' }, ctx())).resolves.toMatchObject({ deleted: true });
  expect(answerLost.size).toBe(0);
  expect(existsSync(path.join(root, ...archive.ref.key.split('/')))).toBe(false);
  expect(await trail('del-lost')).toEqual([['delete', 'ok']]);
});
