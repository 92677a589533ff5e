import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DepotError, SPOOL_ID } from '../contract';
import { STREAM_CHUNK } from '../storage/hashing-stream';
import { openSourceFile } from './path-policy';
import type { OpenedSource } from './sources';

const FIELD = 'source.spool';
/** How long a spool file that is not there yet is waited for, and how often it is looked for meanwhile. */
const EARLY_MS = 1_000;
const POLL_MS = 10;

/**
 * A store's `source: { spool: <id> }` (CONTRACT §9): a file `depot serve`
 * received in a multipart upload, named by an id only serve makes (256
 * random bits and the taskId; the task's schema takes an id only for its own
 * taskId). It is opened only directly inside `http.spoolDir`, through the
 * same path policy as a `source.path` with the spool as the one allowed
 * directory (`paths.allowed` does not apply): symlinks resolved, nothing but
 * a regular file, checked again on the opened descriptor. A producer can
 * never name a spool file by path, nor anything else by a spool id.
 *
 * Serve queues the task before it moves the complete file into the spool
 * (so that a committed file always has its job), so a worker may be a few
 * milliseconds early: it looks again every POLL_MS for up to EARLY_MS
 * before a missing spool file is `source_unavailable` and retried (a serve
 * that died in between leaves a task that fails once the retries are
 * spent). Without the wait, one early worker in six lost its retry backoff
 * (1 s) on a 1 GiB upload (bench/findings.md, measurement 8).
 */
export async function openSpoolFile(id: string, spoolDir: string | undefined): Promise<OpenedSource> {
  if (!SPOOL_ID.test(id)) throw new DepotError('invalid_task', 'is not a spool id made by depot serve', { field: FIELD });
  if (!spoolDir) throw new DepotError('invalid_task', 'no http.spoolDir is configured', { field: FIELD });
  const root = path.resolve(spoolDir);
  const file = path.join(root, id);
  const missing = await missingCode(file);
  if (missing)
    throw new DepotError('source_unavailable', `spool file ${id} is not (yet) in the spool: ${missing}`, { field: FIELD, retryable: missing === 'ENOENT' });
  try {
    const { handle, size, local } = await openSourceFile(file, [root]);
    return { stream: createReadStream('', { fd: handle, highWaterMark: STREAM_CHUNK }), totalBytes: size, file: local };
  } catch (error) {
    if (error instanceof DepotError) {
      const plain = error.field && error.message.startsWith(`${error.field}: `) ? error.message.slice(error.field.length + 2) : error.message;
      throw new DepotError(error.code, plain.replace(file, `spool file ${id}`), { field: FIELD, retryable: false });
    }
    throw error;
  }
}

/** Why `file` cannot be found (ENOENT once EARLY_MS passed without it), or undefined once it is there. */
async function missingCode(file: string): Promise<string | undefined> {
  const until = Date.now() + EARLY_MS;
  for (;;) {
    try {
      await lstat(file);
      return undefined;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      if (code !== 'ENOENT' || Date.now() >= until) return code;
    }
    await sleep(POLL_MS);
  }
}
