import type { PlatformPath } from 'node:path';
import { ArchiveKey, Manifest, parseArchiveKey } from '../contract';
import { sidecarName } from './manifest';
import { ignoreFailure } from '../support/ignore';

export interface TreeEntry {
  name: string;
  isDirectory: boolean;
  isFile: boolean;
}

/** Where a directory-shaped backend keeps an archive: its task's directory, the archive's file and its sidecar manifest. */
export interface ArchivePaths {
  dir: string;
  file: string;
  sidecar: string;
}

/**
 * `<root>/YYYY/MM/DD/<taskId>/<name>` and the sidecar beside it, from a parsed
 * key's parts; `paths` is the backend's flavour (`path`, `path.posix`).
 */
export function archivePaths(root: string, key: ArchiveKey, paths: Pick<PlatformPath, 'join'>): ArchivePaths {
  const dir = paths.join(root, key.year, key.month, key.day, key.taskId);
  return { dir, file: paths.join(dir, key.name), sidecar: paths.join(dir, sidecarName(key.name)) };
}

/** What a directory-shaped backend gives the walk. */
export interface KeyTree {
  /** A directory's entries; a directory that is gone lists as empty. */
  list(dir: string): Promise<TreeEntry[]>;
  /** The manifest in a sidecar file (it may fail: such an archive is left out of the listing). */
  readManifest(sidecar: string, key: ArchiveKey): Promise<Manifest | null>;
  join(dir: string, name: string): string;
}

/**
 * The manifests under `<root>/YYYY/MM/DD/<taskId>/<name>` whose key starts
 * with `prefix`, in key order. Depth 0..3 are the date and taskId directories,
 * depth 4 holds archives and sidecars; the walk descends only where keys can
 * still start with the prefix, skips the driver's own dot directories at the
 * root (a taskId may start with a dot), and lists an archive only beside its
 * manifest.
 */
export async function* walkKeyTree(tree: KeyTree, root: string, prefix: string, after?: string): AsyncIterable<Manifest> {
  const resume = after === undefined ? undefined : parseArchiveKey(after);
  yield* walk(tree, root, '', 0, prefix, resume?.ok ? after?.split('/') : undefined);
}

/**
 * `after`: the segments of a key this walk yielded before (a listing resumed
 * after it, ListOptions.after), while the walk is still on that key's path;
 * undefined once it has passed it. Each level is walked in name order, so
 * what lies before the key is skipped without being read.
 */
async function* walk(tree: KeyTree, dir: string, keyPrefix: string, depth: number, prefix: string, after: string[] | undefined): AsyncIterable<Manifest> {
  const entries = await tree.list(dir);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (depth < 4) {
    for (const entry of entries) {
      if (!entry.isDirectory || (depth === 0 && entry.name.startsWith('.'))) continue;
      if (after && entry.name < after[depth]) continue;
      const sub = keyPrefix + entry.name + '/';
      if (!sub.startsWith(prefix) && !prefix.startsWith(sub)) continue;
      yield* walk(tree, tree.join(dir, entry.name), sub, depth + 1, prefix, after && entry.name === after[depth] ? after : undefined);
    }
    return;
  }
  const names = new Set(entries.filter((e) => e.isFile).map((e) => e.name));
  for (const name of names) {
    const text = keyPrefix + name;
    if (after && name <= after[4]) continue;
    if (!text.startsWith(prefix) || !names.has(sidecarName(name))) continue;
    const parsed = parseArchiveKey(text);
    if (!parsed.ok) continue;
    const manifest = await ignoreFailure(
      tree.readManifest(tree.join(dir, sidecarName(name)), parsed.key),
      'an unreadable manifest is no archive of depot to list',
    );
    if (manifest && manifest.name === name) yield manifest;
  }
}
