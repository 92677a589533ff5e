import { Queue } from 'bullmq';
import type { Command } from 'commander';
import { loadConfig } from '../config/load';
import { workerConnections } from '../queue/bullmq-internals';
import { createRedis, redisUrlForDisplay, waitForRedis } from '../queue/connection';
import { CALLBACK_QUEUE, DELIVERY_STATES, TASK_STATES } from '../queue/names';
import { taskJobCounts } from '../queue/queue-depth';
import { EXIT_FAILED, EXIT_OK } from './exit-codes';
import { printError, printJson, printLine } from './output';
import { ignoreErrorEvents } from '../support/ignore';

/** `depot status`: how many tasks are in each state, which workers are connected, and how webhook deliveries stand. */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('queue counts and workers')
    .option('--json', 'one JSON document on stdout')
    .action(async (options: { json?: boolean }) => {
      const config = loadConfig();
      const connection = createRedis(config.redis.url, 'producer');
      ignoreErrorEvents(connection, 'reported below, once');
      const queue = new Queue(config.queue.name, { connection, prefix: config.queue.prefix });
      ignoreErrorEvents(queue, 'reported below, once');
      const callbacks = new Queue(CALLBACK_QUEUE, { connection, prefix: config.queue.prefix });
      ignoreErrorEvents(callbacks, 'reported below, once');
      try {
        await waitForRedis(connection, 5_000, true);
        // Tasks only: depot's expiry scheduler always keeps its next run on the queue.
        const counts = await taskJobCounts(queue);
        // Each connection under its worker's name; a worker started without one shows as the queue's.
        const workers = (await workerConnections(queue)).map((w) => ({ name: w.name ?? config.queue.name, addr: w.addr, ageSeconds: w.ageSeconds }));
        // Deliveries still retrying (delayed) or given up (failed) mean a receiver is not answering.
        const webhooks = await callbacks.getJobCounts(...DELIVERY_STATES);
        if (options.json) printJson({ ok: true, queue: config.queue.name, counts, workers, webhooks });
        else {
          printLine(`queue ${config.queue.name}: ${TASK_STATES.map((s) => `${s} ${counts[s] ?? 0}`).join(', ')}`);
          printLine(`workers: ${workers.length}${workers.length ? ' (' + workers.map((w) => w.name).join(', ') + ')' : ''}`);
          printLine(`webhooks (${CALLBACK_QUEUE}): ${DELIVERY_STATES.map((s) => `${s} ${webhooks[s] ?? 0}`).join(', ')}`);
        }
        process.exitCode = EXIT_OK;
      } catch (error) {
        const message = `unavailable: Redis at ${redisUrlForDisplay(config.redis.url)}: ${(error as Error).message}`;
        if (options.json) printJson({ ok: false, error: { code: 'unavailable', message } });
        else printError(message);
        process.exitCode = EXIT_FAILED;
      } finally {
        await Promise.allSettled([queue.close(), callbacks.close()]);
        connection.disconnect();
      }
    });
}
