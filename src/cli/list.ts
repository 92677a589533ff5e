import type { Command } from 'commander';
import { listedArchive } from '../catalog/views';
import { withCatalog } from './catalog-context';
import { commandContext, selectDrivers } from './context';
import { EXIT_OK, UsageError } from './exit-codes';
import { collect, parseMetaPairs } from './meta-options';
import { formatBytes, printJson, printLine } from './output';

/**
 * `depot list [--driver D] [--meta k=v]... [--deleted] [--limit N] [--cursor C]`
 * (CONTRACT §8): archives from the catalog, one page; several `--meta` must all
 * match (a value equal to v, or a list holding it). Reads only: a catalog that
 * is not there is an error saying where it looked, never created.
 */
export function registerList(program: Command): void {
  program
    .command('list')
    .description('archives in the catalog, by driver and metadata (one page; --cursor for the next)')
    .option('--driver <driver>', 'only this driver')
    .option('--meta <key=value>', 'metadata that must match, repeatable (all must match)', collect, [] as string[])
    .option('--deleted', 'only deleted archives')
    .option('--limit <n>', 'archives per page (default 100, at most 1000)')
    .option('--cursor <cursor>', "the previous page's next")
    .option('--json', 'one JSON document on stdout')
    .action(async (options: { driver?: string; meta: string[]; deleted?: boolean; limit?: string; cursor?: string; json?: boolean }) => {
      const metadata = parseMetaPairs(options.meta, 'all');
      const limit = pageLimit(options.limit);
      const ctx = commandContext(options);
      if (options.driver !== undefined) selectDrivers(ctx, [options.driver]);
      await withCatalog(ctx, 'read', async (catalog) => {
        const page = await catalog.findArchives({ driver: options.driver, metadata, deleted: options.deleted === true, limit, cursor: options.cursor });
        const archives = page.items.map(listedArchive);
        if (ctx.json) printJson({ archives, next: page.next });
        else {
          for (const a of archives) {
            const meta = Object.entries(a.metadata)
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : v.join(',')}`)
              .join(' ');
            const flags = [
              a.deletedAt ? `deleted ${a.deletedAt}` : '',
              a.retainUntil ? `retained until ${a.retainUntil}` : '',
              a.verifyStatus && a.verifyStatus !== 'ok' ? a.verifyStatus.toUpperCase() : '',
            ]
              .filter(Boolean)
              .join(', ');
            printLine(`${a.ref.driver}:${a.ref.key}  ${formatBytes(a.size)}  ${a.storedAt}${meta ? `  ${meta}` : ''}${flags ? `  [${flags}]` : ''}`);
          }
          if (page.next) printLine(`more: depot list … --cursor ${page.next}`);
        }
        return EXIT_OK;
      });
    });
}

/** `--limit`: a whole number from 1 to 1000 (usage error otherwise). */
export function pageLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const limit = Number(text);
  if (!/^\d+$/.test(text) || limit < 1 || limit > 1000) throw new UsageError(`--limit ${text}: must be a whole number from 1 to 1000`);
  return limit;
}
