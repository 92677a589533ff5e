import { constants, Stats } from 'node:fs';
import { FileHandle, open, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { LocalFile } from '../storage/driver';
import { DepotError } from '../contract';
import { isInsideRoot } from '../support/path-inside';

/**
 * CONTRACT §2 "Where sources and targets may point": a path is resolved,
 * symlinks included, and must lie inside one of `paths.allowed` when set.
 *
 * A check of a path name proves nothing about a later open of that name: a
 * directory on the way can be exchanged for a symlink in between. So the path
 * is checked first (to refuse the plain case without opening anything), then
 * opened, and then what was opened is checked again by its descriptor: Linux
 * shows the real path of an open file at /proc/self/fd/<fd>. A target's file
 * is created through its opened directory (/proc/self/fd/<dirfd>/<name>), so
 * an exchanged directory cannot redirect it. Without /proc the path is
 * re-resolved and must still lead to the same inode: a swap that is undone in
 * time goes unnoticed there.
 */

/** Where Linux shows what each open descriptor of this process refers to. */
export const PROC_FD = '/proc/self/fd';

const SOURCE = 'source.path';
const TARGET = 'target.path';

/** A regular file inside `paths.allowed`, opened for reading; the caller closes `handle`. */
export interface OpenedFile {
  handle: FileHandle;
  size: number;
  /** The opened file for a copy by another program (storeFile): its /proc/<pid>/fd link; absent without /proc. */
  local?: LocalFile;
}

/**
 * Opens a store task's `source.path` for reading. Only a regular file is
 * accepted, and nothing blocks on the way: O_NONBLOCK makes the open of a FIFO
 * return at once (a plain open waits for a writer forever), and the file type
 * is checked on the descriptor before anything is read.
 */
export async function openSourceFile(raw: string, allowed: string[] | undefined, procFd = PROC_FD): Promise<OpenedFile> {
  absolute(raw, SOURCE);
  const roots = await allowedRoots(allowed);
  let resolved: string;
  try {
    resolved = await realpath(raw);
  } catch (error) {
    throw unreadable(raw, error);
  }
  if (!isInside(resolved, roots)) throw outside(SOURCE);
  let handle: FileHandle;
  try {
    // The resolved path has no symlinks: one appearing at its end now is refused (ELOOP) rather than followed.
    handle = await open(resolved, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY);
  } catch (error) {
    throw unreadable(raw, error);
  }
  try {
    const info = await handle.stat();
    // Not retried, as no failure of a file source here: what is not a readable regular file now stays so.
    if (!info.isFile()) throw new DepotError('source_unavailable', `${raw} is not a regular file`, { field: SOURCE, retryable: false });
    const real = await openedPath(handle.fd, procFd);
    if (real !== null) {
      if (!isInside(real, roots)) throw outside(SOURCE);
    } else if (!(await stillLeadsTo(resolved, info, roots))) {
      throw new DepotError('source_unavailable', `${raw} changed while it was opened`, { field: SOURCE, retryable: false });
    }
    // The link by pid, not /proc/self: it is opened by another process (cp), and names this very file whatever its path names now.
    const local = real !== null ? { path: `/proc/${process.pid}/fd/${handle.fd}`, size: info.size, dev: info.dev } : undefined;
    return { handle, size: info.size, local };
  } catch (error) {
    await handle.close();
    if (error instanceof DepotError) throw error;
    throw unreadable(raw, error);
  }
}

/** The directory of a retrieve target, opened and checked; entries are named through it. */
export interface TargetDir {
  /** The target's file name in the directory. */
  readonly name: string;
  /** The target's real path (for the result). */
  readonly path: string;
  /** A path that names `entry` in exactly the directory that was checked. */
  entry(entry: string): string;
  /** Without /proc: fails when the checked path no longer leads to the opened directory (call it right before creating or linking). */
  recheck(): Promise<void>;
  /** Whether a file opened here can be handed to another program by its /proc/<pid>/fd link (retrieveFile): with /proc only. */
  readonly linkable: boolean;
  close(): Promise<void>;
}

/** Opens the directory of a retrieve `target.path` and checks where it really is. */
export async function openTargetDir(raw: string, allowed: string[] | undefined, procFd = PROC_FD): Promise<TargetDir> {
  absolute(raw, TARGET);
  const name = path.basename(raw);
  if (name === '' || name === '.' || name === '..') throw new DepotError('invalid_task', 'must name a file', { field: TARGET });
  const roots = await allowedRoots(allowed);
  let resolved: string;
  let handle: FileHandle;
  try {
    resolved = await realpath(path.dirname(raw));
    if (!isInside(path.join(resolved, name), roots)) throw outside(TARGET);
    handle = await open(resolved, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    if (error instanceof DepotError) throw error;
    throw unusableDir(raw, error);
  }
  try {
    const real = await openedPath(handle.fd, procFd);
    if (real !== null) {
      if (!isInside(path.join(real, name), roots)) throw outside(TARGET);
      const dirEntry = `${procFd}/${handle.fd}`;
      return {
        name,
        path: path.join(real, name),
        entry: (entry) => `${dirEntry}/${entry}`,
        recheck: () => Promise.resolve(), // names go through the descriptor: nothing to recheck
        linkable: true,
        close: () => handle.close(),
      };
    }
    const info = await handle.stat();
    const recheck = async () => {
      if (!(await stillLeadsTo(resolved, info, roots))) throw new DepotError('invalid_task', `directory of ${raw} changed while writing`, { field: TARGET });
    };
    await recheck();
    return { name, path: path.join(resolved, name), entry: (entry) => path.join(resolved, entry), recheck, linkable: false, close: () => handle.close() };
  } catch (error) {
    await handle.close();
    if (error instanceof DepotError) throw error;
    throw unusableDir(raw, error);
  }
}

function absolute(raw: string, field: string): void {
  if (!path.isAbsolute(raw)) throw new DepotError('invalid_task', 'must be an absolute path', { field });
}

/** The real paths of `paths.allowed`; undefined when it is not set (anywhere goes). */
async function allowedRoots(allowed: string[] | undefined): Promise<string[] | undefined> {
  if (!allowed || allowed.length === 0) return undefined;
  return Promise.all(allowed.map((dir) => realpath(dir).catch(() => path.resolve(dir))));
}

function isInside(real: string, roots: string[] | undefined): boolean {
  if (!roots) return true;
  return roots.some((root) => isInsideRoot(real, root));
}

/** The real path of an open descriptor, or null where /proc is not mounted. */
async function openedPath(fd: number, procFd: string): Promise<string | null> {
  try {
    return await readlink(`${procFd}/${fd}`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw error;
  }
}

/** Without /proc: `resolved` still resolves to itself, inside the roots, and to the inode that was opened. */
async function stillLeadsTo(resolved: string, opened: Stats, roots: string[] | undefined): Promise<boolean> {
  try {
    const again = await realpath(resolved);
    const now = await stat(again);
    return again === resolved && isInside(again, roots) && now.dev === opened.dev && now.ino === opened.ino;
  } catch {
    return false;
  }
}

function outside(field: string): DepotError {
  return new DepotError('invalid_task', 'is outside paths.allowed', { field });
}

/** A missing or unreadable file: not retried (unlike a URL, which may answer next time). */
function unreadable(raw: string, error: unknown): DepotError {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return new DepotError('source_unavailable', `cannot read ${raw}: ${code}`, { field: SOURCE, retryable: false });
}

function unusableDir(raw: string, error: unknown): DepotError {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return new DepotError('invalid_task', `directory of ${raw} is not usable: ${code}`, { field: TARGET });
}
