import type { Command } from 'commander';
import type { CheckResult } from '../contract';
import { commandContext, selectDrivers } from './context';
import { EXIT_FAILED, EXIT_OK } from './exit-codes';
import { formatBytes, printJson, printLine } from './output';

/** `depot check [DRIVER...]`: write, read back, verify and delete a probe on each backend. */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('connection check, direct: test write, read back, verify, delete (exit 0 all ok, 1 otherwise)')
    .argument('[drivers...]', 'driver instances (default: all)')
    .option('--json', 'one JSON document on stdout')
    .action(async (names: string[], options: { json?: boolean }) => {
      const ctx = commandContext(options);
      try {
        const results: CheckResult[] = [];
        for (const name of selectDrivers(ctx, names)) results.push(await ctx.storage.getArchiveStore(name).check());
        const ok = results.every((r) => r.ok);
        if (ctx.json) printJson({ ok, results });
        else for (const r of results) printLine(describe(r));
        process.exitCode = ok ? EXIT_OK : EXIT_FAILED;
      } finally {
        await ctx.storage.close();
      }
    });
}

function describe(r: CheckResult): string {
  if (!r.ok) return `${r.driver}: FAILED ${r.error?.code}: ${r.error?.message}`;
  const free = r.space?.freeBytes !== undefined ? `, ${formatBytes(r.space.freeBytes)} free` : '';
  const writeOnce =
    r.writeOnce === 'best_effort'
      ? ', write-once: best_effort (the backend can replace objects; depot checks before and after each write)'
      : `, write-once: ${r.writeOnce ?? 'unknown'}`;
  return `${r.driver}: ok (write ${r.writeMs} ms, read ${r.readMs} ms, delete ${r.deleteMs} ms${free}${writeOnce})`;
}
