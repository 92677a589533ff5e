import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { FileHandle, link, lstat, open, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DepotError, Manifest } from '../contract';
import { openTargetDir, TargetDir } from './path-policy';
import { ignoreFailure } from '../support/ignore';

/** Bytes of the target's name kept in its temporary name: with the dot, random part and suffix it stays within 255. */
const TEMP_NAME_BYTES = 200;

/** The archive a retrieve writes to a path: read as a stream, or written into an open file by the cheapest way (ArchiveStore.retrieveInto). */
export interface RetrievedArchive {
  open(): Promise<{ manifest: Manifest; stream: Readable }>;
  writeInto(file: { handle: FileHandle; dev: number; link?: string }): Promise<Manifest>;
}

/**
 * Writes a retrieved archive to `path`: into a temporary file beside it, then
 * published with link(2), which never replaces an existing file. The file
 * appears only once complete and verified. Both names are reached through
 * the target's opened directory (path-policy.ts), so a directory exchanged
 * meanwhile cannot send them elsewhere; another program (the filesystem
 * driver's in-kernel copy) is given the temporary file by its descriptor's
 * /proc link, never by its name.
 */
export async function writeToPath(archive: RetrievedArchive, rawPath: string, allowed: string[] | undefined): Promise<{ path: string; manifest: Manifest }> {
  const dir = await openTargetDir(rawPath, allowed);
  try {
    return { path: dir.path, manifest: await writeInto(dir, archive, rawPath) };
  } finally {
    await dir.close();
  }
}

async function writeInto(dir: TargetDir, archive: RetrievedArchive, rawPath: string): Promise<Manifest> {
  if (await exists(dir.entry(dir.name))) {
    // A retried retrieve whose first run published the file and died before its job completed (kill -9,
    // a Redis failover losing the completion) finds its own bytes there: as for a retried store (§2),
    // the same bytes are success. Anything else there is never replaced.
    const { manifest, stream } = await archive.open();
    try {
      if (await holdsExactly(dir.entry(dir.name), stream)) return manifest;
    } finally {
      stream.destroy();
    }
    throw new DepotError('conflict', `${rawPath} already exists; it is never replaced`, { field: 'target.path' });
  }
  const temp = dir.entry(`.${cutUtf8(dir.name, TEMP_NAME_BYTES)}.${randomBytes(6).toString('hex')}.depot-part`);
  try {
    await dir.recheck();
    // Readable too: an in-kernel copy hashes what it wrote by reading it back.
    const handle = await open(temp, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    let manifest: Manifest;
    try {
      const link = dir.linkable ? `/proc/${process.pid}/fd/${handle.fd}` : undefined;
      manifest = await archive.writeInto({ handle, dev: (await handle.stat()).dev, ...(link !== undefined ? { link } : {}) });
      await handle.sync();
      await handle.chmod(0o644);
    } finally {
      await handle.close();
    }
    await dir.recheck();
    try {
      await link(temp, dir.entry(dir.name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new DepotError('conflict', `${rawPath} appeared while retrieving; it is never replaced`, { field: 'target.path' });
      }
      throw error;
    }
    return manifest;
  } finally {
    // Before the directory's descriptor is closed: the temporary name is reached through it.
    await ignoreFailure(unlink(temp), 'after a link the temporary name is gone or a second name of the same file; its removal changes nothing');
  }
}

/** At most `maxBytes` of `text` in UTF-8, cut before a character rather than inside one (file name limits count bytes). */
export function cutUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end -= 1; // bytes[end] continues the character it cuts: back to its start
  return bytes.subarray(0, end).toString('utf8');
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

/**
 * Whether `file` is a regular file (not through a symlink) holding exactly the
 * stream's bytes. The stream is read to its end when they match, so its own
 * verification (the archive's sha256) has run; it stops at the first byte
 * that differs (the caller destroys it).
 */
async function holdsExactly(file: string, stream: Readable): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    if (!(await handle.stat()).isFile()) return false;
    let offset = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const there = Buffer.allocUnsafe(chunk.length);
      let read = 0;
      while (read < chunk.length) {
        const { bytesRead } = await handle.read(there, read, chunk.length - read, offset + read);
        if (bytesRead === 0) return false;
        read += bytesRead;
      }
      if (!there.equals(chunk)) return false;
      offset += chunk.length;
    }
    return (await handle.stat()).size === offset;
  } finally {
    await handle.close();
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch {
    return false;
  }
}
