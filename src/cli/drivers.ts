import type { Command } from 'commander';
import { loadConfig } from '../config/load';
import { defaultDriverFactory } from '../storage/drivers';
import { printJson, printLine } from './output';

/** `depot drivers`: the configured instances and their settings, secrets as `***`. */
export function registerDrivers(program: Command): void {
  program
    .command('drivers')
    .description('configured drivers, secrets masked')
    .option('--json', 'one JSON document on stdout')
    .action((options: { json?: boolean }) => {
      const config = loadConfig();
      const factory = defaultDriverFactory();
      const drivers = Object.entries(config.drivers).map(([name, settings]) => {
        const shown = factory.masked(settings);
        return {
          name,
          type: settings.type,
          default: name === config.defaultDriver,
          fallbacks: Object.hasOwn(config.failover, name) ? config.failover[name] : [],
          settings: shown,
        };
      });
      if (options.json) {
        printJson({ source: config.source, defaultDriver: config.defaultDriver, drivers });
        return;
      }
      printLine(`configuration: ${config.source}`);
      for (const d of drivers) {
        const flags = [d.default ? 'default' : '', d.fallbacks.length ? `fails over to ${d.fallbacks.join(', ')}` : ''].filter(Boolean).join('; ');
        const settings = Object.entries(d.settings)
          .filter(([k]) => k !== 'type')
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        printLine(`${d.name} (${d.type})${flags ? ` [${flags}]` : ''} ${settings}`);
      }
    });
}
