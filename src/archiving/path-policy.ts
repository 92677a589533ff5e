import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { DepotError } from '../contract';

/**
 * CONTRACT §2 "Where sources and targets may point": a path is resolved,
 * symlinks included, and must lie inside one of `paths.allowed` when set.
 * `target` paths may not exist yet: their directory is resolved instead.
 */
export async function allowedPath(raw: string, field: string, allowed: string[] | undefined, kind: 'source' | 'target'): Promise<string> {
  if (!path.isAbsolute(raw)) throw new DepotError('invalid_task', 'must be an absolute path', { field });
  let resolved: string;
  try {
    resolved = kind === 'source' ? await realpath(raw) : path.join(await realpath(path.dirname(raw)), path.basename(raw));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (kind === 'source') throw new DepotError('source_unavailable', `cannot read ${raw}: ${code ?? 'error'}`, { field, retryable: false });
    throw new DepotError('invalid_task', `directory of ${raw} is not usable: ${code ?? 'error'}`, { field });
  }
  if (allowed && allowed.length > 0) {
    const roots = await Promise.all(allowed.map((dir) => realpath(dir).catch(() => path.resolve(dir))));
    if (!roots.some((root) => resolved === root || resolved.startsWith(root + path.sep))) {
      throw new DepotError('invalid_task', 'is outside paths.allowed', { field });
    }
  }
  return resolved;
}
