/**
 * FileChunks reads a store's local source file for the S3 and ftp drivers. A
 * source that cannot be read is the task's failure (`source_unavailable`),
 * not the backend's: it must not fail the store over or count toward a
 * breaker.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileChunks } from '../../../src/storage/file-chunks';
import { failure } from '../../helpers/depot-failure';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'depot-file-chunks-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(reader: FileChunks): Promise<void> {
  try {
    for await (const chunk of reader.chunks()) void chunk;
  } finally {
    await reader.close();
  }
}

test('a source that is gone, or cannot be read (a directory), is source_unavailable', async () => {
  for (const source of [path.join(dir, 'gone.bin'), dir]) {
    const error = await failure(readAll(new FileChunks(source, new AbortController().signal)));
    expect(error).toMatchObject({ code: 'source_unavailable' });
    expect(error.message).toMatch(/^reading the source failed: /);
  }
});

test('a readable source: the digest of its bytes', async () => {
  const file = path.join(dir, 'a.bin');
  const bytes = Buffer.from('archive bytes');
  await writeFile(file, bytes);
  const reader = new FileChunks(file, new AbortController().signal, undefined, 2);
  await readAll(reader);
  expect(reader.digest()).toEqual({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
});
