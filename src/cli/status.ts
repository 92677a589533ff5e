import { Queue } from 'bullmq';
import type { Command } from 'commander';
import { loadConfig } from '../config/load';
import { createRedis, waitForRedis } from '../queue/connection';
import { EXIT_FAILED, EXIT_OK } from './exit-codes';
import { printError, printJson, printLine } from './output';

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;

/** `depot status`: how many tasks are in each state, and which workers are connected. */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('queue counts and workers')
    .option('--json', 'one JSON document on stdout')
    .action(async (options: { json?: boolean }) => {
      const config = loadConfig();
      const connection = createRedis(config.redis.url, 'producer');
      connection.on('error', () => undefined);
      const queue = new Queue(config.queue.name, { connection, prefix: config.queue.prefix });
      queue.on('error', () => undefined); // reported below, once
      try {
        await waitForRedis(connection, 5_000, true);
        const counts = await queue.getJobCounts(...STATES);
        // BullMQ names its connections `<prefix>:<base64 queue>:w:<worker name>`; show the worker name.
        const workers = (await queue.getWorkers()).map((w) => ({ name: w.rawname?.split(':w:')[1] ?? w.name, addr: w.addr, ageSeconds: Number(w.age) }));
        if (options.json) printJson({ ok: true, queue: config.queue.name, counts, workers });
        else {
          printLine(`queue ${config.queue.name}: ${STATES.map((s) => `${s} ${counts[s] ?? 0}`).join(', ')}`);
          printLine(`workers: ${workers.length}${workers.length ? ' (' + workers.map((w) => w.name).join(', ') + ')' : ''}`);
        }
        process.exitCode = EXIT_OK;
      } catch (error) {
        const message = `unavailable: Redis at ${config.redis.url}: ${(error as Error).message}`;
        if (options.json) printJson({ ok: false, error: { code: 'unavailable', message } });
        else printError(message);
        process.exitCode = EXIT_FAILED;
      } finally {
        await queue.close().catch(() => undefined);
        connection.disconnect();
      }
    });
}
