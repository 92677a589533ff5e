import type { Command } from 'commander';
import { verifyArchives } from '../archiving/fixity';
import { createCallbackQueue } from '../queue/callbacks';
import { errorBody } from '../support/error-handler';
import { NotificationService } from '../support/notifications';
import { webhookSecrets } from '../support/webhook-signatures';
import { withCatalog } from './catalog-context';
import { commandContext, selectDrivers } from './context';
import { EXIT_FAILED, EXIT_OK, UsageError } from './exit-codes';
import { printError, printJson, printLine } from './output';

/**
 * `depot verify [--driver D] [--sample N]` (CONTRACT §8): archives read again
 * and compared with their manifests and the catalog, oldest verification first
 * (`--sample N`: the N verified longest ago), at `fixity.bytesPerSecond`;
 * every result recorded (actor `cli`). Corrupt or missing archives are
 * logged as errors and announced as `archive.corrupt` (when webhooks are
 * configured and Redis answers). Exit 1 when any is corrupt or missing.
 */
export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('read archives again and compare them with their manifests (exit 1 when any is corrupt or missing)')
    .option('--driver <driver>', 'only this driver')
    .option('--sample <n>', 'only the N archives verified longest ago')
    .option('--json', 'one JSON document on stdout')
    .action(async (options: { driver?: string; sample?: string; json?: boolean }) => {
      const sample = options.sample === undefined ? undefined : Number(options.sample);
      if (sample !== undefined && (!/^\d+$/.test(options.sample ?? '') || sample < 1))
        throw new UsageError(`--sample ${options.sample}: must be a whole number from 1`);
      const ctx = commandContext(options);
      if (options.driver !== undefined) selectDrivers(ctx, [options.driver]);
      const { config } = ctx;
      const callbacks = config.callbacks?.url ? createCallbackQueue(config.redis, config.queue.prefix, webhookSecrets(config.callbacks)) : undefined;
      const notifications = callbacks ? new NotificationService((d, id) => callbacks.enqueue(d, id), config.callbacks?.url) : undefined;
      try {
        await withCatalog(ctx, 'read', async (catalog) => {
          const report = await verifyArchives(ctx.storage, catalog, {
            dueBefore: new Date(),
            driver: options.driver,
            limit: sample,
            bytesPerSecond: config.fixity.bytesPerSecond,
            actor: 'cli',
            logger: ctx.logger,
            retry: { attempts: config.queue.attempts, backoffMs: config.queue.backoffMs },
            onCorrupt: notifications
              ? (n) => notifications.notifyArchive(n).catch((error: unknown) => printError(`archive.corrupt not queued (Redis?): ${errorBody(error).message}`))
              : undefined,
          });
          if (ctx.json) printJson(report);
          else {
            for (const ref of report.corrupt) printLine(`CORRUPT ${ref.driver}:${ref.key}`);
            for (const ref of report.missing) printLine(`MISSING ${ref.driver}:${ref.key}`);
            printLine(`${report.verified} verified: ${report.ok} ok, ${report.corrupt.length} corrupt, ${report.missing.length} missing`);
          }
          return report.corrupt.length || report.missing.length ? EXIT_FAILED : EXIT_OK;
        });
      } finally {
        await callbacks?.close();
      }
    });
}
