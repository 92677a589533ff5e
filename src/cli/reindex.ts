import { hostname } from 'node:os';
import type { Command } from 'commander';
import { reindex } from '../catalog/reindex';
import { withCatalog } from './catalog-context';
import { commandContext, selectDrivers } from './context';
import { EXIT_OK } from './exit-codes';
import { printJson, printLine } from './output';

/**
 * `depot reindex [--driver D]`: rebuilds the catalog from the manifests
 * (CONTRACT §8), streamed and resumable (an interrupted run, here or in a
 * worker, is continued where it stopped); progress on a terminal, or in the
 * log. Reports drift both ways; drift is not a failure (exit 0).
 */
export function registerReindex(program: Command): void {
  program
    .command('reindex')
    .description('rebuild the catalog from the manifests on the backends (resumable; reports drift both ways)')
    .option('--driver <driver>', 'only this driver')
    .option('--json', 'one JSON document on stdout')
    .action(async (options: { driver?: string; json?: boolean }) => {
      const ctx = commandContext(options);
      const drivers = options.driver !== undefined ? selectDrivers(ctx, [options.driver]) : undefined;
      await withCatalog(ctx, 'write', async (catalog) => {
        const tty = process.stderr.isTTY && !ctx.json;
        const report = await reindex(catalog, ctx.storage, {
          drivers,
          holder: `cli:${hostname()}:${process.pid}`,
          mode: 'manual',
          logger: ctx.logger,
          onProgress: tty ? (driver, p) => process.stderr.write(`\rreindex ${driver}: ${p.seen.toLocaleString('en')} manifests   `) : undefined,
        });
        if (tty) process.stderr.write('\r\x1b[K');
        if (!report) throw new Error('nothing to reindex');
        if (ctx.json) printJson({ ok: true, ...report });
        else {
          for (const d of report.drivers) {
            printLine(
              d.skipped
                ? `${d.driver}: cannot list its archives; its entries are left as they are`
                : `${d.driver}: ${d.seen} manifests; ${d.added} added to the catalog, ${d.updated} corrected, ${d.missing} in the catalog but not on the backend (marked missing), ${d.dropped} pending entries without an archive removed`,
            );
          }
          for (const ref of report.missing) printLine(`missing: ${ref.driver}:${ref.key}`);
          printLine(
            `reindex generation ${report.generation}${report.resumed ? ' (resumed)' : ''} finished; the catalog is ${report.filled ? 'filled' : 'not filled yet'}`,
          );
        }
        return EXIT_OK;
      });
    });
}
