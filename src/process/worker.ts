import { hostname } from 'node:os';
import { runnerSettings } from '../archiving/runner-settings';
import { TaskRunner } from '../archiving/task-runner';
import { ConfigError } from '../config/config-error';
import type { Config } from '../config/load';
import { createCallbackQueue, startCallbackWorker } from '../queue/callbacks';
import { scheduleExpiry, scheduleFixity } from '../queue/expiry-schedule';
import { breakerSettings, RedisBreakers } from '../queue/breaker';
import { createRedis } from '../queue/connection';
import { startStorageWorker, StorageWorkerOptions } from '../queue/storage-worker';
import { DeferredCatalog, openCatalog } from '../catalog/open';
import { startAutomaticReindex } from '../catalog/reindex';
import { StorageAPI } from '../storage/api';
import { defaultDriverFactory } from '../storage/drivers';
import { ignoreErrorEvents, ignoreFailure } from '../support/ignore';
import type { Logger } from '../support/logging';
import { NotificationService } from '../support/notifications';
import { exitIfStopHangs, STOP_BOUND_MS } from '../support/stop-deadline';
import { webhookSecrets } from '../support/webhook-signatures';
import { onStopSignals } from './stop-signals';

/**
 * The worker process (`depot worker`), the one entry point of every storage
 * worker: bin/depot, the Procfile, the Docker image, the tests and the
 * benchmarks all start it as `depot worker`. Tests that want a worker inside
 * their own process call startDepotWorker, which the process runs too.
 */

/** The worker's queue settings, as the config gives them. */
export function storageWorkerOptions(config: Config, name: string): StorageWorkerOptions {
  return {
    redis: config.redis,
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

export interface DepotWorker {
  storage: StorageAPI;
  catalog: DeferredCatalog;
  /** Resolves once the storage worker's connection is ready (never, while Redis is away). */
  ready(): Promise<void>;
  /** Stops taking tasks, lets running ones finish within the grace period, then closes everything. */
  close(): Promise<void>;
}

/**
 * A storage worker with everything the process runs beside it: the drivers
 * (StorageAPI), the task runner, and webhooks (CONTRACT §4) — queued by the
 * storage worker on the callback queue, sent by a callback worker in the same
 * process, signed with the configured secrets. No signal handlers and no
 * expiry schedule: those belong to the process (runWorkerProcess).
 */
export function startDepotWorker(config: Config, logger: Logger, name: string): DepotWorker {
  const storage = new StorageAPI(config, defaultDriverFactory(), logger);
  // Opened (created, migrated) on first use and again after a failure: a catalog that is down at start does not stop the worker.
  const catalog = new DeferredCatalog(config.catalog.location, () => openCatalog(config.catalog, 'write'));
  const secrets = webhookSecrets(config.callbacks);
  const callbackQueue = createCallbackQueue(config.redis, config.queue.prefix, secrets);
  const notifications = new NotificationService((d, id) => callbackQueue.enqueue(d, id), config.callbacks?.url);
  // The drivers' circuit breakers (CONTRACT §10), in Redis beside the queue; a connection that fails fast, so an outage admits every driver.
  const breakerConnection = createRedis(config.redis, 'producer');
  ignoreErrorEvents(breakerConnection, 'a breaker Redis does not answer admits the driver, with a warning now and then (src/queue/breaker.ts)');
  const breakers = new RedisBreakers(breakerConnection, { prefix: config.queue.prefix, name: config.queue.name }, breakerSettings(config.drivers), logger);
  const runner = new TaskRunner(storage, runnerSettings(config), logger, catalog, notifications, breakers);
  catalog.ready().then(
    () => logger.info(`catalog at ${config.catalog.location}`),
    (error: Error) => logger.warn(`catalog at ${config.catalog.location} not reachable yet (tasks that need it wait and retry): ${error.message}`),
  );
  // A catalog that has not yet seen the drivers' archives (new, or after this upgrade) is filled from the manifests (§8).
  const filling = startAutomaticReindex(catalog, storage, logger, name);
  const callbacks = startCallbackWorker({ redis: config.redis, prefix: config.queue.prefix, secrets, name }, logger);
  const worker = startStorageWorker(
    (operation, data, ctx) => runner.processTask(operation, data, ctx),
    { ...storageWorkerOptions(config, name), notifications, onAbandoned: (operation, data, job) => runner.abandoned(operation, data, job) },
    logger,
  );
  return {
    storage,
    catalog,
    ready: () => worker.worker.waitUntilReady().then(() => undefined),
    // The storage worker first: its running tasks may still queue webhooks, which the callback side then still takes.
    close: () =>
      worker
        .close()
        .then(() => Promise.allSettled([callbacks.close(), callbackQueue.close(), filling.stop()]))
        .then(() => Promise.allSettled([storage.close(), catalog.close(), Promise.resolve(breakerConnection.disconnect())]))
        .then(() => undefined),
  };
}

/**
 * The storage worker process: takes StorageTask jobs from queue `depot` and
 * runs them until SIGTERM or SIGINT, then stops cleanly and resolves (the
 * caller exits 0). A second signal exits 1 at once; a stop that hangs (Redis or
 * a backend gone) exits 1 after the grace period plus STOP_BOUND_MS. Either way
 * running tasks come back through stalled-job recovery.
 */
export async function runWorkerProcess(config: Config, logger: Logger, name = workerName()): Promise<void> {
  const worker = startDepotWorker(config, logger, name);
  // One repeating `expire` job for the whole queue, however many workers upsert it.
  scheduleExpiry({
    redis: config.redis,
    queueName: config.queue.name,
    prefix: config.queue.prefix,
    everyMs: config.queue.expiryIntervalMs,
  }).catch((error: Error) => logger.warn(`automatic deletion not scheduled: ${error.message}`));
  // The fixity cycle (CONTRACT §8): one repeating `verify` job for the whole queue.
  scheduleFixity({
    redis: config.redis,
    queueName: config.queue.name,
    prefix: config.queue.prefix,
    everyMs: config.fixity.intervalMs,
  }).catch((error: Error) => logger.warn(`fixity checks not scheduled: ${error.message}`));

  let stopping = false;
  await new Promise<void>((resolve) => {
    const stop = onStopSignals(
      logger,
      (signal) => {
        stopping = true;
        logger.info(`${signal}: stopping; no new tasks are taken`);
        exitIfStopHangs(config.queue.shutdownGraceMs + STOP_BOUND_MS, logger, 'the storage worker');
        worker
          .close()
          .catch((error: Error) => logger.error(`stopping failed: ${error.message}`))
          .finally(resolve);
      },
      'running tasks come back through stalled-job recovery',
    );
    // A child of `depot worker --processes N` (src/process/supervisor.ts): stops as on SIGTERM when its supervisor is gone.
    // The channel alone does not keep the process alive.
    process.channel?.unref();
    if (process.send)
      process.once('disconnect', () => {
        if (stopping) return;
        logger.warn('the supervisor is gone: stopping');
        stop('SIGTERM');
      });
    void ignoreFailure(
      worker.ready().then(() => {
        process.send?.({ depot: 'ready' });
        logger.info('storage worker ready', {
          queue: config.queue.name,
          concurrency: config.queue.concurrency,
          drivers: worker.storage.driverNames(),
          defaultDriver: config.defaultDriver,
          config: config.source,
        });
      }),
      'no ready line for a worker closed before it was ready: its stop is logged',
    );
  });
  logger.info('storage worker stopped');
}
