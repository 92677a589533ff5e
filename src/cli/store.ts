import path from 'node:path';
import { Command, Option } from 'commander';
import type { StoreResult } from '../contract';
import { EXIT_OK } from './exit-codes';
import { collect, parseMetaPairs } from './meta-options';
import { formatBytes, printJson, printLine } from './output';
import { showProgress } from './progress-bar';
import { managerFromConfig } from './queue-context';
import { enqueueOrReport, printOutcome, warnWithoutWorkers } from './task-outcome';

/** `depot store FILE`: queues a store task for a file the workers can read, and waits for it. */
export function registerStore(program: Command): void {
  program
    .command('store')
    .description('store FILE as a write-once archive (through the queue; a worker must be running)')
    .argument('<file>', 'the archive; workers must be able to read this path')
    .option('--name <name>', 'archive name (default: the file name)')
    .option('--driver <driver>', 'driver instance (default: defaultDriver)')
    .option('--meta <key=value>', 'metadata, repeatable', collect, [] as string[])
    .option('--sha256 <hex>', 'expected checksum')
    .addOption(new Option('--retain-until <time>', 'ISO 8601: write-once retention until then'))
    .addOption(new Option('--delete-after <time>', 'ISO 8601: delete automatically after then'))
    .option('--no-wait', 'print the taskId and return at once')
    .option('--json', 'one JSON document on stdout')
    .action(async (file: string, options: StoreOptions) => {
      const metadata = parseMetaPairs(options.meta, 'list');
      const absolute = path.resolve(file);
      const { config, manager } = managerFromConfig();
      try {
        const handle = await enqueueOrReport(options.json === true, () =>
          manager.store(
            { path: absolute },
            {
              name: options.name ?? path.basename(absolute),
              driver: options.driver,
              sha256: options.sha256,
              metadata,
              retainUntil: options.retainUntil,
              deleteAfter: options.deleteAfter,
            },
          ),
        );
        if (!handle) return;
        if (!options.wait) {
          if (options.json) printJson({ ok: true, taskId: handle.taskId, jobId: handle.jobId });
          else printLine(handle.taskId);
          process.exitCode = EXIT_OK;
          return;
        }
        await warnWithoutWorkers(manager, config.queue.name);
        await manager.listen();
        const stopProgress = showProgress(manager, handle.jobId);
        process.exitCode = await printOutcome<StoreResult>(handle, options.json === true, (r) => {
          stopProgress();
          return `stored ${r.name} (${formatBytes(r.size)}, sha256 ${r.sha256}) as ${r.ref.driver}:${r.ref.key}${r.failedOver ? ` after failing over (${r.driversTried.join(' → ')})` : ''}`;
        });
        stopProgress();
      } finally {
        await manager.close();
      }
    });
}

interface StoreOptions {
  name?: string;
  driver?: string;
  meta: string[];
  sha256?: string;
  retainUntil?: string;
  deleteAfter?: string;
  wait: boolean;
  json?: boolean;
}
