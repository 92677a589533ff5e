import type { FileHandle } from 'node:fs/promises';
import { FlushAlong, SYNC_EVERY } from '../storage/flush-along';

/** Bytes gathered into one write. */
const BATCH_BYTES = 1024 * 1024;
/** Buffers gathered into one write at most: Linux's IOV_MAX, so that tiny chunks cannot pile up as objects. */
const BATCH_BUFFERS = 1024;

/**
 * Writes a stream of chunks to a file in batches of about 1 MiB (one writev
 * each), with one batch being written while the next is gathered: the caller
 * hashes the next bytes meanwhile, and at most two batches are held. The
 * chunks are written as they are, not copied: they must not change once
 * given. `end()` fsyncs; after a failure, `settled()` before the handle is
 * closed.
 */
export class GatheredWriter {
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private writing: Promise<void> = Promise.resolve();
  private readonly flush: FlushAlong;

  constructor(private readonly handle: FileHandle) {
    this.flush = new FlushAlong(handle.fd, SYNC_EVERY);
  }

  /** Gathers `chunk`; when a batch is full, waits for the write in flight (its failure is thrown here) and starts this one. */
  async write(chunk: Buffer): Promise<void> {
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (this.batchBytes >= BATCH_BYTES || this.batch.length >= BATCH_BUFFERS) await this.send();
  }

  /** Writes what is gathered, waits for every write, and fsyncs the file. */
  async end(): Promise<void> {
    await this.send();
    await this.writing;
    await this.flush.done();
    await this.handle.sync();
  }

  /** Nothing in flight any more: the handle may be closed. */
  async settled(): Promise<void> {
    await this.writing.catch(() => undefined);
    await this.flush.settled();
  }

  private async send(): Promise<void> {
    await this.writing;
    const buffers = this.batch;
    const bytes = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    if (bytes === 0) return;
    this.writing = writeAll(this.handle, buffers).then(() => this.flush.wrote(bytes));
    // Handled here, thrown by the next send() or end(): a write may fail while the caller awaits its source.
    this.writing.catch(() => undefined);
  }
}

/** writev(2) may write less than asked: goes on from where it stopped. */
async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest);
    let whole = 0;
    while (whole < rest.length && bytesWritten >= rest[whole].length) bytesWritten -= rest[whole++].length;
    rest = bytesWritten > 0 ? [rest[whole].subarray(bytesWritten), ...rest.slice(whole + 1)] : rest.slice(whole);
  }
}
