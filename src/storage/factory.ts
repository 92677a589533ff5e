import type { z } from 'zod';
import { DepotError, fieldIssues, FieldIssue } from '../contract';
import type { Logger } from '../support/logging';
import type { StorageDriver } from './driver';

/**
 * One driver type: how its settings are checked, which of them are secrets, and
 * how an instance is made. Adding a backend is adding one of these.
 */
export interface DriverDefinition<S extends { type: string } = { type: string }> {
  type: string;
  settingsSchema: z.ZodType<S, unknown>;
  /** Settings that hold credentials: only from `${ENV}` or `<name>File`, masked in every output. */
  secretFields: readonly string[];
  /** Settings naming files (e.g. a CA certificate): relative ones are resolved against the config file's directory, and they must be readable. */
  fileFields?: readonly string[];
  create(name: string, settings: S, logger: Logger): StorageDriver;
}

export class SettingsError extends Error {
  constructor(readonly issues: FieldIssue[]) {
    super(issues.map((i) => `${i.field}: ${i.message}`).join('; '));
    this.name = 'SettingsError';
  }
}

/** StorageDriverFactory: driver type → implementation (strategy pattern). */
export class StorageDriverFactory {
  private readonly definitions = new Map<string, DriverDefinition>();

  register<S extends { type: string }>(definition: DriverDefinition<S>): this {
    this.definitions.set(definition.type, definition);
    return this;
  }

  types(): string[] {
    return [...this.definitions.keys()];
  }

  definition(type: string): DriverDefinition | undefined {
    return this.definitions.get(type);
  }

  /** Validates one instance's settings; issues are named `drivers.<name>.<field>`. */
  parseSettings(name: string, raw: unknown): { type: string } {
    const type = (raw as { type?: unknown } | null)?.type;
    const definition = typeof type === 'string' ? this.definitions.get(type) : undefined;
    if (!definition) {
      throw new SettingsError([
        { field: `drivers.${name}.type`, message: `must be one of ${this.types().join(', ')}${typeof type === 'string' ? ` (got '${type}')` : ''}` },
      ]);
    }
    const parsed = definition.settingsSchema.safeParse(raw);
    if (!parsed.success) throw new SettingsError(fieldIssues(parsed.error, `drivers.${name}`));
    return parsed.data;
  }

  create(name: string, settings: { type: string }, logger: Logger): StorageDriver {
    const definition = this.definitions.get(settings.type);
    if (!definition) throw new DepotError('unknown_driver', `driver type '${settings.type}' is not available`, { field: 'type' });
    return definition.create(name, settings, logger.child({ driver: name }));
  }
}
