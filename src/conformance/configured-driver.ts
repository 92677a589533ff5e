import { loadConfig } from '../config/load';
import type { StorageDriver } from '../storage/driver';
import { defaultDriverFactory } from '../storage/drivers';
import { silentLogger } from '../support/logging';
import { Redactor } from '../support/redaction';

export interface ConfiguredDriverOptions {
  /** The depot config file (JSON or YAML); `module:` paths in it are resolved against its folder. */
  config: string;
  /** The driver's name under `drivers`. */
  driver: string;
  /** The environment its `${ENV}` references read (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/**
 * One driver of a depot config, made as `depot worker` makes it: the config
 * validated (a plugin's module loaded, its settings checked, secrets and files
 * resolved), then the driver created. A plugin's conformance tests use it to
 * test what operators will run.
 */
export function configuredDriver(options: ConfiguredDriverOptions): StorageDriver {
  const env = { ...(options.env ?? process.env), DEPOT_CONFIG: options.config };
  const factory = defaultDriverFactory();
  const config = loadConfig({ env, factory, redactor: new Redactor() });
  const settings = Object.hasOwn(config.drivers, options.driver) ? config.drivers[options.driver] : undefined;
  if (!settings) throw new Error(`${config.source} has no driver named '${options.driver}' (drivers: ${Object.keys(config.drivers).join(', ')})`);
  return factory.create(options.driver, settings, silentLogger());
}
