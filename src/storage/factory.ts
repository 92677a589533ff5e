import { z } from 'zod';
import { DepotError, fieldIssues, FieldIssue } from '../contract';
import type { Logger } from '../support/logging';
import type { StorageDriver } from './driver';
import { commonDriverSettings } from './driver-settings';
import { loadDriverPlugin } from './plugins';

/**
 * One driver type: how its settings are checked, which of them are secrets, and
 * how an instance is made. Adding a backend is adding one of these.
 */
export interface DriverDefinition<S extends { type: string } = { type: string }> {
  type: string;
  settingsSchema: z.ZodType<S, unknown>;
  /** Settings that hold credentials (`a.b` for nested ones): only from `${ENV}` or `<name>File`, masked in every output. */
  secretFields: readonly string[];
  /** Settings naming files (e.g. a CA certificate; `tls.caFile` for nested ones): relative ones are resolved against the config file's directory, and they must be readable. */
  fileFields?: readonly string[];
  create(name: string, settings: S, logger: Logger): StorageDriver;
}

export class SettingsError extends Error {
  constructor(readonly issues: FieldIssue[]) {
    super(issues.map((i) => `${i.field}: ${i.message}`).join('; '));
    this.name = 'SettingsError';
  }
}

/** The settings every driver shares; for a plugin depot checks them, not the plugin's schema. */
const sharedSettings = z.object(commonDriverSettings);
const SHARED_KEYS = Object.keys(commonDriverSettings);

/** StorageDriverFactory: driver type → implementation (strategy pattern); a plugin's by its `module` (see plugins.ts). */
export class StorageDriverFactory {
  /** A type's definition, or what loads it on first use (registerLazy). */
  private readonly definitions = new Map<string, DriverDefinition | (() => DriverDefinition)>();

  register<S extends { type: string }>(definition: DriverDefinition<S>): this {
    this.definitions.set(definition.type, definition);
    return this;
  }

  /** A type whose definition is loaded (`load` called once) only when it is first asked for. */
  registerLazy(type: string, load: () => DriverDefinition): this {
    this.definitions.set(type, load);
    return this;
  }

  types(): string[] {
    return [...this.definitions.keys()];
  }

  definition(type: string): DriverDefinition | undefined {
    const entry = this.definitions.get(type);
    if (typeof entry !== 'function') return entry;
    const loaded = entry();
    this.definitions.set(type, loaded);
    return loaded;
  }

  /** The definition one instance's settings name: its plugin's when they have `module` (a resolved file by now), else the built-in type's. */
  definitionOf(settings: unknown): DriverDefinition | undefined {
    const module = (settings as { module?: unknown } | null)?.module;
    if (typeof module === 'string') return loadDriverPlugin(module, '/').definition;
    const type = (settings as { type?: unknown } | null)?.type;
    return typeof type === 'string' ? this.definition(type) : undefined;
  }

  /** Validates one instance's settings; issues are named `drivers.<name>.<field>`. */
  parseSettings(name: string, raw: unknown): { type: string } {
    const definition = this.definitionOf(raw);
    if (!definition) {
      const type = (raw as { type?: unknown } | null)?.type;
      const got = typeof type === 'string' ? ` (got '${type}')` : '';
      throw new SettingsError([{ field: `drivers.${name}.type`, message: `must be one of ${this.types().join(', ')}${got}, or a plugin's with module:` }]);
    }
    if (typeof (raw as { module?: unknown }).module === 'string') return parsePluginSettings(name, raw as Record<string, unknown>, definition);
    const parsed = definition.settingsSchema.safeParse(raw);
    if (!parsed.success) throw new SettingsError(fieldIssues(parsed.error, `drivers.${name}`));
    return parsed.data;
  }

  create(name: string, settings: { type: string }, logger: Logger): StorageDriver {
    const definition = this.definitionOf(settings);
    if (!definition) throw new DepotError('unknown_driver', `driver type '${settings.type}' is not available`, { field: 'type' });
    return definition.create(name, settings, logger.child({ driver: name }));
  }

  /** A copy of one instance's settings with its secrets (nested ones too) shown as `***`. */
  masked(settings: { type: string }): Record<string, unknown> {
    const shown = structuredClone(settings) as Record<string, unknown>;
    for (const secret of this.definitionOf(settings)?.secretFields ?? []) {
      const { holder, key } = settingAt(shown, secret);
      if (holder && holder[key] !== undefined) holder[key] = '***';
    }
    return shown;
  }
}

/**
 * A plugin's settings: the shared keys are checked by depot, the rest by the
 * plugin's own schema (which need not know them), and both reach its `create`.
 */
function parsePluginSettings(name: string, raw: Record<string, unknown>, definition: DriverDefinition): { type: string } {
  const { module, ...rest } = raw;
  const shared = Object.fromEntries(Object.entries(rest).filter(([key]) => SHARED_KEYS.includes(key)));
  const own = Object.fromEntries(Object.entries(rest).filter(([key]) => !SHARED_KEYS.includes(key)));
  const sharedParsed = sharedSettings.safeParse(shared);
  const ownParsed = definition.settingsSchema.safeParse(own);
  const issues = [
    ...(sharedParsed.success ? [] : fieldIssues(sharedParsed.error, `drivers.${name}`)),
    ...(ownParsed.success ? [] : fieldIssues(ownParsed.error, `drivers.${name}`)),
  ];
  if (!sharedParsed.success || !ownParsed.success) throw new SettingsError(issues);
  const settings: { type: string; [setting: string]: unknown } = { ...ownParsed.data, ...sharedParsed.data, type: definition.type, module };
  return settings;
}

/** The object holding a dotted setting (`tls.caFile` → settings.tls, `caFile`); no holder when a level is missing. */
export function settingAt(settings: Record<string, unknown>, dotted: string): { holder: Record<string, unknown> | undefined; key: string } {
  const parts = dotted.split('.');
  const key = parts.pop() as string;
  let holder: unknown = settings;
  for (const part of parts) holder = typeof holder === 'object' && holder !== null ? (holder as Record<string, unknown>)[part] : undefined;
  const isObject = typeof holder === 'object' && holder !== null && !Array.isArray(holder);
  return { holder: isObject ? (holder as Record<string, unknown>) : undefined, key };
}
