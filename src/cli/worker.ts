import type { Command } from 'commander';
import { loadConfig } from '../config/load';
import { runWorkerProcess, workerName } from '../process/worker';
import { createLogger, logSettingsFromEnv } from '../support/logging';

/** `depot worker`: the storage worker process in the foreground (src/process/worker.ts); SIGTERM stops it cleanly. */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a storage worker (foreground; SIGTERM stops it cleanly)')
    .action(async () => {
      const config = loadConfig();
      const logger = createLogger(logSettingsFromEnv(process.env, process.stdout));
      await runWorkerProcess(config, logger, workerName());
    });
}
