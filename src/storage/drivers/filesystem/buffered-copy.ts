import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { sourceFailed } from '../../file-chunks';
import { FlushAlong } from '../../flush-along';
import { closeFd, openFd, readAtFd, writeAllFd } from './fd';
import type { KernelCopyOptions } from './kernel-copy';

/** Bytes per read: two buffers of this size, reused for the whole copy. */
const SEGMENT = 1024 * 1024;

/**
 * Copies the file `from` into `fd` through two reused buffers, where a copy
 * inside the kernel cannot be had (the source on another filesystem): segment
 * N is hashed and written while segment N+1 is read, and no buffer is
 * allocated per chunk, so a large copy leaves nothing for the collector. The
 * sha256 and size returned are of exactly the bytes written, whatever the
 * source does meanwhile. `from` is a /proc/<pid>/fd link, as for copyInKernel.
 */
export async function copyThroughBuffers(from: string, fd: number, options: KernelCopyOptions): Promise<{ sha256: string; size: number }> {
  const source = await openFd(from, constants.O_RDONLY).catch(sourceFailed);
  const buffers = [Buffer.allocUnsafe(SEGMENT), Buffer.allocUnsafe(SEGMENT)];
  const hash = createHash('sha256');
  let size = 0;
  const flush = new FlushAlong(fd, options.syncEvery);
  let reading: Promise<number> | undefined;
  try {
    reading = readSource(source, buffers[0], 0);
    for (let turn = 0; ; turn++) {
      const n = await reading;
      reading = undefined;
      if (n === 0) break;
      options.signal.throwIfAborted();
      const bytes = buffers[turn % 2].subarray(0, n);
      hash.update(bytes);
      // The next segment is read into the other buffer while this one is written.
      reading = readSource(source, buffers[(turn + 1) % 2], size + n);
      await writeAllFd(fd, bytes);
      size += n;
      options.onBytes?.(size);
      flush.wrote(n);
    }
    await flush.done();
    return { sha256: hash.digest('hex'), size };
  } finally {
    // A read still in flight (after a failed write) must end before its buffer and descriptor go.
    if (reading) await reading.catch(() => 0);
    await flush.settled();
    await closeFd(source).catch(() => undefined);
  }
}

function readSource(fd: number, buffer: Buffer, position: number): Promise<number> {
  return readAtFd(fd, buffer, position).catch(sourceFailed);
}
