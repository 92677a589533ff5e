/**
 * The toy an operator might write instead of depot: a plain BullMQ worker that
 * writes each job's bytes to a new file and fsyncs it. No hashing, manifest,
 * key scheme, staging, link or directory fsync. The benchmarks compare depot's
 * small-archive rate and latency with it.
 *
 *   node --import tsx bench/bare-worker.ts REDIS_URL QUEUE DIR CONCURRENCY
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Job, Worker } from 'bullmq';
import IORedis from 'ioredis';

interface InlineStore {
  source: { base64: string };
}

async function writeJob(dir: string, job: Job<InlineStore>): Promise<{ size: number }> {
  const bytes = Buffer.from(job.data.source.base64, 'base64');
  const file = await open(path.join(dir, String(job.id)), 'wx', 0o444);
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  return { size: bytes.length };
}

function main(): void {
  const [redisUrl, queue, dir, concurrency] = process.argv.slice(2);
  if (!redisUrl || !queue || !dir) throw new Error('usage: bare-worker.ts REDIS_URL QUEUE DIR CONCURRENCY');
  const connection = new IORedis(redisUrl, { maxRetriesPerRequest: null });
  const worker = new Worker<InlineStore>(queue, (job) => writeJob(dir, job), {
    connection,
    concurrency: Number(concurrency || 1),
    // The same bounds depot's worker applies.
    removeOnComplete: { count: 10_000, age: 7 * 24 * 3600 },
    removeOnFail: { count: 50_000, age: 30 * 24 * 3600 },
  });
  worker.on('error', (error) => process.stderr.write(`bare worker: ${error.message}\n`));
  void worker.waitUntilReady().then(() => process.stdout.write('bare worker ready\n'));
  process.once('SIGTERM', () => {
    void worker
      .close()
      .then(() => connection.quit())
      .finally(() => process.exit(0));
  });
}

main();
