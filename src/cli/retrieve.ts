import path from 'node:path';
import type { Command } from 'commander';
import type { RetrieveResult } from '../contract';
import { formatBytes } from './output';
import { showProgress } from './progress-bar';
import { managerFromConfig } from './queue-context';
import { enqueueOrReport, printOutcome, warnWithoutWorkers } from './task-outcome';

/** `depot retrieve DRIVER KEY --out PATH`: reads an archive back, verified, into a new file. */
export function registerRetrieve(program: Command): void {
  program
    .command('retrieve')
    .description('read an archive back into a new file (verified against its sha256; an existing file is never replaced)')
    .argument('<driver>', 'driver instance')
    .argument('<key>', 'archive key, YYYY/MM/DD/<taskId>/<name>')
    .requiredOption('--out <path>', 'file to create; workers must be able to write there')
    .option('--json', 'one JSON document on stdout')
    .action(async (driver: string, key: string, options: { out: string; json?: boolean }) => {
      const { config, manager } = managerFromConfig();
      try {
        const handle = await enqueueOrReport(options.json === true, () => manager.retrieve({ driver, key }, { path: path.resolve(options.out) }));
        if (!handle) return;
        await warnWithoutWorkers(manager, config.queue.name);
        await manager.listen();
        const stopProgress = showProgress(manager, handle.jobId);
        process.exitCode = await printOutcome<RetrieveResult>(handle, options.json === true, (r) => {
          stopProgress();
          return `retrieved ${r.ref.driver}:${r.ref.key} (${formatBytes(r.size)}, sha256 ${r.sha256} verified) to ${r.path}`;
        });
        stopProgress();
      } finally {
        await manager.close();
      }
    });
}
