import type { Command } from 'commander';
import { loadConfig } from '../config/load';
import { runSupervisor } from '../process/supervisor';
import { runWorkerProcess, workerName } from '../process/worker';
import { createLogger, logSettingsFromEnv } from '../support/logging';
import { UsageError } from './exit-codes';

/** The most worker processes one supervisor starts. */
const MAX_PROCESSES = 64;

/**
 * `depot worker`: the storage worker process in the foreground (src/process/worker.ts); SIGTERM stops it cleanly.
 * `--processes N`: N of them under a supervisor (src/process/supervisor.ts, CONTRACT §10).
 */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a storage worker (foreground; SIGTERM stops it cleanly)')
    .option('--processes <n>', `run N worker processes under a supervisor that restarts them (1-${MAX_PROCESSES})`)
    .action(async (options: { processes?: string }) => {
      const processes = options.processes === undefined ? undefined : Number(options.processes);
      if (processes !== undefined && (!/^\d+$/.test(options.processes ?? '') || processes < 1 || processes > MAX_PROCESSES))
        throw new UsageError(`--processes must be a whole number from 1 to ${MAX_PROCESSES}`);
      const config = loadConfig();
      const logger = createLogger(logSettingsFromEnv(process.env, process.stdout));
      const name = workerName();
      if (processes === undefined) {
        await runWorkerProcess(config, logger, name);
        return;
      }
      // A child's name `<name>-<N>` must be a valid worker name too.
      workerName({ DEPOT_WORKER_NAME: `${name}-${processes}` });
      process.exitCode = await runSupervisor(config, logger, { processes, name });
    });
}
