import type { Metadata } from '../contract';
import { UsageError } from './exit-codes';

/** commander's collector for a repeatable option (`--meta k=v --meta k2=v2`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * `--meta key=value` pairs. For `depot store` (`list`) a key given twice makes
 * a list value (`--meta userId=34 --meta userId=35` is `userId: ["34", "35"]`,
 * CONTRACT §8); for the catalog commands (`all`) every pair is a condition that
 * must hold, so a key given twice asks for archives that hold both values.
 */
export function parseMetaPairs(pairs: readonly string[], repeated: 'list'): Metadata;
export function parseMetaPairs(pairs: readonly string[], repeated: 'all'): Array<[string, string]>;
export function parseMetaPairs(pairs: readonly string[], repeated: 'list' | 'all'): Metadata | Array<[string, string]> {
  const parsed = pairs.map((pair): [string, string] => {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--meta ${pair}: must be key=value`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  });
  if (repeated === 'all') return parsed;
  // A Map, then own properties: a key `__proto__` stays a key (which the task's validation then refuses by name).
  const values = new Map<string, string[]>();
  for (const [key, value] of parsed) values.set(key, [...(values.get(key) ?? []), value]);
  return Object.fromEntries([...values].map(([key, list]) => [key, list.length === 1 ? list[0] : list]));
}
