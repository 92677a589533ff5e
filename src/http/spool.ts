import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { FileHandle, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { SPOOL_ID } from '../contract';
import { JOB_ID_PREFIX } from '../queue/names';
import { GatheredWriter } from './gathered-writer';

/** Where uploads arrive before they are complete; a file there is never a task's source. */
const INCOMING = 'incoming';

/** A file that grew past `http.maxUploadBytes` while it arrived: 413. */
export class UploadTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the file is larger than http.maxUploadBytes (${limit} bytes)`);
    this.name = 'UploadTooLarge';
  }
}

/** A complete upload in `incoming/`, fsynced: moved into the spool once its task is queued, or discarded. */
export interface ReceivedFile {
  id: string;
  size: number;
  sha256: string;
  /** Moves it into the spool under its id (the worker can open it from now on). */
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/** What the queue says of the job a spool file was made for: it may still run, it has ended, or there is no job that refers to it. */
export type SpoolUse = 'pending' | 'ended' | 'none';

/**
 * The spool of `depot serve` (CONTRACT §9, config `http.spoolDir`): files of
 * multipart uploads, waiting for the worker that stores them.
 *
 * - A file arrives in `incoming/<id>@<host>@<pid>` (created exclusively, mode
 *   0600), hashed while it is written, fsynced; the task is queued with source
 *   `{ spool: <id> }`; then the file is renamed to `<id>` in the spool and the
 *   directory fsynced. So a file under an id is always complete, and always
 *   has had its job queued first.
 * - The id is 256 random bits and the taskId (SPOOL_ID): unguessable, without
 *   '/', and the task's schema takes it only for that taskId.
 * - A spool file is removed when its task has ended (completed, or failed for
 *   good; `taskEnded`); a leftover — serve or worker crashed, an event missed —
 *   only once no job that may still run refers to it (`sweep`, at start and
 *   every few minutes), never by age alone: on a shared volume another host
 *   may have just queued it. An `incoming/` file is a leftover when the serve
 *   process that wrote it (same host) no longer runs, or its job has ended.
 */
export class Spool {
  readonly incomingDir: string;
  /** Ids this process is receiving or has just queued: never swept under its feet. */
  private readonly busy = new Set<string>();
  private readonly host = hostname();
  /** Files this process moved into the spool, by taskId: removed when the task's end is heard of. */
  private readonly committed = new Map<string, string>();

  constructor(readonly dir: string) {
    this.incomingDir = path.join(dir, INCOMING);
  }

  /** Creates the spool (and its `incoming/`) when missing. */
  async prepare(): Promise<void> {
    await mkdir(this.incomingDir, { recursive: true, mode: 0o700 });
  }

  newId(taskId: string): string {
    return `${randomBytes(32).toString('hex')}-${taskId}`;
  }

  /** The taskId a spool id was made for. */
  static taskIdOf(id: string): string {
    return id.slice(65);
  }

  /**
   * Writes `chunks` into `incoming/`, hashing them on the way, and fsyncs the
   * file; the chunks are gathered into large writes, one in flight while the
   * next are hashed, so they must not change once given. Anything that goes
   * wrong (the body cut off, too large, the disk full) removes the file
   * before the error is passed on.
   */
  async receive(id: string, chunks: AsyncIterable<Buffer>, maxBytes: number): Promise<ReceivedFile> {
    if (!SPOOL_ID.test(id)) throw new Error(`not a spool id: ${id}`);
    this.busy.add(id);
    const incoming = path.join(this.incomingDir, `${id}@${this.host}@${process.pid}`);
    let handle: FileHandle | undefined;
    let writer: GatheredWriter | undefined;
    try {
      handle = await open(incoming, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      writer = new GatheredWriter(handle);
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of chunks) {
        size += chunk.length;
        if (size > maxBytes) throw new UploadTooLarge(maxBytes);
        hash.update(chunk);
        await writer.write(chunk);
      }
      await writer.end();
      await handle.close();
      handle = undefined;
      const sha256 = hash.digest('hex');
      return {
        id,
        size,
        sha256,
        commit: async () => {
          await rename(incoming, path.join(this.dir, id));
          this.committed.set(Spool.taskIdOf(id), id);
          await syncDir(this.dir);
        },
        discard: async () => {
          this.busy.delete(id);
          await removeFile(incoming);
        },
      };
    } catch (error) {
      await writer?.settled();
      await handle?.close().catch(() => undefined);
      await removeFile(incoming);
      this.busy.delete(id);
      throw error;
    }
  }

  /** The spool ids this process committed for the task of a jobId (`task-<taskId>`); the sweep finds the others. */
  idsOfTask(jobId: string): string[] {
    const id = jobId.startsWith(JOB_ID_PREFIX) ? this.committed.get(jobId.slice(JOB_ID_PREFIX.length)) : undefined;
    return id ? [id] : [];
  }

  /** The id is no longer this process's business (its job ended, or it was handed to the queue long ago). */
  release(id: string): void {
    this.busy.delete(id);
  }

  /** Removes the spool file of a task that has ended (and an `incoming/` file of it, if any). */
  async taskEnded(id: string): Promise<boolean> {
    if (!SPOOL_ID.test(id)) return false;
    this.busy.delete(id);
    if (this.committed.get(Spool.taskIdOf(id)) === id) this.committed.delete(Spool.taskIdOf(id));
    return removeFile(path.join(this.dir, id));
  }

  /**
   * Removes leftovers: a spool file whose job is gone or has ended, an
   * `incoming/` file whose writer (this host's serve process) no longer runs
   * or whose job has ended. `use` asks the queue about a spool id's job.
   * Anything else in the directory is left alone. Returns the ids removed.
   */
  async sweep(use: (id: string) => Promise<SpoolUse>): Promise<string[]> {
    const removed: string[] = [];
    for (const entry of await readdir(this.dir).catch(() => [] as string[])) {
      if (!SPOOL_ID.test(entry) || this.busy.has(entry)) continue;
      // A file under its id had its job queued first: no job referring to it any more means it ended and was removed.
      if ((await use(entry)) !== 'pending' && (await removeFile(path.join(this.dir, entry)))) removed.push(entry);
    }
    for (const entry of await readdir(this.incomingDir).catch(() => [] as string[])) {
      const [id, host, pidText] = entry.split('@');
      if (!id || !SPOOL_ID.test(id) || this.busy.has(id) || !host || !/^\d+$/.test(pidText ?? '')) continue;
      const pid = Number(pidText);
      // Still arriving elsewhere before its job is queued looks like no job at all: only an ended job or a dead writer say it is left over.
      const writerGone = host === this.host && (pid === process.pid || !processRuns(pid));
      if ((writerGone || (await use(id)) === 'ended') && (await removeFile(path.join(this.incomingDir, entry)))) removed.push(id);
    }
    return removed;
  }
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function removeFile(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** The rename is durable once the directory is synced. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
