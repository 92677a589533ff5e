import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { DepotError, Manifest, StorageRef } from '../contract';
import type {
  ArchiveQuery,
  AuditEvent,
  AuditQuery,
  Catalog,
  CatalogEntry,
  CatalogStats,
  Page,
  PendingArchive,
  Positioned,
  ReindexOutcome,
  VerifyStatus,
  AuditEntry,
} from './catalog';
import type { CatalogTarget } from './location';
import { PostgresDatabase } from './postgres/database';
import { migrate, SCHEMA_VERSION, schemaVersion } from './schema';
import { SqlCatalog } from './sql-catalog';
import type { SqlDatabase } from './sql';
import { SqliteDatabase } from './sqlite/database';
import { SqliteWriter } from './sqlite/writer';
import { ignoreFailure } from '../support/ignore';

export interface CatalogSettings {
  target: CatalogTarget;
  /** As messages show it (credentials masked). */
  location: string;
}

/**
 * Opens the catalog. `write` (workers, `depot reindex`, `erase`, `verify`):
 * creates what is missing — the SQLite file and its folder, the tables — and
 * migrates. `read` (`depot list`, `depot audit`, `depot serve`): never creates
 * anything; a catalog that is not there is `not_found` saying where it looked.
 */
export async function openCatalog(settings: CatalogSettings, mode: 'write' | 'read'): Promise<Catalog> {
  const { target, location } = settings;
  const where = `${location} (config catalog.url)`;
  let db: SqlDatabase;
  if (target.kind === 'sqlite') {
    if (mode === 'read' && !existsSync(target.file)) {
      throw new DepotError('not_found', `no catalog at ${where}: a depot worker creates it when it first starts`);
    }
    if (mode === 'write') mkdirSync(path.dirname(target.file), { recursive: true });
    const sqlite = new SqliteDatabase(target.file, location);
    db = sqlite;
    if (mode === 'write') {
      try {
        await sqlite.prepareForWriting();
      } catch (error) {
        await sqlite.close();
        throw error;
      }
    }
  } else {
    db = new PostgresDatabase(target.url, location);
  }
  try {
    if (mode === 'write') await migrate(db, location);
    else {
      const version = await schemaVersion(db, db.dialect);
      if (version === 0) throw new DepotError('not_found', `no catalog at ${where}: it has no depot tables; a depot worker creates them when it first starts`);
      if (version !== SCHEMA_VERSION) {
        throw new DepotError(
          'misconfigured',
          `the catalog at ${where} has schema version ${version}, this depot reads ${SCHEMA_VERSION}: start a worker of this version first`,
        );
      }
    }
  } catch (error) {
    await ignoreFailure(db.close(), 'a catalog that failed to open has nothing to flush');
    throw error;
  }
  // SQLite's reindex batches run in a thread of their own (sqlite/writer.ts); PostgreSQL's wait on the network anyway.
  return new SqlCatalog(db, location, target.kind === 'sqlite' ? new SqliteWriter({ file: target.file, location }) : undefined);
}

/**
 * A catalog opened on first use and, should that fail (a PostgreSQL server
 * that is down when the worker starts), opened again on the next: the worker
 * runs meanwhile, and operations that need the catalog wait for it like for
 * any catalog that cannot be reached (CONTRACT §8).
 */
export class DeferredCatalog implements Catalog {
  private opened?: Promise<Catalog>;
  private current?: Catalog;
  private closed = false;

  constructor(
    readonly location: string,
    private readonly open: () => Promise<Catalog>,
  ) {}

  get rowsRead(): number {
    return this.current?.rowsRead ?? 0;
  }

  /** The open catalog; rejects (and tries again next time) while it cannot be opened. */
  ready(): Promise<Catalog> {
    if (this.closed) return Promise.reject(new DepotError('unavailable', `catalog at ${this.location}: closed`, { origin: 'catalog' }));
    this.opened ??= this.open().then(
      (catalog) => (this.current = catalog),
      (error: unknown) => {
        this.opened = undefined;
        throw error;
      },
    );
    return this.opened;
  }

  async recordPending(pending: PendingArchive): Promise<void> {
    return (await this.ready()).recordPending(pending);
  }
  async recordStored(driver: string, manifest: Manifest, event: AuditEvent): Promise<void> {
    return (await this.ready()).recordStored(driver, manifest, event);
  }
  async recordDeleted(event: AuditEvent): Promise<void> {
    return (await this.ready()).recordDeleted(event);
  }
  async recordAudit(event: AuditEvent): Promise<void> {
    return (await this.ready()).recordAudit(event);
  }
  async recordVerification(status: VerifyStatus, event: AuditEvent): Promise<void> {
    return (await this.ready()).recordVerification(status, event);
  }
  async dropPending(ref: StorageRef): Promise<void> {
    return (await this.ready()).dropPending(ref);
  }
  async markMissing(ref: StorageRef): Promise<void> {
    return (await this.ready()).markMissing(ref);
  }
  async optimize(): Promise<void> {
    return (await this.ready()).optimize();
  }
  async get(ref: StorageRef): Promise<CatalogEntry | null> {
    return (await this.ready()).get(ref);
  }
  async findArchives(query: ArchiveQuery): Promise<Page<CatalogEntry>> {
    return (await this.ready()).findArchives(query);
  }
  async findAudit(query: AuditQuery): Promise<Page<AuditEntry>> {
    return (await this.ready()).findAudit(query);
  }
  async due(now: Date, limit: number, after?: string): Promise<Positioned[]> {
    return (await this.ready()).due(now, limit, after);
  }
  async verificationDue(before: Date, limit: number, options?: { driver?: string; after?: string }): Promise<Positioned[]> {
    return (await this.ready()).verificationDue(before, limit, options);
  }
  async pending(query: { metadata?: ArchiveQuery['metadata']; recordedBefore?: Date; limit: number; after?: string }): Promise<Positioned[]> {
    return (await this.ready()).pending(query);
  }
  async stats(): Promise<CatalogStats> {
    return (await this.ready()).stats();
  }
  async state<T>(name: string): Promise<T | null> {
    return (await this.ready()).state<T>(name);
  }
  async updateState<T>(name: string, update: (current: T | null) => T): Promise<T> {
    return (await this.ready()).updateState(name, update);
  }
  async reindexBatch(driver: string, manifests: Manifest[], generation: number): Promise<ReindexOutcome[]> {
    return (await this.ready()).reindexBatch(driver, manifests, generation);
  }
  async unseen(driver: string, generation: number, before: Date, limit: number, after?: string): Promise<Array<Positioned & { pending: boolean }>> {
    return (await this.ready()).unseen(driver, generation, before, limit, after);
  }

  async close(): Promise<void> {
    this.closed = true;
    const opened = this.opened;
    this.opened = undefined;
    const catalog = opened ? await ignoreFailure(opened, 'a catalog that never opened has nothing to close') : undefined;
    await catalog?.close();
  }
}
