import type { Queue } from 'bullmq';
import type { RedisClient } from './connection';
import { eventStreamField, eventStreamIdAt } from './bullmq-internals';

/** Due inline results handled per sweep; the rest wait for the next one. */
const PER_SWEEP = 100;
/** Stream entries read at a time, and at most, looking for a job's completed event. */
const EVENT_PAGE = 10;
const EVENT_PAGES = 50;

/**
 * An inline retrieve's result carries the archive's bytes (base64), in its job
 * and in the `completed` event on the queue's event stream. Kept like other
 * jobs, up to `queue.keepCompleted.count` of them would stay in Redis; they are
 * forgotten `keepMs` after completion instead, long enough for a producer
 * waiting on the result (QueueEvents delivers the event within milliseconds;
 * a producer that asks later reads the job).
 *
 * Crash ordering: a job is noted (a sorted set scored by when it is due)
 * before it completes, so no crash leaves a completed inline result un-noted;
 * a note whose job did not complete (the worker died, the task ran again) is
 * dropped and noted again by the run that completes it. Any worker forgets what
 * is due: first the event (XDEL), then the job (BullMQ's remove), then the note,
 * so a sweep that dies half-way is simply done again.
 */
export class InlineResults {
  private readonly key: string;

  constructor(
    private readonly queue: Queue,
    private readonly client: RedisClient,
    private readonly keepMs: number,
  ) {
    // A jobId cannot contain ':', so no job's keys can be this one.
    this.key = queue.toKey('depot:inline-results');
  }

  /** Notes a job whose result holds inline bytes; call it before the job completes. */
  async note(jobId: string): Promise<void> {
    // The completed event is added after this moment, so the stream is searched from here (Redis' clock, as stream ids are).
    const from = await this.redisNow();
    await this.client.zadd(this.key, from + this.keepMs, JSON.stringify([jobId, from]));
  }

  /** Forgets the inline results that are due; returns how many jobs were removed. */
  async sweep(): Promise<number> {
    const due = await this.client.zrangebyscore(this.key, '-inf', await this.redisNow(), 'LIMIT', 0, PER_SWEEP);
    let removed = 0;
    for (const member of due) {
      const [jobId, from] = JSON.parse(member) as [string, number];
      const job = await this.queue.getJob(jobId);
      if (job && (await job.getState()) === 'completed') {
        await this.forgetEvent(jobId, from);
        removed += await this.queue.remove(jobId);
      }
      await this.client.zrem(this.key, member);
    }
    return removed;
  }

  /** Deletes the job's `completed` event, the one entry of the stream that holds the result. */
  private async forgetEvent(jobId: string, from: number): Promise<void> {
    const stream = this.queue.keys.events;
    let start = eventStreamIdAt(from);
    for (let page = 0; page < EVENT_PAGES; page++) {
      const entries = await this.client.xrange(stream, start, '+', 'COUNT', EVENT_PAGE);
      for (const [id, fields] of entries) {
        if (eventStreamField(fields, 'event') === 'completed' && eventStreamField(fields, 'jobId') === jobId) {
          await this.client.xdel(stream, id);
          return;
        }
      }
      if (entries.length < EVENT_PAGE) return;
      start = `(${entries[entries.length - 1][0]}`;
    }
  }

  private async redisNow(): Promise<number> {
    const [seconds, micros] = await this.client.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }
}
