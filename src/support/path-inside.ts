import path from 'node:path';

/**
 * Whether `candidate` is `root` or lies below it. Both must be absolute and
 * already resolved (realpath): this compares names, it does not follow links.
 * The one such check of depot's (path policy, filesystem driver, task API),
 * so that `/srv/a` never counts as inside `/srv/ab`, and `/` holds everything.
 */
export function isInsideRoot(candidate: string, root: string, sep: string = path.sep): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(sep) ? root : root + sep);
}
