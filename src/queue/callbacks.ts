import { Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { classifyError } from '../support/error-handler';
import type { Logger } from '../support/logging';
import { CallbackDelivery, deliverCallback } from '../support/notifications';
import { redactor } from '../support/redaction';
import { createRedis } from './connection';
import { CALLBACK_QUEUE } from './names';

/**
 * Webhook deliveries are jobs on queue `depot-callbacks`, retried until the
 * receiver answers 2xx: 1 s, 2 s, 4 s … doubling up to an hour apart, 30 tries
 * (about 20 hours), then kept as failed for inspection.
 */
const DELIVERY_ATTEMPTS = 30;
const MAX_DELAY_MS = 3_600_000;
const DELIVERY_TIMEOUT_MS = 10_000;

export function deliveryBackoff(attemptsMade: number, firstDelayMs: number): number {
  const delay = Math.min(firstDelayMs * 2 ** Math.max(0, attemptsMade - 1), MAX_DELAY_MS);
  // ±20 %: receivers coming back up are not hit by every worker at once.
  return Math.round(delay * (0.8 + Math.random() * 0.4));
}

export interface CallbackQueue {
  enqueue(delivery: CallbackDelivery, deliveryId: string): Promise<void>;
  close(): Promise<void>;
}

export function createCallbackQueue(redisUrl: string, prefix: string): CallbackQueue {
  const connection = createRedis(redisUrl, 'worker');
  connection.on('error', () => undefined);
  const queue = new Queue<CallbackDelivery>(CALLBACK_QUEUE, { connection, prefix });
  queue.on('error', () => undefined);
  return {
    async enqueue(delivery, deliveryId) {
      await queue.add(delivery.notification.event, delivery, {
        jobId: deliveryId,
        attempts: DELIVERY_ATTEMPTS,
        backoff: { type: 'delivery' },
        removeOnComplete: { count: 10_000, age: 7 * 24 * 3600 },
        removeOnFail: { count: 50_000, age: 30 * 24 * 3600 },
      });
    },
    async close() {
      await queue.close().catch(() => undefined);
      connection.disconnect();
    },
  };
}

export interface CallbackWorkerOptions {
  redisUrl: string;
  prefix: string;
  /** config `callbacks.secret`, held by the worker only, never put in a job. */
  secret?: string;
  concurrency?: number;
  /** The first retry's delay; tests shorten it. */
  firstDelayMs?: number;
  timeoutMs?: number;
  name?: string;
}

/** The worker that sends webhooks; runs in every `depot worker` process next to the storage worker. */
export function startCallbackWorker(options: CallbackWorkerOptions, logger: Logger): { worker: Worker; close(): Promise<void> } {
  const connection = createRedis(options.redisUrl, 'worker');
  const firstDelayMs = options.firstDelayMs ?? 1_000;
  const worker = new Worker<CallbackDelivery>(
    CALLBACK_QUEUE,
    async (job: Job<CallbackDelivery>) => {
      try {
        const status = await deliverCallback(job.data, { secret: options.secret, timeoutMs: options.timeoutMs ?? DELIVERY_TIMEOUT_MS });
        logger.info(`webhook ${job.data.notification.event} of task ${job.data.notification.taskId} delivered (HTTP ${status})`, {
          taskId: job.data.notification.taskId,
          event: job.data.notification.event,
          attempt: job.attemptsMade + 1,
        });
        return { status };
      } catch (error) {
        const failure = classifyError(error);
        const reason = `${failure.code}: ${redactor.redact(failure.message)}`;
        logger.warn(`webhook ${job.data.notification.event} of task ${job.data.notification.taskId} not delivered: ${reason}`, {
          taskId: job.data.notification.taskId,
          attempt: job.attemptsMade + 1,
        });
        throw failure.retryable ? new Error(reason) : new UnrecoverableError(reason);
      }
    },
    {
      connection,
      prefix: options.prefix,
      concurrency: options.concurrency ?? 8,
      name: options.name,
      settings: { backoffStrategy: (attemptsMade: number) => deliveryBackoff(attemptsMade, firstDelayMs) },
    },
  );
  worker.on('error', (error) => logger.error(`callback queue: ${redactor.redact(error.message)}`));
  return {
    worker,
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}
