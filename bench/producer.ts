import { Queue, QueueEvents } from 'bullmq';
import IORedis, { Redis } from 'ioredis';
import { newTaskId, Source, StorageRef } from '../src/contract';
import { DEFAULT_JOB_OPTIONS } from '../src/queue/job-options';
import { DEFAULT_PREFIX, jobIdFor } from '../src/queue/names';

/** One queue of a benchmark run, used the way ArchivingManager adds store tasks. */
export class Producer {
  readonly queue: Queue;
  /** The plain connection the queue uses, for reads BullMQ has no call for. */
  readonly redis: Redis;
  private events?: QueueEvents;
  private readonly waiting = new Map<string, { resolve: (at: number) => void; reject: (error: Error) => void }>();

  constructor(
    private readonly redisUrl: string,
    readonly name: string,
  ) {
    this.redis = new IORedis(redisUrl, { maxRetriesPerRequest: null });
    this.queue = new Queue(name, { connection: this.redis, prefix: DEFAULT_PREFIX, defaultJobOptions: DEFAULT_JOB_OPTIONS });
  }

  /** Listens for completions; needed before `store()` is awaited for a result. */
  async listen(): Promise<void> {
    if (this.events) return;
    this.events = new QueueEvents(this.name, { connection: { url: this.redisUrl }, prefix: DEFAULT_PREFIX });
    this.events.on('completed', ({ jobId }) => this.settle(jobId));
    this.events.on('failed', ({ jobId, failedReason }) => this.settle(jobId, new Error(`job ${jobId} failed: ${failedReason}`)));
    await this.events.waitUntilReady();
  }

  /** Calls `listener` for every job BullMQ takes for stalled (its lock expired while it was active). */
  onStalled(listener: (jobId: string) => void): void {
    this.events?.on('stalled', ({ jobId }) => listener(jobId));
  }

  private settle(jobId: string, error?: Error): void {
    const waiter = this.waiting.get(jobId);
    if (!waiter) return;
    this.waiting.delete(jobId);
    if (error) waiter.reject(error);
    else waiter.resolve(performance.now());
  }

  /**
   * Resolves with performance.now() when the completion of job `jobId` is seen (rejects when it fails):
   * for a task that someone else adds (e.g. `depot serve`), asked for before it is added.
   */
  completion(jobId: string): Promise<number> {
    return new Promise<number>((resolve, reject) => this.waiting.set(jobId, { resolve, reject }));
  }

  /** Adds one store task; `done` resolves with performance.now() when its completion is seen. */
  async store(source: Source, name: string): Promise<{ jobId: string; done: Promise<number> }> {
    const taskId = newTaskId();
    const jobId = jobIdFor(taskId);
    const done = this.completion(jobId);
    await this.queue.add('store', { source, name, taskId }, { jobId });
    return { jobId, done };
  }

  /**
   * The result of a completed store job, checked against the file it stored (size and sha256): the
   * archive's key and how many attempts the worker made.
   */
  async storedArchive(jobId: string, expected: { bytes: number; sha256: string }): Promise<{ key: string; attempts: number }> {
    const job = await this.queue.getJob(jobId);
    const result = job?.returnvalue as { ref?: { key?: string }; attempts?: number; size?: number; sha256?: string } | undefined;
    const key = result?.ref?.key;
    if (!key || result?.size !== expected.bytes || result.sha256 !== expected.sha256)
      throw new Error(`depot: unexpected result ${JSON.stringify(result)}, expected sha256 ${expected.sha256}`);
    return { key, attempts: result.attempts ?? 0 };
  }

  /** Adds one retrieve task to a file at `target`; `done` as for store(). */
  async retrieve(ref: StorageRef, target: string): Promise<{ jobId: string; done: Promise<number> }> {
    const taskId = newTaskId();
    const jobId = jobIdFor(taskId);
    const done = this.completion(jobId);
    await this.queue.add('retrieve', { ref, target: { path: target }, taskId }, { jobId });
    return { jobId, done };
  }

  /** Adds `count` store tasks in bulk (1,000 per round trip); returns their jobIds. */
  async storeMany(count: number, source: Source): Promise<string[]> {
    const ids: string[] = [];
    for (let start = 0; start < count; start += 1000) {
      const batch = Array.from({ length: Math.min(1000, count - start) }, (_, i) => {
        const taskId = newTaskId();
        ids.push(jobIdFor(taskId));
        return { name: 'store', data: { source, name: `small-${start + i}.bin`, taskId }, opts: { jobId: jobIdFor(taskId) } };
      });
      await this.queue.addBulk(batch);
    }
    return ids;
  }

  /** Waits until the jobs have completed; throws if any job of the queue failed. */
  async waitFinished(jobIds: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const counts = await this.queue.getJobCounts('completed', 'failed');
      if (counts.failed > 0) {
        const [failed] = await this.queue.getFailed(0, 0);
        throw new Error(`${counts.failed} jobs failed on ${this.name}, e.g. ${failed?.failedReason}`);
      }
      // The worker's own scheduled jobs (expiry) complete on the same queue: count ours only when enough are done.
      if (counts.completed >= jobIds.length && (await this.timestamps(jobIds)).every((t) => t.finishedOn > 0)) return;
      if (Date.now() > deadline) throw new Error(`only ${counts.completed} of ${jobIds.length} jobs finished on ${this.name} in ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private async timestamps(jobIds: string[]): Promise<{ processedOn: number; finishedOn: number }[]> {
    const pipeline = this.redis.pipeline();
    for (const id of jobIds) pipeline.hmget(`${DEFAULT_PREFIX}:${this.name}:${id}`, 'processedOn', 'finishedOn');
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, value]) => {
      if (error) throw error;
      const [processedOn, finishedOn] = (value as (string | null)[]).map((v) => Number(v ?? 0));
      return { processedOn, finishedOn };
    });
  }

  /** Jobs per second, from the workers' own timestamps: first job taken to last job finished. */
  async drainRate(jobIds: string[]): Promise<number> {
    const times = await this.timestamps(jobIds);
    const first = Math.min(...times.map((t) => t.processedOn));
    const last = Math.max(...times.map((t) => t.finishedOn));
    return (jobIds.length * 1000) / (last - first);
  }

  async close(): Promise<void> {
    await this.events?.close();
    await this.queue.close();
    this.redis.disconnect();
  }
}
