import type { z } from 'zod';

/** One problem with one field: what the contract's errors and the config's exit-2 messages say. */
export interface FieldIssue {
  field: string;
  message: string;
}

/** Dotted path as operators write it: `drivers.local.root`, `fallbacks[1]`. */
export function fieldPath(path: ReadonlyArray<PropertyKey>, prefix = ''): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(root)';
}

/** Flattens zod's issues into field-named messages, first the most specific. */
export function fieldIssues(error: z.ZodError, prefix = ''): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ field: fieldPath([...issue.path, key], prefix), message: 'unknown field' });
    } else {
      out.push({ field: fieldPath(issue.path, prefix), message: issue.message });
    }
  }
  return out;
}
