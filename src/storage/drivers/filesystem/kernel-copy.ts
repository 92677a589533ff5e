import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { DepotError } from '../../../contract';
import { FlushAlong } from '../../flush-along';
import { readAtFd } from './fd';

/** Bytes hashed per read of the staged file: one buffer, reused for the whole copy. */
const SEGMENT = 1024 * 1024;
/** How long the hashing waits when it has caught up with the copy. */
const CAUGHT_UP_MS = 2;
/** cp's own complaint, kept for the error message. */
const MAX_STDERR = 2048;

export interface KernelCopyOptions {
  signal: AbortSignal;
  /** Flush what was copied so far every this many bytes (none when undefined), so the final fsync is short. */
  syncEvery?: number;
  onBytes?: (bytes: number) => void;
}

/**
 * Copies the file `from` into the staging file `to` (created and open as
 * `fd`, readable) inside the kernel — copy_file_range(2), or a reflink where
 * the filesystem shares extents — and returns sha256 and size of the bytes
 * that were written, hashed from the staging file itself while the copy goes
 * on: segment N is read back (from the page cache) while segment N+1 is
 * copied, so hashing and copying run on two cores and the checksum is of
 * exactly what will be published, whatever the source does meanwhile.
 *
 * The copy is GNU cp's, not Node's: fs.copyFile loops forever in a
 * thread-pool thread when its source shrinks during the copy (libuv copies
 * the length it saw at the start), and Node has no copy_file_range of its
 * own. cp stops at the source's end, reports errors, and can be killed: an
 * abort ends it. `from` is a /proc/<pid>/fd link, so cp opens the file that
 * was checked, not whatever its path names now.
 */
export async function copyInKernel(from: string, to: string, fd: number, options: KernelCopyOptions): Promise<{ sha256: string; size: number }> {
  const child = spawn('cp', ['--', from, to], { stdio: ['ignore', 'ignore', 'pipe'], env: cpEnvironment() });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => (stderr = (stderr + text).slice(0, MAX_STDERR)));
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  let outcome: number | string | undefined;
  void exited.then((value) => (outcome = value));
  const abort = () => child.kill('SIGKILL');
  options.signal.addEventListener('abort', abort, { once: true });

  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(SEGMENT);
  let size = 0;
  const flush = new FlushAlong(fd, options.syncEvery);
  try {
    for (;;) {
      options.signal.throwIfAborted();
      // Whether cp had ended before this read: then a short read is the end of the staged bytes.
      const ended = outcome !== undefined;
      const n = await readAtFd(fd, buffer, size);
      if (n > 0) {
        hash.update(buffer.subarray(0, n));
        size += n;
        options.onBytes?.(size);
        flush.wrote(n);
        continue;
      }
      if (ended) break;
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, CAUGHT_UP_MS))]);
    }
    if (outcome !== 0) throw copyFailed(outcome, stderr, from);
    await flush.done();
    return { sha256: hash.digest('hex'), size };
  } finally {
    options.signal.removeEventListener('abort', abort);
    if (outcome === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
    await flush.settled();
  }
}

/** cp's failure as the contract's: the source's side is `source_unavailable`, the rest (the disk, cp itself) `unavailable` or `no_space`. */
function copyFailed(outcome: number | string | undefined, stderr: string, from: string): DepotError {
  const said = stderr.trim().replaceAll(from, 'the source');
  if (/No space left|Disk quota exceeded/.test(said)) return new DepotError('no_space', `copying the source: ${said}`);
  if (/error reading|cannot (open|stat)/.test(said) && said.includes('the source'))
    return new DepotError('source_unavailable', `reading the source failed: ${said}`);
  return new DepotError('unavailable', `copying the source failed (cp: ${outcome}): ${said || 'no message'}`);
}

let cpRuns: Promise<boolean> | undefined;

/** Whether cp can be run here (asked once per process): without it, sources are streamed as everywhere else. */
export function kernelCopyAvailable(): Promise<boolean> {
  cpRuns ??= new Promise((resolve) => {
    const child = spawn('cp', ['--version'], { stdio: 'ignore', env: cpEnvironment() });
    child.once('error', () => resolve(false));
    child.once('close', (code) => resolve(code === 0));
  });
  return cpRuns;
}

/** cp finds itself on the PATH and speaks plain English (its messages are matched in copyFailed). */
function cpEnvironment(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' };
}
