import type { AuditEvent, Catalog } from '../../src/catalog/catalog';
import type { Manifest, Metadata } from '../../src/contract';
import { DepotError } from '../../src/contract';

/**
 * The one catalog suite, run on SQLite and on PostgreSQL (sqlite.test.ts,
 * postgres.test.ts): every check gets a fresh, migrated catalog from the
 * harness.
 */
export interface CatalogHarness {
  /** A new, empty catalog (migrated, as a worker opens it). */
  fresh(): Promise<Catalog>;
  /** The same catalog opened read-only, as `depot list` opens it. */
  reader(): Promise<Catalog>;
  /** A catalog that was never created, opened read-only: must fail saying where it looked, and create nothing. */
  missing(): Promise<{ open(): Promise<Catalog>; where: RegExp; exists(): Promise<boolean> }>;
}

let serial = 0;

export function manifest(overrides: Partial<Manifest> & { name?: string } = {}): Manifest {
  serial++;
  const taskId = overrides.taskId ?? `task-${String(serial).padStart(5, '0')}`;
  const name = overrides.name ?? `archive-${serial}.zip`;
  return {
    name,
    key: overrides.key ?? `2026/03/01/${taskId}/${name}`,
    size: 1000 + serial,
    sha256: serial.toString(16).padStart(64, '0'),
    storedAt: '2026-03-01T10:00:00.000Z',
    taskId,
    metadata: {},
    ...overrides,
  };
}

function event(operation: AuditEvent['operation'], m: Manifest, driver: string, extra: Partial<AuditEvent> = {}): AuditEvent {
  return { operation, taskId: m.taskId, ref: { driver, key: m.key }, outcome: 'ok', actor: 'queue', eventKey: `${operation}:${driver}:${m.key}`, ...extra };
}

/** A store as the runner records it: pending, then complete. */
export async function stored(catalog: Catalog, driver: string, m: Manifest): Promise<Manifest> {
  await catalog.recordPending({
    ref: { driver, key: m.key },
    taskId: m.taskId,
    name: m.name,
    metadata: m.metadata,
    retainUntil: m.retainUntil,
    deleteAfter: m.deleteAfter,
  });
  await catalog.recordStored(driver, m, event('store', m, driver));
  return m;
}

async function listAll(catalog: Catalog, query: Parameters<Catalog['findArchives']>[0]): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await catalog.findArchives({ ...query, cursor });
    keys.push(...page.items.map((e) => `${e.ref.driver}:${e.ref.key}`));
    cursor = page.next;
  } while (cursor);
  return keys;
}

export function describeCatalog(name: string, harness: CatalogHarness): void {
  describe(`catalog on ${name}`, () => {
    const open: Catalog[] = [];
    const fresh = async () => {
      const catalog = await harness.fresh();
      open.push(catalog);
      return catalog;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
    });

    test('read-only opening of a catalog that does not exist fails saying where it looked, and creates nothing', async () => {
      const missing = await harness.missing();
      await expect(missing.open()).rejects.toMatchObject({ code: 'not_found', message: expect.stringMatching(missing.where) as unknown });
      expect(await missing.exists()).toBe(false);
    });

    test('a new catalog needs its first reindex; a second opening migrates nothing and sees the same data', async () => {
      const catalog = await fresh();
      expect(await catalog.state('reindex')).toEqual({ filled: false, status: 'idle', generation: 0, drivers: {} });
      const m = await stored(catalog, 'local', manifest());
      const reader = await harness.reader();
      open.push(reader);
      expect((await reader.get({ driver: 'local', key: m.key }))?.sha256).toBe(m.sha256);
    });

    test('a pending entry is not listed; completed it is, with every field; recording again changes nothing', async () => {
      const catalog = await fresh();
      const m = manifest({ metadata: { courseId: '12', userIds: ['34', '35'] }, retainUntil: '2036-01-31', deleteAfter: '2040-01-01T00:00:00Z' });
      await catalog.recordPending({ ref: { driver: 'local', key: m.key }, taskId: m.taskId, name: m.name, metadata: m.metadata });
      expect((await catalog.findArchives({})).items).toEqual([]);
      expect(await catalog.get({ driver: 'local', key: m.key })).toBeNull();
      await catalog.recordStored('local', m, event('store', m, 'local'));
      await catalog.recordPending({ ref: { driver: 'local', key: m.key }, taskId: m.taskId, name: m.name, metadata: m.metadata });
      await catalog.recordStored('local', m, event('store', m, 'local'));
      const { items, next } = await catalog.findArchives({});
      expect(next).toBeNull();
      expect(items).toEqual([
        {
          ref: { driver: 'local', key: m.key },
          taskId: m.taskId,
          name: m.name,
          size: m.size,
          sha256: m.sha256,
          storedAt: m.storedAt,
          metadata: m.metadata,
          retainUntil: '2036-01-31',
          deleteAfter: '2040-01-01T00:00:00Z',
          verifyStatus: null,
        },
      ]);
      const audit = await catalog.findAudit({ taskId: m.taskId });
      expect(audit.items).toEqual([
        { at: expect.any(String) as unknown, operation: 'store', taskId: m.taskId, ref: { driver: 'local', key: m.key }, outcome: 'ok', actor: 'queue' },
      ]);
    });

    test('list by one and by several metadata keys: exactly the matching archives, across drivers, lists included', async () => {
      const catalog = await fresh();
      const meta = (metadata: Metadata) => manifest({ metadata });
      const a = await stored(catalog, 'local', meta({ userId: '34', courseId: '12' }));
      const b = await stored(catalog, 's3', meta({ userId: '34', courseId: '13' }));
      const c = await stored(catalog, 'ftp', meta({ userIds: ['33', '34', '35'], courseId: '12' }));
      const d = await stored(catalog, 'local', meta({ userId: '35', courseId: '12' }));
      await stored(catalog, 'local', meta({ userId: '340' }));
      await stored(catalog, 'local', meta({ user: '34' }));
      const ref = (driver: string, m: Manifest) => `${driver}:${m.key}`;

      expect(await listAll(catalog, { metadata: [['userId', '34']] })).toEqual([ref('local', a), ref('s3', b)]);
      expect(await listAll(catalog, { metadata: [['userIds', '34']] })).toEqual([ref('ftp', c)]);
      expect(await listAll(catalog, { metadata: [['courseId', '12']] })).toEqual([ref('local', a), ref('ftp', c), ref('local', d)]);
      expect(
        await listAll(catalog, {
          metadata: [
            ['courseId', '12'],
            ['userId', '34'],
          ],
        }),
      ).toEqual([ref('local', a)]);
      expect(
        await listAll(catalog, {
          metadata: [
            ['userIds', '35'],
            ['courseId', '12'],
          ],
        }),
      ).toEqual([ref('ftp', c)]);
      expect(
        await listAll(catalog, {
          metadata: [
            ['courseId', '12'],
            ['userId', '36'],
          ],
        }),
      ).toEqual([]);
      expect(await listAll(catalog, { metadata: [['courseId', '12']], driver: 'local' })).toEqual([ref('local', a), ref('local', d)]);
      expect(await listAll(catalog, { driver: 's3' })).toEqual([ref('s3', b)]);
      // Pages of one: the same archives, in the same order, each once.
      expect(await listAll(catalog, { metadata: [['courseId', '12']], limit: 1 })).toEqual([ref('local', a), ref('ftp', c), ref('local', d)]);
      expect(await listAll(catalog, { limit: 4 })).toHaveLength(6);
    });

    test('a complete entry is found by the manifest metadata, not by its pending entry where they differ; without one too', async () => {
      const catalog = await fresh();
      const m = manifest({ metadata: { userIds: ['34', '35'], courseId: '13' } });
      await catalog.recordPending({
        ref: { driver: 'local', key: m.key },
        taskId: m.taskId,
        name: m.name,
        metadata: { userIds: ['34', '36'], courseId: '12' },
      });
      await catalog.recordStored('local', m, event('store', m, 'local'));
      const unannounced = manifest({ metadata: { userIds: ['36'] } });
      await catalog.recordStored('s3', unannounced, event('store', unannounced, 's3'));
      expect(await listAll(catalog, { metadata: [['userIds', '34']] })).toEqual([`local:${m.key}`]);
      expect(await listAll(catalog, { metadata: [['userIds', '35']] })).toEqual([`local:${m.key}`]);
      expect(await listAll(catalog, { metadata: [['courseId', '13']] })).toEqual([`local:${m.key}`]);
      expect(await listAll(catalog, { metadata: [['courseId', '12']] })).toEqual([]);
      expect(await listAll(catalog, { metadata: [['userIds', '36']] })).toEqual([`s3:${unannounced.key}`]);
      expect((await catalog.get({ driver: 'local', key: m.key }))?.metadata).toEqual(m.metadata);
    });

    test('writes issued together (one batch; on PostgreSQL one statement per kind) each land with their own metadata and audit row', async () => {
      const catalog = await fresh();
      const all = Array.from({ length: 12 }, (_, i) => manifest({ metadata: { userId: String(i), courseId: String(i % 3) } }));
      await Promise.all(
        all.map((m, i) =>
          catalog.recordPending({ ref: { driver: 'local', key: m.key }, taskId: m.taskId, name: m.name, metadata: { userId: String(i + 100) } }),
        ),
      );
      // The same archive twice in one batch, and a deletion between stores of others: each in its place.
      const [gone, twice] = all;
      await Promise.all([
        ...all.slice(0, 6).map((m) => catalog.recordStored('local', m, event('store', m, 'local'))),
        catalog.recordStored('local', twice, event('store', twice, 'local')),
        catalog.recordDeleted(event('delete', gone, 'local', { actor: 'cli' })),
        ...all.slice(6).map((m) => catalog.recordStored('local', m, event('store', m, 'local'))),
      ]);
      for (const [i, m] of all.entries()) {
        expect(await listAll(catalog, { metadata: [['userId', String(i)]] })).toEqual(i === 0 ? [] : [`local:${m.key}`]);
        expect(await listAll(catalog, { metadata: [['userId', String(i + 100)]] })).toEqual([]);
        expect(await catalog.get({ driver: 'local', key: m.key })).toMatchObject({ name: m.name, size: m.size, sha256: m.sha256, metadata: m.metadata });
        const trail = (await catalog.findAudit({ driver: 'local', key: m.key })).items.map((e) => e.operation);
        expect(trail).toEqual(i === 0 ? ['store', 'delete'] : ['store']);
      }
      expect(await listAll(catalog, { metadata: [['courseId', '1']] })).toEqual([1, 4, 7, 10].map((i) => `local:${all[i].key}`));
    });

    test('deleted archives leave the list and appear with --deleted, with deletedAt; deletions are counted once by reason', async () => {
      const catalog = await fresh();
      const keep = await stored(catalog, 'local', manifest({ metadata: { userId: '34' } }));
      const gone = await stored(catalog, 'local', manifest({ metadata: { userId: '34' } }));
      const at = new Date('2026-04-01T00:00:00Z');
      await catalog.recordDeleted(event('erase', gone, 'local', { actor: 'cli', at }));
      await catalog.recordDeleted(event('erase', gone, 'local', { actor: 'cli', at }));
      expect((await catalog.findArchives({ metadata: [['userId', '34']] })).items.map((e) => e.ref.key)).toEqual([keep.key]);
      const deleted = await catalog.findArchives({ deleted: true });
      expect(deleted.items.map((e) => [e.ref.key, e.deletedAt])).toEqual([[gone.key, '2026-04-01T00:00:00.000Z']]);
      expect((await catalog.stats()).counters).toEqual([{ name: 'erased', driver: 'local', value: 1 }]);
      expect((await catalog.findAudit({ driver: 'local', key: gone.key })).items.map((e) => [e.operation, e.actor])).toEqual([
        ['store', 'queue'],
        ['erase', 'cli'],
      ]);
    });

    test('the audit trail by task, by archive, since a moment, in pages; every event once', async () => {
      const catalog = await fresh();
      const m = await stored(catalog, 'local', manifest());
      const other = await stored(catalog, 's3', manifest());
      const ref = { driver: 'local', key: m.key };
      await catalog.recordAudit({
        operation: 'retrieve',
        taskId: 'r1',
        ref,
        outcome: 'ok',
        actor: 'http:token-0',
        eventKey: 'retrieve:r1',
        at: new Date('2030-01-01T00:00:00Z'),
      });
      await catalog.recordAudit({ operation: 'retrieve', taskId: 'r1', ref, outcome: 'ok', actor: 'http:token-0', eventKey: 'retrieve:r1' });
      await catalog.recordAudit({
        operation: 'delete',
        taskId: 'd1',
        ref,
        outcome: 'retention',
        actor: 'cli',
        eventKey: 'delete:d1',
        at: new Date('2030-01-02T00:00:00Z'),
      });
      expect((await catalog.findAudit({ taskId: 'r1' })).items).toEqual([
        { at: '2030-01-01T00:00:00.000Z', operation: 'retrieve', taskId: 'r1', ref, outcome: 'ok', actor: 'http:token-0' },
      ]);
      expect((await catalog.findAudit({ driver: 'local', key: m.key })).items.map((e) => e.operation)).toEqual(['store', 'retrieve', 'delete']);
      expect((await catalog.findAudit({ since: '2030-01-02' })).items.map((e) => e.outcome)).toEqual(['retention']);
      const first = await catalog.findAudit({ limit: 2 });
      expect(first.items.map((e) => e.ref.key)).toEqual([m.key, other.key]);
      const second = await catalog.findAudit({ limit: 2, cursor: first.next });
      expect(second.items.map((e) => e.operation)).toEqual(['retrieve', 'delete']);
      expect(second.next).toBeNull();
    });

    test('a cursor or position it did not hand out is invalid_task, never a query', async () => {
      const catalog = await fresh();
      for (const cursor of ['x', 'W10', Buffer.from('[1.5]').toString('base64url'), "1'; DROP TABLE depot_archives; --"]) {
        await expect(catalog.findArchives({ cursor })).rejects.toMatchObject({ code: 'invalid_task', field: 'cursor' });
        await expect(catalog.findAudit({ cursor })).rejects.toMatchObject({ code: 'invalid_task', field: 'cursor' });
      }
      await expect(catalog.findArchives({ limit: 0 })).rejects.toBeInstanceOf(DepotError);
    });

    test('due: exactly the archives past deleteAfter and not deleted, soonest first, in pages', async () => {
      const catalog = await fresh();
      const now = new Date('2030-06-01T00:00:00Z');
      const late = await stored(catalog, 'local', manifest({ deleteAfter: '2030-05-31T00:00:00Z' }));
      const early = await stored(catalog, 's3', manifest({ deleteAfter: '2030-01-01' }));
      const retained = await stored(catalog, 'local', manifest({ deleteAfter: '2030-03-01T00:00:00+02:00', retainUntil: '2031-01-01' }));
      await stored(catalog, 'local', manifest({ deleteAfter: '2030-06-02T00:00:00Z' }));
      await stored(catalog, 'local', manifest());
      const gone = await stored(catalog, 'local', manifest({ deleteAfter: '2029-01-01' }));
      await catalog.recordDeleted(event('expire', gone, 'local', { actor: 'expiry' }));
      const before = catalog.rowsRead;
      const first = await catalog.due(now, 2);
      expect(first.map((p) => p.entry.ref.key)).toEqual([early.key, retained.key]);
      const rest = await catalog.due(now, 2, first[1].position);
      expect(rest.map((p) => p.entry.ref.key)).toEqual([late.key]);
      expect(await catalog.due(now, 2, rest[0].position)).toEqual([]);
      // What the three calls read: the three due rows, nothing else.
      expect(catalog.rowsRead - before).toBe(3);
    });

    test('fixity: never-verified archives by store time, then oldest verification first; results recorded once, counted', async () => {
      const catalog = await fresh();
      const a = await stored(catalog, 'local', manifest({ storedAt: '2026-01-01T00:00:00.000Z' }));
      const b = await stored(catalog, 'local', manifest({ storedAt: '2026-02-01T00:00:00.000Z' }));
      const c = await stored(catalog, 's3', manifest({ storedAt: '2026-03-01T00:00:00.000Z' }));
      const verify = (m: Manifest, driver: string, status: 'ok' | 'corrupt' | 'missing', at: string) =>
        catalog.recordVerification(status, {
          ...event('verify', m, driver, { actor: 'fixity', at: new Date(at), eventKey: `verify:${driver}:${m.key}:${at}` }),
          outcome: status === 'ok' ? 'ok' : status === 'corrupt' ? 'integrity' : 'not_found',
        });
      await verify(a, 'local', 'ok', '2026-05-01T00:00:00Z');
      await verify(a, 'local', 'ok', '2026-05-01T00:00:00Z');
      const order = await catalog.verificationDue(new Date('2027-01-01'), 10);
      expect(order.map((p) => p.entry.ref.key)).toEqual([b.key, c.key, a.key]);
      expect((await catalog.verificationDue(new Date('2026-04-01'), 10)).map((p) => p.entry.ref.key)).toEqual([b.key, c.key]);
      expect((await catalog.verificationDue(new Date('2027-01-01'), 10, { driver: 's3' })).map((p) => p.entry.ref.key)).toEqual([c.key]);
      expect((await catalog.verificationDue(new Date('2027-01-01'), 1, { after: order[0].position })).map((p) => p.entry.ref.key)).toEqual([c.key]);
      await verify(b, 'local', 'corrupt', '2026-05-02T00:00:00Z');
      await verify(c, 's3', 'missing', '2026-05-02T00:00:00Z');
      expect(await catalog.get({ driver: 'local', key: b.key })).toMatchObject({ verifyStatus: 'corrupt', lastVerifiedAt: '2026-05-02T00:00:00.000Z' });
      const stats = await catalog.stats();
      expect(stats.archives.sort((x, y) => x.driver.localeCompare(y.driver))).toEqual([
        { driver: 'local', archives: 2, bytes: a.size + b.size },
        { driver: 's3', archives: 1, bytes: c.size },
      ]);
      expect(stats.verified.sort((x, y) => x.status.localeCompare(y.status))).toEqual([
        { driver: 'local', status: 'corrupt', archives: 1 },
        { driver: 's3', status: 'missing', archives: 1 },
        { driver: 'local', status: 'ok', archives: 1 },
      ]);
      expect(stats.counters.sort((x, y) => x.name.localeCompare(y.name))).toEqual([
        { name: 'verified_corrupt', driver: 'local', value: 1 },
        { name: 'verified_missing', driver: 's3', value: 1 },
        { name: 'verified_ok', driver: 'local', value: 1 },
      ]);
    });

    test('pending entries: found by metadata for settling, dropped when their archive is not there', async () => {
      const catalog = await fresh();
      const m = manifest({ metadata: { userIds: ['7', '8'] } });
      await catalog.recordPending({ ref: { driver: 'local', key: m.key }, taskId: m.taskId, name: m.name, metadata: m.metadata });
      await stored(catalog, 'local', manifest({ metadata: { userIds: ['8'] } }));
      const pending = await catalog.pending({ metadata: [['userIds', '8']], limit: 10 });
      expect(pending.map((p) => p.entry.ref.key)).toEqual([m.key]);
      expect(await catalog.pending({ limit: 10, recordedBefore: new Date(Date.now() - 3_600_000) })).toEqual([]);
      await catalog.dropPending({ driver: 'local', key: m.key });
      expect(await catalog.pending({ limit: 10 })).toEqual([]);
    });

    test('reindex batches: new manifests added, changed ones updated, the rest only marked seen; unseen entries found', async () => {
      const catalog = await fresh();
      const kept = await stored(catalog, 'local', manifest({ metadata: { userId: '1' } }));
      const changed = await stored(catalog, 'local', manifest({ metadata: { userId: '2' } }));
      const vanished = await stored(catalog, 'local', manifest());
      const pendingOnly = manifest();
      await catalog.recordPending({ ref: { driver: 'local', key: pendingOnly.key }, taskId: pendingOnly.taskId, name: pendingOnly.name, metadata: {} });
      const started = new Date(Date.now() + 1);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const fresh1 = manifest({ metadata: { userIds: ['3', '4'] } });
      const outcomes = await catalog.reindexBatch('local', [kept, { ...changed, metadata: { userId: '22' } }, fresh1], 1);
      expect(outcomes).toEqual(['unchanged', 'updated', 'added']);
      expect((await catalog.findArchives({ metadata: [['userIds', '4']] })).items.map((e) => e.ref.key)).toEqual([fresh1.key]);
      expect((await catalog.findArchives({ metadata: [['userId', '2']] })).items).toEqual([]);
      expect((await catalog.findArchives({ metadata: [['userId', '22']] })).items.map((e) => e.ref.key)).toEqual([changed.key]);
      const unseen = await catalog.unseen('local', 1, started, 10);
      expect(unseen.map((u) => [u.entry.ref.key, u.pending])).toEqual([
        [vanished.key, false],
        [pendingOnly.key, true],
      ]);
      expect(await catalog.reindexBatch('local', [kept, fresh1], 2)).toEqual(['unchanged', 'unchanged']);
      await catalog.markMissing({ driver: 'local', key: vanished.key });
      expect(await catalog.get({ driver: 'local', key: vanished.key })).toMatchObject({ verifyStatus: 'missing' });
    });

    test('state: set from its current value in one transaction', async () => {
      const catalog = await fresh();
      expect(await catalog.state('nothing')).toBeNull();
      await catalog.updateState<{ n: number }>('counter', (current) => ({ n: (current?.n ?? 0) + 1 }));
      await Promise.all([1, 2, 3].map(() => catalog.updateState<{ n: number }>('counter', (current) => ({ n: (current?.n ?? 0) + 1 }))));
      expect(await catalog.state('counter')).toEqual({ n: 4 });
    });
  });
}
