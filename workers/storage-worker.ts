import { hostname } from 'node:os';
import { runnerSettings } from '../src/archiving/runner-settings';
import { TaskRunner } from '../src/archiving/task-runner';
import { ConfigError } from '../src/config/config-error';
import { Config, loadConfig } from '../src/config/load';
import { createCallbackQueue, startCallbackWorker } from '../src/queue/callbacks';
import { scheduleExpiry } from '../src/queue/expiry-schedule';
import { startStorageWorker, StorageWorkerOptions } from '../src/queue/storage-worker';
import { StorageAPI } from '../src/storage/api';
import { defaultDriverFactory } from '../src/storage/drivers';
import { createLogger, Logger, logSettingsFromEnv } from '../src/support/logging';
import { NotificationService } from '../src/support/notifications';
import { exitIfStopHangs, STOP_BOUND_MS } from '../src/support/stop-deadline';
import { webhookSecrets } from '../src/support/webhook-signatures';

/** The worker's queue settings, as the config gives them. */
export function storageWorkerOptions(config: Config, name: string): StorageWorkerOptions {
  return {
    redisUrl: config.redis.url,
    queueName: config.queue.name,
    prefix: config.queue.prefix,
    concurrency: config.queue.concurrency,
    lockDurationMs: config.queue.lockDurationMs,
    stalledIntervalMs: config.queue.stalledIntervalMs,
    shutdownGraceMs: config.queue.shutdownGraceMs,
    name,
    retention: { completed: config.queue.keepCompleted, failed: config.queue.keepFailed },
    inlineResultMs: config.queue.inlineResultSeconds * 1000,
  };
}

/**
 * The worker's name in `depot status`, bull-board and on each job it takes:
 * DEPOT_WORKER_NAME, or `<host>:<pid>` — the form that lets a restarted worker
 * hand back the jobs of its dead predecessor at once (src/queue/orphaned-jobs.ts).
 */
export function workerName(env: NodeJS.ProcessEnv = process.env): string {
  const name = env.DEPOT_WORKER_NAME;
  if (name === undefined || name === '') return `${hostname()}:${process.pid}`;
  // Redis client names allow no spaces or control characters.
  if (!/^[\x21-\x7e]{1,100}$/.test(name))
    throw new ConfigError([{ field: 'DEPOT_WORKER_NAME', message: 'must be 1–100 printable ASCII characters without spaces' }], 'environment');
  return name;
}

/**
 * The storage worker process: takes StorageTask jobs from queue `depot` and runs
 * them until SIGTERM or SIGINT, then stops cleanly and exits 0.
 */
export async function runStorageWorker(config: Config, logger: Logger, name = workerName()): Promise<void> {
  const storage = new StorageAPI(config, defaultDriverFactory(), logger);
  const runner = new TaskRunner(storage, runnerSettings(config), logger);
  // Webhooks (CONTRACT §4): queued by the storage worker, sent by a callback worker in the same process.
  const secrets = webhookSecrets(config.callbacks);
  const callbackQueue = createCallbackQueue(config.redis.url, config.queue.prefix, secrets);
  const callbacks = startCallbackWorker({ redisUrl: config.redis.url, prefix: config.queue.prefix, secrets, name }, logger);
  const worker = startStorageWorker(
    (operation, data, ctx) => runner.processTask(operation, data, ctx),
    { ...storageWorkerOptions(config, name), notifications: new NotificationService((d, id) => callbackQueue.enqueue(d, id), config.callbacks?.url) },
    logger,
  );

  scheduleExpiry({
    redisUrl: config.redis.url,
    queueName: config.queue.name,
    prefix: config.queue.prefix,
    everyMs: config.queue.expiryIntervalMs,
  }).catch((error: Error) => logger.warn(`automatic deletion not scheduled: ${error.message}`));

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn(`${signal} again: exiting at once; running tasks come back through stalled-job recovery`);
        process.exit(1);
      }
      stopping = true;
      logger.info(`${signal}: stopping; no new tasks are taken`);
      exitIfStopHangs(config.queue.shutdownGraceMs + STOP_BOUND_MS, logger, 'the storage worker');
      worker
        .close()
        .then(() => Promise.allSettled([callbacks.close(), callbackQueue.close()]))
        .then(() => storage.close())
        .catch((error: Error) => logger.error(`stopping failed: ${error.message}`))
        .finally(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    worker.worker.waitUntilReady().then(
      () =>
        logger.info('storage worker ready', {
          queue: config.queue.name,
          concurrency: config.queue.concurrency,
          drivers: storage.driverNames(),
          defaultDriver: config.defaultDriver,
          config: config.source,
        }),
      () => undefined,
    );
  });
  logger.info('storage worker stopped');
}

if (require.main === module) {
  let config: Config;
  let logger: Logger;
  let name: string;
  try {
    logger = createLogger(logSettingsFromEnv(process.env, process.stdout));
    config = loadConfig();
    name = workerName();
  } catch (error) {
    if (error instanceof ConfigError) for (const issue of error.issues) process.stderr.write(`depot: ${issue.field}: ${issue.message}\n`);
    else process.stderr.write(`depot: ${(error as Error).message}\n`);
    process.exit(2);
  }
  runStorageWorker(config, logger, name).then(
    () => process.exit(0),
    (error: Error) => {
      logger.error(`storage worker failed: ${error.message}`);
      process.exit(1);
    },
  );
}
