import { randomFillSync } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MiB } from './stats';

/**
 * Fresh directories under os.tmpdir() for one benchmark run. This disk is slow
 * to hand out inodes again right after a big delete, so every run writes into
 * a directory of its own and deletion waits until the measuring is done.
 */
export class Scratch {
  private readonly dirs: string[] = [];
  private closed = false;

  async dir(prefix: string): Promise<string> {
    if (this.closed) throw new Error('the benchmark is stopping');
    const dir = await mkdtemp(path.join(tmpdir(), `depot-bench-${prefix}-`));
    this.dirs.push(dir);
    return dir;
  }

  /** A directory made elsewhere (s3rver's data directory) that is removed with the others, also when the run is interrupted. */
  adopt(dir: string): void {
    this.dirs.push(dir);
  }

  /** A fresh directory, plus named subdirectories created inside it. */
  async layout<K extends string>(prefix: string, names: K[]): Promise<{ base: string } & Record<K, string>> {
    const base = await this.dir(prefix);
    const result = { base } as { base: string } & Record<K, string>;
    for (const name of names) {
      const sub = path.join(base, name);
      await mkdir(sub);
      (result as Record<string, string>)[name] = sub;
    }
    return result;
  }

  /** Removes every directory and refuses to make more (an interrupted run). */
  async close(): Promise<void> {
    this.closed = true;
    await this.remove();
  }

  /** Removes every directory made so far (or only `dir`). */
  async remove(dir?: string): Promise<void> {
    const doomed = dir ? this.dirs.filter((d) => d === dir) : [...this.dirs];
    for (const d of doomed) {
      await rm(d, { recursive: true, force: true });
      this.dirs.splice(this.dirs.indexOf(d), 1);
    }
  }
}

/** A file of `bytes` random bytes, flushed to disk so that its writeback cannot disturb a measurement. */
export function writeRandomFile(file: string, bytes: number): void {
  const chunk = Buffer.allocUnsafe(8 * MiB);
  const fd = openSync(file, 'wx', 0o644);
  try {
    for (let left = bytes; left > 0; left -= chunk.length) {
      const n = Math.min(left, chunk.length);
      randomFillSync(chunk, 0, n);
      writeSync(fd, chunk, 0, n);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
