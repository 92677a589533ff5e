import fs from 'node:fs';

/**
 * Plain file descriptors through the callback API. For the small files of every
 * store they cost less CPU than fs.promises FileHandles (no handle object, no
 * close tracking); whoever opens one closes it in a `finally`.
 */
const done =
  <T>(resolve: (value: T) => void, reject: (error: Error) => void) =>
  (error: NodeJS.ErrnoException | null, value: T) =>
    error ? reject(error) : resolve(value);

export function openFd(file: string, flags: number, mode?: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, flags, mode, done(resolve, reject)));
}

function writeFd(fd: number, bytes: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, bytes, offset, length, null, done(resolve, reject)));
}

/** Writes all of `bytes` at the current position (write(2) may write less than asked). */
export async function writeAllFd(fd: number, bytes: Buffer): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await writeFd(fd, bytes, offset, bytes.length - offset);
}

/** Reads up to `buffer.length` bytes at `position`; 0 at the end of the file. */
export function readAtFd(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buffer, 0, buffer.length, position, done(resolve, reject)));
}

export function fstatFd(fd: number): Promise<fs.Stats> {
  return new Promise((resolve, reject) => fs.fstat(fd, done(resolve, reject)));
}

export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (error) => (error ? reject(error) : resolve())));
}

export function fchmodFd(fd: number, mode: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fchmod(fd, mode, (error) => (error ? reject(error) : resolve())));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (error) => (error ? reject(error) : resolve())));
}
