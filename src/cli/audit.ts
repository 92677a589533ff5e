import type { Command } from 'commander';
import { withCatalog } from './catalog-context';
import { commandContext } from './context';
import { EXIT_OK, UsageError } from './exit-codes';
import { pageLimit } from './list';
import { printJson, printLine } from './output';

/**
 * `depot audit [--task ID] [--driver D --key K] [--since ISO] [--limit N] [--cursor C]`
 * (CONTRACT §8): the audit trail, oldest first, one page. Reads only.
 */
export function registerAudit(program: Command): void {
  program
    .command('audit')
    .description('the audit trail from the catalog: what was done to which archive, when, by whom')
    .option('--task <taskId>', "one task's entries")
    .option('--driver <driver>', "one driver's entries (with --key: one archive's)")
    .option('--key <key>', "one archive's entries (with --driver)")
    .option('--since <time>', 'ISO 8601: entries from then on')
    .option('--limit <n>', 'entries per page (default 100, at most 1000)')
    .option('--cursor <cursor>', "the previous page's next")
    .option('--json', 'one JSON document on stdout')
    .action(async (options: { task?: string; driver?: string; key?: string; since?: string; limit?: string; cursor?: string; json?: boolean }) => {
      if (options.key !== undefined && options.driver === undefined) throw new UsageError('--key needs --driver');
      if (options.since !== undefined && Number.isNaN(Date.parse(options.since)))
        throw new UsageError(`--since ${options.since}: must be an ISO 8601 date or date-time`);
      const limit = pageLimit(options.limit);
      const ctx = commandContext(options);
      await withCatalog(ctx, 'read', async (catalog) => {
        const page = await catalog.findAudit({
          taskId: options.task,
          driver: options.driver,
          key: options.key,
          since: options.since,
          limit,
          cursor: options.cursor,
        });
        if (ctx.json) printJson({ entries: page.items, next: page.next });
        else {
          for (const e of page.items)
            printLine(
              `${e.at}  ${e.operation.padEnd(8)} ${e.outcome.padEnd(10)} ${e.actor}  ${e.ref.driver}:${e.ref.key}${e.taskId ? `  task ${e.taskId}` : ''}`,
            );
          if (page.next) printLine(`more: depot audit … --cursor ${page.next}`);
        }
        return EXIT_OK;
      });
    });
}
