import { constants } from 'node:fs';
import { closeFd, fsyncFd, openFd } from './fd';
import { ignoreFailure } from '../../../support/ignore';

/**
 * Group commit for directory fsyncs: stores that publish into the same
 * directory while one fsync is running share the next one instead of each
 * queueing its own. A caller's promise resolves only by an fsync that started
 * after its call, so its own link is covered.
 */
export class DirSync {
  private readonly running = new Map<string, Promise<void>>();
  private readonly next = new Map<string, Promise<void>>();

  sync(dir: string): Promise<void> {
    const queued = this.next.get(dir);
    if (queued) return queued;
    const current = this.running.get(dir);
    if (!current) return this.start(dir);
    const after = ignoreFailure(current, "the next fsync starts whatever the running one did; that one's waiters got its failure").then(() => {
      this.next.delete(dir);
      return this.start(dir);
    });
    this.next.set(dir, after);
    return after;
  }

  private start(dir: string): Promise<void> {
    const run = fsyncDir(dir).finally(() => {
      if (this.running.get(dir) === run) this.running.delete(dir);
    });
    this.running.set(dir, run);
    return run;
  }
}

/** The descriptor is closed in the background: waiters need the fsync, not the close. */
async function fsyncDir(dir: string): Promise<void> {
  const fd = await openFd(dir, constants.O_RDONLY);
  try {
    await fsyncFd(fd);
  } finally {
    void ignoreFailure(closeFd(fd), 'waiters need the fsync, which succeeded; not the close');
  }
}
