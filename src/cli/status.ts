import { Queue } from 'bullmq';
import type { Command } from 'commander';
import { loadConfig } from '../config/load';
import { workerConnections } from '../queue/bullmq-internals';
import { createRedis, redisForDisplay, waitForRedis } from '../queue/connection';
import { CALLBACK_QUEUE, DELIVERY_STATES, TASK_STATES } from '../queue/names';
import { taskJobCounts } from '../queue/queue-depth';
import { breakerSettings, RedisBreakers } from '../queue/breaker';
import { SupervisorRegistry } from '../queue/supervisors';
import { EXIT_FAILED, EXIT_OK } from './exit-codes';
import { printError, printJson, printLine } from './output';
import { ignoreErrorEvents } from '../support/ignore';

/**
 * `depot status`: how many tasks are in each state, which workers are connected (and the supervisors of
 * `depot worker --processes N` with their children), how webhook deliveries stand, and each driver's circuit breaker.
 */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('queue counts and workers')
    .option('--json', 'one JSON document on stdout')
    .action(async (options: { json?: boolean }) => {
      const config = loadConfig();
      const connection = createRedis(config.redis, 'producer');
      ignoreErrorEvents(connection, 'reported below, once');
      const queue = new Queue(config.queue.name, { connection, prefix: config.queue.prefix });
      ignoreErrorEvents(queue, 'reported below, once');
      const callbacks = new Queue(CALLBACK_QUEUE, { connection, prefix: config.queue.prefix });
      ignoreErrorEvents(callbacks, 'reported below, once');
      const queueId = { prefix: config.queue.prefix, name: config.queue.name };
      try {
        await waitForRedis(connection, 5_000, true);
        // Tasks only: depot's expiry scheduler always keeps its next run on the queue.
        const counts = await taskJobCounts(queue);
        // Each connection under its worker's name; a worker started without one shows as the queue's.
        const workers = (await workerConnections(queue)).map((w) => ({ name: w.name ?? config.queue.name, addr: w.addr, ageSeconds: w.ageSeconds }));
        // Deliveries still retrying (delayed) or given up (failed) mean a receiver is not answering.
        const webhooks = await callbacks.getJobCounts(...DELIVERY_STATES);
        // `depot worker --processes N` supervisors and their children (CONTRACT §10).
        const supervisors = (await new SupervisorRegistry(connection, queueId).list()).map(({ expiresAt: _expires, ...report }) => report);
        // Each driver's circuit breaker, as every worker sees it (CONTRACT §10).
        const drivers = (await new RedisBreakers(connection, queueId, breakerSettings(config.drivers)).report()).map(
          ({ driver, state, failures, openUntil }) => ({
            driver,
            breaker: state,
            failures,
            ...(openUntil ? { openUntil } : {}),
          }),
        );
        if (options.json) printJson({ ok: true, queue: config.queue.name, counts, workers, webhooks, supervisors, drivers });
        else {
          printLine(`queue ${config.queue.name}: ${TASK_STATES.map((s) => `${s} ${counts[s] ?? 0}`).join(', ')}`);
          printLine(`workers: ${workers.length}${workers.length ? ' (' + workers.map((w) => w.name).join(', ') + ')' : ''}`);
          for (const s of supervisors) {
            printLine(
              `supervisor ${s.name} (pid ${s.pid} on ${s.host}): ${s.processes} processes, ${s.recentRestarts} restarts recently (limit ${s.maxRestarts})`,
            );
            for (const c of s.children) printLine(`  ${c.name}: ${c.state}${c.pid ? ` (pid ${c.pid})` : ''}, restarted ${c.restarts} times`);
          }
          printLine(`webhooks (${CALLBACK_QUEUE}): ${DELIVERY_STATES.map((s) => `${s} ${webhooks[s] ?? 0}`).join(', ')}`);
          printLine(`breakers: ${drivers.map((d) => `${d.driver} ${d.breaker}`).join(', ')}`);
        }
        process.exitCode = EXIT_OK;
      } catch (error) {
        const message = `unavailable: Redis at ${redisForDisplay(config.redis)}: ${(error as Error).message}`;
        if (options.json) printJson({ ok: false, error: { code: 'unavailable', message } });
        else printError(message);
        process.exitCode = EXIT_FAILED;
      } finally {
        await Promise.allSettled([queue.close(), callbacks.close()]);
        connection.disconnect();
      }
    });
}
