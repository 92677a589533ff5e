import type { Command } from 'commander';
import { loadConfig } from '../config/load';
import { onStopSignals } from '../process/stop-signals';
import { StorageAPI } from '../storage/api';
import { defaultDriverFactory } from '../storage/drivers';
import { createLogger, logSettingsFromEnv } from '../support/logging';
import { exitIfStopHangs, STOP_BOUND_MS } from '../support/stop-deadline';

/** `depot serve`: /health, /metrics, the task API and bull-board over HTTP (foreground; SIGTERM stops it). */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('HTTP: /health, /metrics (Prometheus), the task API (/v1/tasks) and bull-board (/queues) on http.host:http.port')
    .action(async () => {
      const config = loadConfig();
      const logger = createLogger(logSettingsFromEnv(process.env, process.stdout));
      const storage = new StorageAPI(config, defaultDriverFactory(), logger);
      // Loaded here: the dashboard's packages (express, bull-board) are for this command only.
      const { startHttpServer } = await import('../http/server');
      const http = await startHttpServer(config, storage, logger);
      logger.info(`serving /health, /metrics and /v1/tasks on ${http.url}`, { url: http.url });
      await new Promise<void>((resolve) => {
        onStopSignals(
          logger,
          (signal) => {
            logger.info(`${signal}: stopping`);
            exitIfStopHangs(STOP_BOUND_MS, logger, 'depot serve');
            void http
              .close()
              .then(() => storage.close())
              .finally(resolve);
          },
          'requests still open are cut off',
        );
      });
    });
}
