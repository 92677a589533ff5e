import type { Command } from 'commander';
import type { Space } from '../contract';
import { errorBody } from '../support/error-handler';
import { commandContext, selectDrivers } from './context';
import { EXIT_FAILED, EXIT_OK } from './exit-codes';
import { formatBytes, printJson, printLine } from './output';

type SpaceReport = { driver: string; space: Space } | { driver: string; error: { code: string; message: string } };

/** `depot space [DRIVER...]`: storage space as each backend reports it (absent figures: not reported). */
export function registerSpace(program: Command): void {
  program
    .command('space')
    .description('storage space as reported by each backend')
    .argument('[drivers...]', 'driver instances (default: all)')
    .option('--json', 'one JSON document on stdout')
    .action(async (names: string[], options: { json?: boolean }) => {
      const ctx = commandContext(options);
      try {
        const results: SpaceReport[] = [];
        for (const name of selectDrivers(ctx, names)) {
          try {
            results.push({ driver: name, space: await ctx.storage.getArchiveStore(name).space() });
          } catch (error) {
            results.push({ driver: name, error: errorBody(error) });
          }
        }
        const ok = results.every((r) => 'space' in r);
        if (ctx.json) printJson({ ok, results });
        else for (const r of results) printLine(describe(r));
        process.exitCode = ok ? EXIT_OK : EXIT_FAILED;
      } finally {
        await ctx.storage.close();
      }
    });
}

function describe(r: SpaceReport): string {
  if ('error' in r) return `${r.driver}: FAILED ${r.error.code}: ${r.error.message}`;
  const { totalBytes, freeBytes, usedBytes } = r.space;
  if (totalBytes === undefined && freeBytes === undefined && usedBytes === undefined) return `${r.driver}: not reported by the backend`;
  return `${r.driver}: ${formatBytes(freeBytes)} free, ${formatBytes(usedBytes)} used, ${formatBytes(totalBytes)} total`;
}
