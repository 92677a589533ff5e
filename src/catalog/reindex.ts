import { setTimeout as sleep } from 'node:timers/promises';
import { DepotError, Manifest, StorageRef } from '../contract';
import type { StorageAPI } from '../storage/api';
import { errorBody } from '../support/error-handler';
import type { Logger } from '../support/logging';
import type { Catalog } from './catalog';

/**
 * `depot reindex` and the reindex a worker starts by itself (CONTRACT §8):
 * the catalog rebuilt from the manifests, which stay the truth. Streamed
 * (batches of manifests as the drivers list them), resumable (its progress
 * — generation, each driver's last key — is kept in the catalog, and a run
 * that died is taken up where it stopped by the next, after its holder's
 * heartbeat went stale), and it reports drift both ways: manifests the
 * catalog lacked or had otherwise (`added`, `updated`), and entries whose
 * archive the backend no longer has (`missing`: marked so, not deleted).
 *
 * A new catalog is `filled: false` until a run has covered every driver:
 * automatic deletion and `depot erase` refuse to run until then, since a
 * catalog that lacks archives would leave them undeleted.
 */
export const REINDEX_STATE = 'reindex';

export interface DriverProgress {
  /** The last key handled, for resuming the listing after it. */
  after?: string;
  done: boolean;
  /** A driver that cannot list (capabilities.list) is passed over. */
  skipped?: boolean;
  seen: number;
  added: number;
  updated: number;
  missing: number;
  /** Pending entries (stores that never published) found without an archive and removed. */
  dropped: number;
}

export interface ReindexState {
  filled: boolean;
  status: 'idle' | 'running';
  generation: number;
  startedAt?: string;
  finishedAt?: string;
  drivers: Record<string, DriverProgress>;
  /** Who runs it, and when it last said so. */
  holder?: string;
  heartbeatMs?: number;
}

export interface ReindexReport {
  generation: number;
  resumed: boolean;
  filled: boolean;
  drivers: Array<{ driver: string } & Omit<DriverProgress, 'after' | 'done'>>;
  /** Refs of entries whose archive is gone (the first 1000). */
  missing: StorageRef[];
}

export interface ReindexOptions {
  /** The drivers to index; all configured ones when not given. */
  drivers?: string[];
  /** Who runs it (`<worker name>`, `cli:<host>:<pid>`). */
  holder: string;
  /** `auto`: a worker at start, only while the catalog is not yet filled (or a run was interrupted); `manual`: `depot reindex`. */
  mode: 'auto' | 'manual';
  logger: Logger;
  signal?: AbortSignal;
  /** Called after every batch. */
  onProgress?: (driver: string, progress: DriverProgress) => void;
  batchSize?: number;
  /** A holder silent this long has died; its run is taken over. */
  staleMs?: number;
}

const MISSING_SHOWN = 1000;
const FLUSH_MS = 10_000;

/** A reindex is held by someone else who is alive. */
export class ReindexBusy extends DepotError {
  constructor(readonly state: ReindexState) {
    super('unavailable', `a reindex is running (${state.holder ?? 'elsewhere'}, ${describeProgress(state)})`, { origin: 'catalog' });
  }
}

export function emptyState(): ReindexState {
  return { filled: false, status: 'idle', generation: 0, drivers: {} };
}

/** "local: 12,000 manifests read, done; s3: 3,500 read". */
export function describeProgress(state: ReindexState): string {
  const parts = Object.entries(state.drivers).map(
    ([driver, p]) => `${driver}: ${p.seen.toLocaleString('en')} manifests read${p.skipped ? ' (cannot list)' : p.done ? ', done' : ''}`,
  );
  return parts.length ? parts.join('; ') : 'not started';
}

/**
 * Refuses an operation that needs a filled catalog (automatic deletion,
 * erasure) while its first reindex has not finished, saying why and how far
 * it has come.
 */
export async function assertFilled(catalog: Catalog, what: string): Promise<void> {
  const state = (await catalog.state<ReindexState>(REINDEX_STATE)) ?? emptyState();
  if (state.filled) return;
  throw new DepotError(
    'unavailable',
    `${what} waits until the catalog at ${catalog.location} has been filled from the manifests (reindex ${state.status === 'running' ? `running: ${describeProgress(state)}` : 'not yet run: a worker starts it, or run depot reindex'}); without it, archives not yet catalogued would be missed`,
    { origin: 'catalog' },
  );
}

/** Runs (or resumes) a reindex; null when there is nothing to do (mode `auto` on a filled catalog). Throws ReindexBusy while another holder runs one. */
export async function reindex(catalog: Catalog, storage: StorageAPI, options: ReindexOptions): Promise<ReindexReport | null> {
  const configured = storage.driverNames();
  const selected = options.drivers ?? configured;
  const staleMs = options.staleMs ?? 60_000;
  let resumed = false;
  let busy: ReindexState | undefined;
  let state = await catalog.updateState<ReindexState>(REINDEX_STATE, (current) => {
    const now = Date.now();
    const s = current ?? emptyState();
    busy = undefined;
    resumed = false;
    if (s.status === 'running' && s.holder !== undefined && s.holder !== options.holder && now - (s.heartbeatMs ?? 0) < staleMs) {
      busy = s;
      return s;
    }
    if (s.status === 'running') {
      resumed = true;
      const drivers = { ...s.drivers };
      for (const driver of selected) drivers[driver] ??= fresh();
      return { ...s, drivers, holder: options.holder, heartbeatMs: now };
    }
    if (options.mode === 'auto' && s.filled) return s;
    return {
      ...s,
      status: 'running',
      generation: s.generation + 1,
      startedAt: new Date(now).toISOString(),
      finishedAt: undefined,
      drivers: Object.fromEntries(selected.map((driver) => [driver, fresh()])),
      holder: options.holder,
      heartbeatMs: now,
    };
  });
  if (busy) throw new ReindexBusy(busy);
  if (state.status !== 'running' || state.holder !== options.holder) return null;

  const missing: StorageRef[] = [];
  const startedAt = new Date(Date.parse(state.startedAt ?? '') || Date.now());
  const log = options.logger;
  log.info(`reindex ${resumed ? 'resumed' : 'started'} (generation ${state.generation}): ${Object.keys(state.drivers).join(', ')}`, {
    generation: state.generation,
    resumed,
  });

  const save = async (driver: string, progress: DriverProgress) => {
    state = await catalog.updateState<ReindexState>(REINDEX_STATE, (current) => {
      const s = current ?? state;
      if (s.holder !== options.holder || s.generation !== state.generation) {
        throw new DepotError('unavailable', `the reindex was taken over by ${s.holder ?? 'another run'}`, { origin: 'catalog' });
      }
      return { ...s, drivers: { ...s.drivers, [driver]: progress }, heartbeatMs: Date.now() };
    });
    options.onProgress?.(driver, progress);
  };

  for (const driver of Object.keys(state.drivers)) {
    const progress = { ...state.drivers[driver] };
    if (progress.done || !selected.includes(driver)) continue;
    if (!configured.includes(driver)) {
      // A driver no longer configured: nothing to list; its entries stay as they are.
      await save(driver, { ...progress, done: true, skipped: true });
      continue;
    }
    const store = storage.getArchiveStore(driver);
    if (!store.driver.capabilities.list) {
      log.warn(`reindex: ${driver} cannot list its archives; its entries are left as they are`, { driver });
      await save(driver, { ...progress, done: true, skipped: true });
      continue;
    }
    let batch: Manifest[] = [];
    let flushed = Date.now();
    let logged = Date.now();
    const flush = async () => {
      if (!batch.length) return;
      const outcomes = await catalog.reindexBatch(driver, batch, state.generation);
      progress.seen += batch.length;
      progress.added += outcomes.filter((o) => o === 'added').length;
      progress.updated += outcomes.filter((o) => o === 'updated').length;
      progress.after = batch[batch.length - 1].key;
      batch = [];
      flushed = Date.now();
      await save(driver, { ...progress });
      if (Date.now() - logged >= FLUSH_MS) {
        logged = Date.now();
        log.info(`reindex ${driver}: ${progress.seen.toLocaleString('en')} manifests read, ${progress.added} added, ${progress.updated} updated`, {
          driver,
          ...progress,
        });
      }
    };
    for await (const manifest of store.list('', progress.after !== undefined ? { after: progress.after } : {})) {
      options.signal?.throwIfAborted();
      batch.push(manifest);
      if (batch.length >= (options.batchSize ?? 500) || Date.now() - flushed >= FLUSH_MS) await flush();
    }
    await flush();
    // Many rows changed at once: the planner learns the tables' new sizes before anything queries them.
    if (progress.added + progress.updated > 0) await catalog.optimize();

    // Entries of this driver that no manifest confirmed, and written before the run began (a store since then speaks for itself).
    for (let after: string | undefined; ;) {
      const unseen = await catalog.unseen(driver, state.generation, startedAt, 500, after);
      if (!unseen.length) break;
      for (const { entry, pending } of unseen) {
        options.signal?.throwIfAborted();
        if (pending) {
          await catalog.dropPending(entry.ref);
          progress.dropped++;
        } else {
          await catalog.markMissing(entry.ref);
          progress.missing++;
          if (missing.length < MISSING_SHOWN) missing.push(entry.ref);
          log.warn(`reindex: ${driver}:${entry.ref.key} is in the catalog but not on the backend`, { driver, key: entry.ref.key });
        }
      }
      after = unseen[unseen.length - 1].position;
    }
    await save(driver, { ...progress, done: true });
    log.info(`reindex ${driver} done: ${progress.seen} manifests, ${progress.added} added, ${progress.updated} updated, ${progress.missing} missing`, {
      driver,
      ...progress,
    });
  }

  state = await catalog.updateState<ReindexState>(REINDEX_STATE, (current) => {
    const s = current ?? state;
    const allDone = Object.values(s.drivers).every((p) => p.done);
    if (!allDone) return { ...s, holder: undefined, heartbeatMs: undefined };
    const covered = configured.every((driver) => s.drivers[driver]?.done);
    return { ...s, status: 'idle', filled: s.filled || covered, finishedAt: new Date().toISOString(), holder: undefined, heartbeatMs: undefined };
  });
  log.info(`reindex finished (generation ${state.generation})${state.filled ? '' : '; the catalog is not filled yet: drivers remain'}`, {
    generation: state.generation,
    filled: state.filled,
  });
  return {
    generation: state.generation,
    resumed,
    filled: state.filled,
    drivers: Object.entries(state.drivers)
      .filter(([driver]) => selected.includes(driver))
      .map(([driver, p]) => ({
        driver,
        seen: p.seen,
        added: p.added,
        updated: p.updated,
        missing: p.missing,
        dropped: p.dropped,
        ...(p.skipped ? { skipped: true } : {}),
      })),
    missing,
  };
}

/**
 * The reindex a worker starts by itself: runs while the catalog is not filled
 * (or a run was interrupted), waits and tries again while another process
 * holds it or the catalog cannot be reached, and ends once it is done.
 */
export function startAutomaticReindex(catalog: Catalog, storage: StorageAPI, logger: Logger, holder: string): { stop(): Promise<void> } {
  const abort = new AbortController();
  const running = (async () => {
    for (;;) {
      try {
        const report = await reindex(catalog, storage, { holder, mode: 'auto', logger, signal: abort.signal });
        if (report === null) {
          const state = (await catalog.state<ReindexState>(REINDEX_STATE)) ?? emptyState();
          if (state.filled && state.status === 'idle') return;
        } else if (report.filled) return;
      } catch (error) {
        if (abort.signal.aborted) return;
        if (!(error instanceof ReindexBusy)) logger.warn(`reindex: ${errorBody(error).message}; trying again in 30 s`);
      }
      try {
        await sleep(30_000, undefined, { signal: abort.signal });
      } catch {
        return;
      }
    }
  })();
  return {
    async stop() {
      abort.abort();
      await running;
    },
  };
}

function fresh(): DriverProgress {
  return { done: false, seen: 0, added: 0, updated: 0, missing: 0, dropped: 0 };
}
