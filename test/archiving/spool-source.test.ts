/**
 * A `{ spool }` source opened by the worker: serve queues the task a moment
 * before it moves the file into the spool, so a worker that comes early
 * waits for it briefly instead of failing the attempt.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSpoolFile } from '../../src/archiving/spool-source';
import { DepotError } from '../../src/contract';
import { failure } from '../helpers/depot-failure';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'depot-spool-source-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const id = `${'ab'.repeat(32)}-task-1`;

test('a spool file moved in a moment after the worker looked for it is opened, not failed', async () => {
  await writeFile(path.join(dir, 'incoming'), 'archive bytes');
  const opened = openSpoolFile(id, dir);
  await new Promise((resolve) => setTimeout(resolve, 150));
  await rename(path.join(dir, 'incoming'), path.join(dir, id));
  const source = await opened;
  expect(source.totalBytes).toBe('archive bytes'.length);
  source.stream.destroy();
});

test('a spool file that does not come is source_unavailable, retryable', async () => {
  const error = await failure(openSpoolFile(id, dir));
  expect(error).toBeInstanceOf(DepotError);
  expect(error).toMatchObject({ code: 'source_unavailable', field: 'source.spool', retryable: true });
});
