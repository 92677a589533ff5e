import type { Command } from 'commander';
import { runStorageWorker } from '../../workers/storage-worker';
import { loadConfig } from '../config/load';
import { createLogger, logSettingsFromEnv } from '../support/logging';

/** `depot worker`: the storage worker in the foreground; SIGTERM stops it cleanly. */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a storage worker (foreground; SIGTERM stops it cleanly)')
    .action(async () => {
      const config = loadConfig();
      const logger = createLogger(logSettingsFromEnv(process.env, process.stdout));
      await runStorageWorker(config, logger);
    });
}
