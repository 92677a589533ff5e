import { createRequire } from 'node:module';
import path from 'node:path';
import type { DriverDefinition } from './factory';

/**
 * Driver plugins: a driver whose settings name `module:` (a package name or a
 * path) comes from that module instead of this build (CONTRACT §11). The module
 * exports a DriverDefinition as its default export or as `driver`; a CommonJS
 * module may also be the definition itself (`module.exports = definition`).
 */

/** Why a plugin module cannot be used; the config loader names the driver's `module` field. */
export class PluginLoadError extends Error {
  override name = 'PluginLoadError';
}

/** A loaded plugin: the module's file (what `module:` resolved to) and its definition. */
export interface LoadedPlugin {
  file: string;
  definition: DriverDefinition;
}

const loaded = new Map<string, DriverDefinition>();

/**
 * Resolves `spec` as Node's require would from the config file's folder:
 * relative paths against that folder (never the working directory), package
 * names from its node_modules and then from depot's own install (a plugin
 * installed beside archive-depot).
 */
export function resolvePluginModule(spec: string, baseDir: string): string {
  const fromConfig = createRequire(path.join(baseDir, 'depot.config'));
  try {
    return fromConfig.resolve(spec);
  } catch (error) {
    const isPath = spec.startsWith('.') || path.isAbsolute(spec);
    if (!isPath && (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') {
      try {
        return require.resolve(spec);
      } catch {
        // reported below, as where the config's folder looked
      }
    }
    throw new PluginLoadError(`cannot find module '${spec}' from ${baseDir}`);
  }
}

/** Loads (once per file) and checks the definition a plugin module exports. */
export function loadDriverPlugin(spec: string, baseDir: string): LoadedPlugin {
  const file = resolvePluginModule(spec, baseDir);
  const cached = loaded.get(file);
  if (cached) return { file, definition: cached };
  let exported: unknown;
  try {
    // Node's own require, also under a test runner; Node 22.12+ loads ES modules through it too.
    exported = createRequire(file)(file);
  } catch (error) {
    throw new PluginLoadError(`loading ${file} failed: ${(error as Error).message?.split('\n')[0] ?? String(error)}`);
  }
  const definition = definitionIn(exported, file);
  loaded.set(file, definition);
  return { file, definition };
}

/** The DriverDefinition among a module's exports, or why there is none. */
function definitionIn(exported: unknown, file: string): DriverDefinition {
  const candidates = [field(exported, 'default'), field(exported, 'driver'), exported].filter((c) => c !== undefined && c !== null);
  for (const candidate of candidates) if (shapeProblem(candidate) === undefined) return candidate as DriverDefinition;
  const problem = candidates.length ? shapeProblem(candidates[0]) : 'it exports nothing';
  throw new PluginLoadError(`${file} does not export a DriverDefinition as its default export or as \`driver\`: ${problem}`);
}

function field(value: unknown, key: string): unknown {
  return (typeof value === 'object' || typeof value === 'function') && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** What is missing from a DriverDefinition, checked at run time since the module was built elsewhere. */
function shapeProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return `expected an object, got ${typeof value}`;
  const candidate = value as Record<string, unknown>;
  const isStringList = (list: unknown) => Array.isArray(list) && list.every((entry) => typeof entry === 'string');
  if (typeof candidate.type !== 'string' || !/^[a-z][a-z0-9_-]*$/.test(candidate.type)) return '`type` must be a lower-case name';
  if (typeof field(candidate.settingsSchema, 'safeParse') !== 'function') return '`settingsSchema` must be a zod schema';
  if (!isStringList(candidate.secretFields)) return '`secretFields` must be a list of setting names';
  if (candidate.fileFields !== undefined && !isStringList(candidate.fileFields)) return '`fileFields` must be a list of setting names';
  if (typeof candidate.create !== 'function') return '`create` must be a function';
  return undefined;
}
