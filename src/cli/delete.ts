import type { Command } from 'commander';
import type { DeleteResult } from '../contract';
import { managerFromConfig } from './queue-context';
import { enqueueOrReport, printOutcome, warnWithoutWorkers } from './task-outcome';

/** `depot delete DRIVER KEY`: deletes an archive unless it is under retention. */
export function registerDelete(program: Command): void {
  program
    .command('delete')
    .description('delete an archive (refused while it is under retention)')
    .argument('<driver>', 'driver instance')
    .argument('<key>', 'archive key, YYYY/MM/DD/<taskId>/<name>')
    .option('--json', 'one JSON document on stdout')
    .action(async (driver: string, key: string, options: { json?: boolean }) => {
      const { config, manager } = managerFromConfig();
      try {
        const handle = await enqueueOrReport(options.json === true, () => manager.delete({ driver, key }));
        if (!handle) return;
        await warnWithoutWorkers(manager, config.queue.name);
        process.exitCode = await printOutcome<DeleteResult>(handle, options.json === true, (r) => `deleted ${r.ref.driver}:${r.ref.key}`);
      } finally {
        await manager.close();
      }
    });
}
