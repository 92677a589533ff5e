import { Config, loadConfig } from '../config/load';
import { defaultDriverFactory } from '../storage/drivers';
import { StorageAPI } from '../storage/api';
import { createLogger, Logger, logSettingsFromEnv } from '../support/logging';
import { UsageError } from './exit-codes';

/** What every command starts from: the validated config, a logger and the drivers. */
export interface CommandContext {
  config: Config;
  logger: Logger;
  storage: StorageAPI;
  json: boolean;
}

/**
 * Commands that answer on stdout log to stderr, so `--json` output stays one
 * clean document; the worker (a long-running service) logs to stdout.
 */
export function commandContext(options: { json?: boolean; logTo?: 'stdout' | 'stderr' }): CommandContext {
  const stream = options.logTo === 'stdout' ? process.stdout : process.stderr;
  const config = loadConfig();
  const logger = createLogger({ ...logSettingsFromEnv(process.env, stream), stream });
  const factory = defaultDriverFactory();
  return { config, logger, storage: new StorageAPI(config, factory, logger), json: options.json === true };
}

/** The named drivers, or all when none are named; an unknown name is a usage error. */
export function selectDrivers(ctx: CommandContext, names: string[]): string[] {
  const known = ctx.storage.driverNames();
  for (const name of names) {
    if (!known.includes(name)) throw new UsageError(`unknown_driver: no driver named '${name}' (configured: ${known.join(', ')})`);
  }
  return names.length ? names : known;
}
