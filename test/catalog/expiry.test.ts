import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Catalog } from '../../src/catalog/catalog';
import { openCatalog } from '../../src/catalog/open';
import { reindex } from '../../src/catalog/reindex';
import { runnerSettings } from '../../src/archiving/runner-settings';
import { TaskContext, TaskRunner } from '../../src/archiving/task-runner';
import type { Config } from '../../src/config/load';
import type { StoreResult } from '../../src/contract';
import { StorageAPI } from '../../src/storage/api';
import { silentLogger } from '../../src/support/logging';
import { createTestDatabase, TestDatabase } from '../helpers/postgres';
import { archiveKeysBelow, catalogDir, taskContext, TempDirs, testConfig } from '../helpers/queue-harness';
import { BackendCalls, countingFactory, resetCalls } from './counting-storage';

/**
 * CONTRACT §8, automatic deletion from the catalog: a run reads the archives
 * that are due and nothing else — no listing of the backends, one stat (the
 * manifest's retention, checked again) and one delete per due archive, and
 * only the due rows of the catalog — and deletes exactly those. A
 * `deleteAfter` already past at store time is accepted. On SQLite and
 * PostgreSQL, through the task runner that `depot worker` runs.
 */
jest.setTimeout(60_000);

describe.each(['sqlite', 'postgres'] as const)('automatic deletion reads the catalog (%s)', (kind) => {
  const temp = new TempDirs();
  const calls: BackendCalls = {};
  let database: TestDatabase | undefined;
  let config: Config;
  let catalog: Catalog;
  let storage: StorageAPI;
  let runner: TaskRunner;
  let root: string;
  let jobs = 0;

  const ctx = (): TaskContext => taskContext(`job-${++jobs}`);

  beforeAll(async () => {
    database = kind === 'postgres' ? await createTestDatabase() : undefined;
    root = path.join(await temp.make(), 'archive');
    config = testConfig(
      {
        drivers: { local: { type: 'filesystem', root } },
        queue: { attempts: 1 },
        catalog: { url: database ? database.url : `sqlite:${path.join(catalogDir(), 'catalog.sqlite')}` },
      },
      root,
    );
    catalog = await openCatalog(config.catalog, 'write');
    storage = new StorageAPI(config, countingFactory(calls), silentLogger());
    runner = new TaskRunner(storage, runnerSettings(config), silentLogger(), catalog);
  });

  afterAll(async () => {
    await storage?.close();
    await catalog?.close();
    await database?.drop();
    await temp.cleanup();
  });

  const store = (name: string, extra: Record<string, string> = {}) =>
    runner.processTask('store', { source: { base64: Buffer.from(name).toString('base64') }, name, ...extra }, ctx()) as Promise<StoreResult>;

  test('refused, saying why, until the catalog has been filled from the manifests', async () => {
    await expect(runner.processTask('expire', {}, ctx())).rejects.toMatchObject({
      code: 'unavailable',
      message: expect.stringMatching(/^automatic deletion waits until the catalog at .* has been filled from the manifests \(reindex not yet run/) as unknown,
    });
    await reindex(catalog, storage, { holder: 'test', mode: 'auto', logger: silentLogger() });
  });

  test('deletes exactly the due archives; reads only their rows; asks the backend nothing else', async () => {
    const past = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const due: StoreResult[] = [];
    for (let i = 0; i < 5; i++) due.push(await store(`due-${i}.zip`, { deleteAfter: past(i + 1) }));
    const retained = [
      await store('retained-0.zip', { deleteAfter: past(1), retainUntil: future }),
      await store('retained-1.zip', { deleteAfter: past(2), retainUntil: future }),
    ];
    const kept: StoreResult[] = [...retained];
    for (let i = 0; i < 10; i++) kept.push(await store(`later-${i}.zip`, { deleteAfter: future }));
    for (let i = 0; i < 13; i++) kept.push(await store(`plain-${i}.zip`));

    resetCalls(calls);
    const rowsBefore = catalog.rowsRead;
    const run = await runner.processTask('expire', {}, ctx());
    expect(run).toEqual({ expired: [{ driver: 'local', deleted: 5, retained: 2, failed: 0 }] });
    // One stat (retention, from the manifest) and one delete per due archive; no listing, no reads.
    expect(calls).toEqual({ stat: 5, delete: 5 });
    // The catalog: the 5 due rows, the 2 due but retained, and the one row that says it is filled.
    expect(catalog.rowsRead - rowsBefore).toBe(8);

    expect(await archiveKeysBelow(root)).toEqual(kept.map((r) => r.ref.key).sort());
    for (const gone of due) {
      expect(existsSync(path.join(root, ...gone.ref.key.split('/')))).toBe(false);
      expect(await catalog.get(gone.ref)).toMatchObject({ deletedAt: expect.any(String) as unknown });
      expect((await catalog.findAudit({ driver: 'local', key: gone.ref.key })).items.map((e) => [e.operation, e.outcome, e.actor])).toEqual([
        ['store', 'ok', 'queue'],
        ['expire', 'ok', 'expiry'],
      ]);
    }
    expect((await catalog.stats()).counters).toEqual([{ name: 'expired', driver: 'local', value: 5 }]);

    // The next run: only the two retained rows are read; the backends are not asked anything.
    resetCalls(calls);
    const again = catalog.rowsRead;
    expect(await runner.processTask('expire', {}, ctx())).toEqual({ expired: [{ driver: 'local', deleted: 0, retained: 2, failed: 0 }] });
    expect(calls).toEqual({});
    expect(catalog.rowsRead - again).toBe(3);
  });
});
