import { Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { handleError } from '../support/error-handler';
import type { Logger } from '../support/logging';
import { CallbackDelivery, deliverCallback, webhookBody } from '../support/notifications';
import { redactor } from '../support/redaction';
import { deliveryKeys, deliveryMacs, isAuthenticDelivery } from '../support/webhook-signatures';
import { createRedis, RedisTarget } from './connection';
import { CALLBACK_QUEUE } from './names';
import { DEFAULT_RETENTION, keepJobs } from './job-options';
import { ignoreErrorEvents, ignoreFailure } from '../support/ignore';

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

/** A delivery as queued by depot: with one MAC per configured secret, which the callback worker checks before it signs and sends. */
export interface QueuedDelivery extends CallbackDelivery {
  auth?: string[];
}

export interface CallbackQueue {
  enqueue(delivery: CallbackDelivery, deliveryId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The queuing side. `secrets`: the configured webhook secrets (`webhookSecrets(config.callbacks)`),
 * from which each delivery's authentication is derived; without any, deliveries carry none.
 */
export function createCallbackQueue(redis: RedisTarget, prefix: string, secrets: readonly string[] = []): CallbackQueue {
  const keys = deliveryKeys(secrets);
  const connection = createRedis(redis, 'worker');
  ignoreErrorEvents(connection, 'a delivery that cannot be queued fails its enqueue call, which the caller logs');
  const queue = new Queue<QueuedDelivery>(CALLBACK_QUEUE, { connection, prefix });
  ignoreErrorEvents(queue, 'a delivery that cannot be queued fails its enqueue call, which the caller logs');
  return {
    async enqueue(delivery, deliveryId) {
      const queued: QueuedDelivery = { ...delivery, auth: deliveryMacs(keys, deliveryId, delivery.url, webhookBody(delivery.notification)) };
      await queue.add(delivery.notification.event, queued, {
        jobId: deliveryId,
        attempts: DELIVERY_ATTEMPTS,
        backoff: { type: 'delivery' },
        removeOnComplete: keepJobs(DEFAULT_RETENTION.completed),
        removeOnFail: keepJobs(DEFAULT_RETENTION.failed),
      });
    },
    async close() {
      await ignoreFailure(queue.close(), 'closing: a queue whose Redis is gone has nothing left to flush');
      connection.disconnect();
    },
  };
}

export interface CallbackWorkerOptions {
  redis: RedisTarget;
  prefix: string;
  /**
   * The configured webhook secrets (`webhookSecrets(config.callbacks)`), held by the worker only, never put in a job.
   * Without any, deliveries are sent unsigned and unauthenticated (CONTRACT, "Webhooks").
   */
  secrets?: readonly string[];
  concurrency?: number;
  /** The first retry's delay; tests shorten it. */
  firstDelayMs?: number;
  timeoutMs?: number;
  name?: string;
  /** The clock each attempt's `t` is taken from; tests skew it. */
  now?: () => number;
}

/**
 * The worker that sends webhooks; runs in every `depot worker` process next to
 * the storage worker. With secrets configured, it signs and sends only
 * deliveries that a depot process with one of them queued: any other job on
 * `depot-callbacks` — added by whoever can write to Redis, or altered there —
 * fails at once, unsent.
 */
export function startCallbackWorker(options: CallbackWorkerOptions, logger: Logger): { worker: Worker; close(): Promise<void> } {
  const connection = createRedis(options.redis, 'worker');
  const firstDelayMs = options.firstDelayMs ?? 1_000;
  const secrets = options.secrets ?? [];
  const keys = deliveryKeys(secrets);
  const worker = new Worker<QueuedDelivery>(
    CALLBACK_QUEUE,
    async (job: Job<QueuedDelivery>) => {
      const deliveryId = job.id ?? '';
      if (keys.length > 0 && !isAuthentic(keys, deliveryId, job.data)) {
        logger.error(`webhook job ${deliveryId} (${job.name}) refused, not sent: not queued by depot, or altered since (no valid delivery authentication)`, {
          jobId: deliveryId,
        });
        throw new UnrecoverableError('invalid_task: not queued by depot, or altered since: no valid delivery authentication');
      }
      try {
        const status = await deliverCallback(job.data, { secrets, deliveryId, timeoutMs: options.timeoutMs ?? DELIVERY_TIMEOUT_MS, now: options.now });
        logger.info(`webhook ${job.data.notification.event} of task ${job.data.notification.taskId} delivered (HTTP ${status})`, {
          taskId: job.data.notification.taskId,
          event: job.data.notification.event,
          deliveryId,
          attempt: job.attemptsMade + 1,
        });
        return { status };
      } catch (error) {
        const failure = handleError(error);
        const reason = `${failure.code}: ${redactor.redact(failure.message)}`;
        logger.warn(`webhook ${job.data.notification.event} of task ${job.data.notification.taskId} not delivered: ${reason}`, {
          taskId: job.data.notification.taskId,
          deliveryId,
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

/** Job data is whatever was written to Redis: checked for shape, then for its MAC over the exact body that would be sent. */
function isAuthentic(keys: readonly Buffer[], deliveryId: string, data: unknown): boolean {
  if (typeof data !== 'object' || data === null) return false;
  const { url, notification, auth } = data as Partial<Record<keyof QueuedDelivery, unknown>>;
  if (typeof url !== 'string' || typeof notification !== 'object' || notification === null) return false;
  return isAuthenticDelivery(keys, deliveryId, url, webhookBody(notification as CallbackDelivery['notification']), auth);
}
