import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, open, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DepotError } from '../contract';
import { allowedPath } from './path-policy';

/**
 * Writes a retrieved archive to `path`: into a temporary file beside it, then
 * published with link(2), which never replaces an existing file. The file
 * appears only once complete and verified (the stream errors otherwise).
 */
export async function writeToPath(stream: Readable, rawPath: string, allowed: string[] | undefined): Promise<string> {
  let target: string;
  try {
    target = await allowedPath(rawPath, 'target.path', allowed, 'target');
    if (await exists(target)) throw new DepotError('conflict', `${rawPath} already exists; it is never replaced`, { field: 'target.path' });
  } catch (error) {
    // The archive is already open for reading: a refused target must not leave it open.
    stream.destroy();
    throw error;
  }
  const temp = path.join(path.dirname(target), `.${path.basename(target).slice(0, 200)}.${randomBytes(6).toString('hex')}.depot-part`);
  try {
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        let offset = 0;
        while (offset < chunk.length) offset += (await handle.write(chunk, offset)).bytesWritten;
      }
      await handle.sync();
      await handle.chmod(0o644);
    } finally {
      await handle.close();
    }
    try {
      await link(temp, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new DepotError('conflict', `${rawPath} appeared while retrieving; it is never replaced`, { field: 'target.path' });
      }
      throw error;
    }
    return target;
  } catch (error) {
    stream.destroy();
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Collects a retrieved archive for an inline result, refusing one larger than the limit before reading it. */
export async function readInline(stream: Readable, size: number, limit: number): Promise<string> {
  if (size > limit) {
    stream.destroy();
    throw new DepotError('invalid_task', `the archive has ${size} bytes, more than limits.inlineBytes (${limit})`, { field: 'target.inline' });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('base64');
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch {
    return false;
  }
}
