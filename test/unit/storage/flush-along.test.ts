/**
 * FlushAlong keeps an fdatasync in flight while a large file is written. A
 * flush that fails must neither end the process (an unhandled rejection)
 * nor be forgotten: a later fsync of the file need not report it again.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FlushAlong } from '../../../src/storage/flush-along';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'depot-flush-along-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a flush that fails is reported by done(), once every flush ended; settled() only waits', async () => {
  // A FIFO cannot be flushed: every fdatasync of it fails (EINVAL), and the descriptor stays ours while the test runs.
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const flush = new FlushAlong(fd, 1024);
    flush.wrote(4096);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(flush.settled()).resolves.toBeUndefined();
    await expect(flush.done()).rejects.toMatchObject({ code: 'EINVAL' });
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    closeSync(fd);
  }
});

test('flushes that succeed: done() resolves', async () => {
  const fd = openSync(path.join(dir, 'file'), 'w');
  try {
    const flush = new FlushAlong(fd, 1024);
    flush.wrote(4096);
    await expect(flush.done()).resolves.toBeUndefined();
  } finally {
    closeSync(fd);
  }
});
