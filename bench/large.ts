import { ChildProcess, execFile, spawn } from 'node:child_process';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { StorageRef } from '../src/contract';
import { BenchContext, startDepotRun, stopAll } from './context';
import { Producer } from './producer';
import { GiB, MiB, rotated } from './stats';
import { writeRandomFile } from './scratch';

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 1024 * 1024 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`${command} failed: ${stderr || error.message}`)) : resolve(),
    );
  });
}

async function timed(action: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await action();
  return (performance.now() - start) / 1000;
}

/**
 * sha256 of a file by `openssl dgst` in a child process, so that the benchmark
 * process does not churn a GiB of read buffers next to the worker it measures.
 */
export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('openssl', ['dgst', '-sha256', '-r', file], (error, stdout) =>
      error ? reject(new Error(`openssl dgst failed: ${error.message}`)) : resolve(stdout.split(' ')[0]),
    );
  });
}

/** A file of random bytes that contenders copy, with what each copy is checked against. */
export interface SourceFile {
  path: string;
  bytes: number;
  sha256: string;
}

/** Writes a file of `bytes` random bytes (flushed to disk) and hashes it. */
export async function randomSource(file: string, bytes: number): Promise<SourceFile> {
  writeRandomFile(file, bytes);
  return { path: file, bytes, sha256: await sha256File(file) };
}

/** Stores one path source through the queue; resolves with seconds from enqueue to completion. */
export async function depotStore(producer: Producer, file: string, expectedSha256?: string): Promise<number> {
  const start = performance.now();
  const { jobId, done } = await producer.store({ path: file }, path.basename(file));
  const end = await done;
  if (expectedSha256) {
    const job = await producer.queue.getJob(jobId);
    const result = job?.returnvalue as { sha256?: string } | undefined;
    if (result?.sha256 !== expectedSha256) throw new Error(`depot stored sha256 ${result?.sha256}, expected ${expectedSha256}`);
  }
  return (end - start) / 1000;
}

/** Removes the archives under a driver root (not its own dot directories). */
async function removeArchives(root: string): Promise<void> {
  for (const entry of await readdir(root)) if (!entry.startsWith('.')) await rm(path.join(root, entry), { recursive: true, force: true });
}

export interface LargeResult {
  bytes: number;
  /** Whether a CPU-bound process ran beside every measurement (the machine's other core kept busy). */
  busy: boolean;
  /** Seconds per run, paired by index. */
  depot: number[];
  rclone: number[];
  cpSyncOpenssl: number[];
  /** The archive read back to a file (retrieve to a path) and, paired, cp of the archive file + openssl of the copy. */
  retrieve: { depot: number[]; cpOpenssl: number[] };
}

/** A process that keeps one core busy until stopped, as other work on a shared machine does. */
function cpuLoad(): ChildProcess {
  const hog = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
  hog.on('error', () => undefined);
  return hog;
}

/** Retrieves an archive to `target` through the queue; resolves with seconds from enqueue to completion. */
async function depotRetrieve(producer: Producer, ref: StorageRef, target: string, expectedSha256: string): Promise<number> {
  const start = performance.now();
  const { done } = await producer.retrieve(ref, target);
  const end = await done;
  const written = await sha256File(target);
  if (written !== expectedSha256) throw new Error(`depot retrieved sha256 ${written}, expected ${expectedSha256}`);
  return (end - start) / 1000;
}

/**
 * Measurement 1: one large archive from a path source, depot (enqueue → completed:
 * hashed, fsynced, published) against rclone and against cp + sync + openssl,
 * alternately, on the same disk; then that archive retrieved to a path (read,
 * verified, fsynced, linked) against cp of the archive file + openssl of the
 * copy. With `busy`, a CPU-bound process runs beside all of it.
 */
export async function largeArchive(ctx: BenchContext, runs: number, bytes = GiB, busy = false): Promise<LargeResult> {
  const depot = await startDepotRun(ctx, 'large');
  const peers = await ctx.scratch.layout('large-peers', ['rclone', 'cp']);
  const source = path.join(depot.sources, 'large.bin');
  ctx.log(`  writing ${bytes / MiB} MiB of random bytes`);
  writeRandomFile(source, bytes);
  const expected = await sha256File(source);
  const rcloneConfig = path.join(peers.base, 'rclone.conf');
  await writeFile(rcloneConfig, '');
  const producer = new Producer(ctx.redisUrl, depot.queue);
  const result: LargeResult = { bytes, busy, depot: [], rclone: [], cpSyncOpenssl: [], retrieve: { depot: [], cpOpenssl: [] } };
  const load = busy ? cpuLoad() : undefined;
  try {
    await producer.listen();
    const rcloneTarget = path.join(peers.rclone, 'copy.bin');
    const cpTarget = path.join(peers.cp, 'copy.bin');
    const once = {
      depot: () => depotStore(producer, source, expected),
      rclone: () => timed(() => run('rclone', ['--config', rcloneConfig, 'copyto', '--checksum', source, rcloneTarget])),
      cp: () => timed(() => run('sh', ['-c', 'cp "$1" "$2" && sync && openssl dgst -sha256 "$1" >/dev/null', 'sh', source, cpTarget])),
    };
    // Each copy is deleted (one big file: harmless) and everything flushed before the next run,
    // so rclone's unflushed pages do not slow down whoever comes next.
    const settle = async () => {
      await removeArchives(depot.root);
      await rm(rcloneTarget, { force: true });
      await rm(cpTarget, { force: true });
      await run('sync', []);
    };
    // On this VM a large write is slowed by whatever ran just before it (freshly freed memory must
    // be faulted in again): each contender runs twice in a row and only the second run counts.
    const measure = async (who: keyof typeof once) => {
      await once[who]();
      await settle();
      const seconds = await once[who]();
      await settle();
      return seconds;
    };
    for (let i = 0; i < runs; i++) {
      const seconds = { depot: 0, rclone: 0, cp: 0 };
      for (const who of rotated(['depot', 'rclone', 'cp'] as const, i)) seconds[who] = await measure(who);
      result.depot.push(seconds.depot);
      result.rclone.push(seconds.rclone);
      result.cpSyncOpenssl.push(seconds.cp);
      const mibs = (s: number) => (bytes / MiB / s).toFixed(0);
      ctx.log(`  large run ${i + 1}: depot ${mibs(seconds.depot)} MiB/s, rclone ${mibs(seconds.rclone)}, cp+sync+openssl ${mibs(seconds.cp)}`);
    }

    // Retrieve to a path: the archive stored once, read back beside the sources (paths.allowed).
    const { jobId, done } = await producer.store({ path: source }, 'large.bin');
    await done;
    const stored = (await producer.queue.getJob(jobId))?.returnvalue as { ref: StorageRef } | undefined;
    if (!stored) throw new Error('the archive to retrieve has no result');
    const archiveFile = path.join(depot.root, ...stored.ref.key.split('/'));
    const retrieved = path.join(depot.sources, 'retrieved.bin');
    const cpRetrieved = path.join(peers.cp, 'retrieved.bin');
    const back = {
      depot: () => depotRetrieve(producer, stored.ref, retrieved, expected),
      cp: () => timed(() => run('sh', ['-c', 'cp "$1" "$2" && openssl dgst -sha256 "$2" >/dev/null', 'sh', archiveFile, cpRetrieved])),
    };
    const measureBack = async (who: keyof typeof back) => {
      const seconds: number[] = [];
      for (let twice = 0; twice < 2; twice++) {
        seconds.push(await back[who]());
        await rm(retrieved, { force: true });
        await rm(cpRetrieved, { force: true });
        await run('sync', []);
      }
      return seconds[1];
    };
    for (let i = 0; i < runs; i++) {
      const seconds = { depot: 0, cp: 0 };
      for (const who of rotated(['depot', 'cp'] as const, i)) seconds[who] = await measureBack(who);
      result.retrieve.depot.push(seconds.depot);
      result.retrieve.cpOpenssl.push(seconds.cp);
      const mibs = (s: number) => (bytes / MiB / s).toFixed(0);
      ctx.log(`  retrieve run ${i + 1}: depot ${mibs(seconds.depot)} MiB/s, cp+openssl ${mibs(seconds.cp)}`);
    }
    return result;
  } finally {
    load?.kill('SIGKILL');
    await producer.close();
    await stopAll(depot.workers);
    await ctx.scratch.remove(peers.base);
    await ctx.scratch.remove(depot.dir);
  }
}
