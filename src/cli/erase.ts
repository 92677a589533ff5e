import type { Command } from 'commander';
import type { Catalog, CatalogEntry } from '../catalog/catalog';
import { assertFilled } from '../catalog/reindex';
import { ArchiveRecord } from '../archiving/archive-record';
import { ArchivingManager } from '../archiving/manager';
import type { DeleteResult, StorageRef } from '../contract';
import { errorBody } from '../support/error-handler';
import { withCatalog } from './catalog-context';
import { commandContext, CommandContext } from './context';
import { EXIT_FAILED, EXIT_OK, UsageError } from './exit-codes';
import { collect, parseMetaPairs } from './meta-options';
import { printError, printJson, printLine } from './output';
import { warnWithoutWorkers } from './task-outcome';

interface EraseReport {
  dryRun: boolean;
  deleted: StorageRef[];
  retained: Array<{ ref: StorageRef; retainUntil: string }>;
  failed: Array<{ ref: StorageRef; error: { code: string; message: string } }>;
}

/**
 * `depot erase --meta k=v [--meta k=v]... [--dry-run]` (CONTRACT §8): a
 * person's erasure request. Every archive whose metadata matches (all pairs;
 * a list value matches when it holds the value) is deleted through the queue
 * — an ordinary delete task, audited as `erase` with actor `cli` — except
 * those under retention, which are listed with their retainUntil. Pending
 * entries that match (a store that published and then failed over, say) are
 * first settled against their backends, so that no copy is overlooked.
 * Refused while the catalog has not been filled from the manifests.
 * Exit 0 when nothing failed (retained archives are no failure), 1 otherwise,
 * 2 without --meta.
 */
export function registerErase(program: Command): void {
  program
    .command('erase')
    .description("delete every archive whose metadata matches, except those under retention (a person's erasure request)")
    .option('--meta <key=value>', 'metadata that must match, repeatable (all must match); at least one', collect, [] as string[])
    .option('--dry-run', 'only say what would be deleted and what is retained')
    .option('--json', 'one JSON document on stdout')
    .action(async (options: { meta: string[]; dryRun?: boolean; json?: boolean }) => {
      const metadata = parseMetaPairs(options.meta, 'all');
      if (!metadata.length) throw new UsageError('erase needs at least one --meta key=value: it never erases everything');
      const ctx = commandContext(options);
      await withCatalog(ctx, 'read', async (catalog) => {
        await assertFilled(catalog, 'erasure');
        await settleMatchingPending(ctx, catalog, metadata);
        const now = Date.now();
        const report: EraseReport = { dryRun: options.dryRun === true, deleted: [], retained: [], failed: [] };
        const toDelete: CatalogEntry[] = [];
        for (let cursor: string | null = null; ;) {
          const page = await catalog.findArchives({ metadata, limit: 1000, cursor });
          for (const entry of page.items) {
            if (entry.retainUntil && Date.parse(entry.retainUntil) > now) report.retained.push({ ref: entry.ref, retainUntil: entry.retainUntil });
            else toDelete.push(entry);
          }
          if (!(cursor = page.next)) break;
        }
        if (report.dryRun) report.deleted = toDelete.map((e) => e.ref);
        else await deleteThroughQueue(ctx, toDelete, report);
        print(ctx, report);
        return report.failed.length ? EXIT_FAILED : EXIT_OK;
      });
    });
}

/** Queues one delete per archive (audited as erase), then waits for each. */
async function deleteThroughQueue(ctx: CommandContext, entries: CatalogEntry[], report: EraseReport): Promise<void> {
  if (!entries.length) return;
  const { config } = ctx;
  const manager = new ArchivingManager({ redis: config.redis, queueName: config.queue.name, prefix: config.queue.prefix, actor: 'cli' });
  try {
    const queued: Array<{ entry: CatalogEntry; result: Promise<DeleteResult> }> = [];
    for (const entry of entries) {
      try {
        const handle = await manager.enqueue<DeleteResult>('delete', { ref: entry.ref }, {}, { actor: 'cli', operation: 'erase' });
        queued.push({ entry, result: handle.result() });
        // Settled below; a rejection must not count as unhandled meanwhile.
        queued[queued.length - 1].result.catch(() => undefined);
      } catch (error) {
        report.failed.push({ ref: entry.ref, error: errorBody(error) });
      }
    }
    if (queued.length) await warnWithoutWorkers(manager, config.queue.name);
    for (const { entry, result } of queued) {
      try {
        await result;
        report.deleted.push(entry.ref);
      } catch (error) {
        const body = errorBody(error);
        // The manifest (the truth) held a retention the catalog lacked; an archive already gone is erased all the same.
        if (body.code === 'retention') report.retained.push({ ref: entry.ref, retainUntil: entry.retainUntil ?? '(see the manifest)' });
        else if (body.code === 'not_found') report.deleted.push(entry.ref);
        else report.failed.push({ ref: entry.ref, error: body });
      }
    }
  } finally {
    await manager.close();
  }
}

/** Pending entries that match: completed when their backend holds the archive (then erased like any), dropped when it does not. */
async function settleMatchingPending(ctx: CommandContext, catalog: Catalog, metadata: Array<[string, string]>): Promise<void> {
  const record = new ArchiveRecord(catalog, { attempts: 1, backoffMs: 0 }, ctx.logger);
  const configured = new Set(ctx.storage.driverNames());
  for (let after: string | undefined; ;) {
    const pending = await catalog.pending({ metadata, limit: 500, after });
    if (!pending.length) return;
    for (const { entry } of pending) {
      if (configured.has(entry.ref.driver)) await record.settle(ctx.storage.getArchiveStore(entry.ref.driver), entry.ref.key, { actor: 'cli', jobId: 'erase' });
    }
    after = pending[pending.length - 1].position;
  }
}

function print(ctx: CommandContext, report: EraseReport): void {
  if (ctx.json) return printJson(report);
  const verb = report.dryRun ? 'would delete' : 'deleted';
  for (const ref of report.deleted) printLine(`${verb} ${ref.driver}:${ref.key}`);
  for (const { ref, retainUntil } of report.retained)
    printLine(`retained ${ref.driver}:${ref.key} until ${retainUntil} (under retention: it stays; erase again after that date)`);
  for (const { ref, error } of report.failed) printError(`failed ${ref.driver}:${ref.key}: ${error.code}: ${error.message}`);
  printLine(`${report.deleted.length} ${verb}, ${report.retained.length} retained, ${report.failed.length} failed`);
}
