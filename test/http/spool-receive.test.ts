import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Spool, UploadTooLarge } from '../../src/http/spool';

/**
 * `Spool.receive` (src/http/spool.ts) gathers chunks into large writes with
 * one in flight: the file must hold exactly the bytes given, in order, with
 * their sha256 and size, and be gone after any failure.
 */
let dir: string;
let spool: Spool;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'depot-spool-receive-'));
  spool = new Spool(dir);
  await spool.prepare();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;
/** Odd sizes, from a byte to more than a batch, so batches end anywhere inside a chunk's run. */
const SIZES = [1, 7, 65536, 3, 300_001, 1_500_000, 4093, 0, 65537, 2];

/** `bytes` in chunks of the sizes above, in turn; with `failAt`, the source fails once that many bytes were given. */
async function* inChunks(bytes: Buffer, failAt = Infinity): AsyncGenerator<Buffer> {
  for (let at = 0, turn = 0; at < bytes.length; turn++) {
    if (at >= failAt) throw new Error('the client went away');
    const size = SIZES[turn % SIZES.length];
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

// 7 MiB + 12345 ends on a full batch; 6 MiB + 999 leaves half a batch to the end; 5000 bytes are less than one.
test.each([7 * MiB + 12345, 6 * MiB + 999, 5000])(
  'a file of %i bytes in odd-sized chunks is spooled whole, in order, with its sha256 and size',
  async (length) => {
    const bytes = randomBytes(length);
    const id = spool.newId('task-1');
    const received = await spool.receive(id, inChunks(bytes), 8 * MiB);
    expect(received).toMatchObject({ id, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    await received.commit();
    expect((await readFile(path.join(dir, id))).equals(bytes)).toBe(true);
    expect(await readdir(spool.incomingDir)).toEqual([]);
  },
);

test('a file of exactly maxBytes is taken; one past it mid-way is UploadTooLarge and leaves no file', async () => {
  const bytes = randomBytes(5 * MiB);
  const exact = await spool.receive(spool.newId('task-2'), inChunks(bytes), bytes.length);
  expect(exact.size).toBe(bytes.length);
  await exact.discard();
  await expect(spool.receive(spool.newId('task-3'), inChunks(bytes), 3 * MiB)).rejects.toBeInstanceOf(UploadTooLarge);
  expect(await readdir(spool.incomingDir)).toEqual([]);
});

test('a source that fails mid-way, with a write in flight, passes its error on and leaves no file', async () => {
  const bytes = randomBytes(6 * MiB);
  await expect(spool.receive(spool.newId('task-4'), inChunks(bytes, 4 * MiB), 8 * MiB)).rejects.toThrow('the client went away');
  expect(await readdir(spool.incomingDir)).toEqual([]);
});
