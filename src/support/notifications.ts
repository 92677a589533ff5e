import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { DepotError } from '../contract';
import { guardedLookup, isForbiddenAddress } from './address-guard';
import { redactor } from './redaction';
import { signatureHeader } from './webhook-signatures';

/** CONTRACT §4: what a webhook reports. */
export type TaskEvent = 'task.completed' | 'task.failed' | 'task.failover';

export interface TaskNotification {
  event: TaskEvent;
  taskId: string;
  jobId: string;
  operation: string;
  result?: unknown;
  error?: { code: string; message: string };
  attempt: number;
  timestamp: string;
  /** task.failover only: the driver given up and the one tried next (an extension). */
  from?: string;
  to?: string;
}

/**
 * CONTRACT §8: a fixity check found an archive changed or gone. Signed and
 * delivered like the task events, to config `callbacks.url` (an archive has
 * no task callback of its own any more).
 */
export interface ArchiveNotification {
  event: 'archive.corrupt';
  ref: { driver: string; key: string };
  taskId: string;
  expectedSha256: string;
  /** The sha256 of the bytes read; null when none could be (the archive is missing). */
  foundSha256: string | null;
  verifiedAt: string;
  timestamp: string;
}

/** One webhook to send: the job data on queue `depot-callbacks`. It never holds the secret, which workers take from their config. */
export interface CallbackDelivery {
  url: string;
  notification: TaskNotification | ArchiveNotification;
}

/**
 * NotificationService: turns task events into webhook deliveries, one per
 * distinct target — the task's own `callbackUrl` and the config's
 * `callbacks.url`. `enqueue` makes them durable (a job each, so a receiver that
 * is down gets them later); the service itself knows nothing of queues.
 */
export class NotificationService {
  constructor(
    private readonly enqueue: (delivery: CallbackDelivery, deliveryId: string) => Promise<void>,
    private readonly configUrl?: string,
  ) {}

  /** Where a task's events go: none when neither the task nor the config names a URL. */
  targets(taskCallbackUrl: unknown): string[] {
    const urls = [typeof taskCallbackUrl === 'string' ? taskCallbackUrl : undefined, this.configUrl].filter((u): u is string => u !== undefined && u !== '');
    return [...new Set(urls)];
  }

  /** `archive.corrupt` to config `callbacks.url`; one delivery per archive and verification, however often it is queued. */
  async notifyArchive(notification: ArchiveNotification): Promise<void> {
    if (!this.configUrl) return;
    const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);
    const subject = hash(`${notification.ref.driver}\u0000${notification.ref.key}\u0000${notification.verifiedAt}`);
    await this.enqueue({ url: this.configUrl, notification: redactor.redactValue(notification) }, `${subject}.${notification.event}.${hash(this.configUrl)}`);
  }

  async notify(taskCallbackUrl: unknown, notification: TaskNotification): Promise<void> {
    const reported = redactor.redactValue(withoutArchiveBytes(notification));
    for (const url of this.targets(taskCallbackUrl)) {
      // The same event of the same task to the same URL is queued once, however often a retried task reports it.
      await this.enqueue({ url, notification: reported }, deliveryId(notification, url));
    }
  }
}

/**
 * Webhooks never carry archive bytes: an inline retrieve is reported by its
 * ref, size and sha256. Its base64 (up to `limits.inlineBytes`, a third more
 * as text) would exceed common receivers' body limits, and a refused body is
 * retried for a day.
 */
function withoutArchiveBytes(notification: TaskNotification): TaskNotification {
  const result = notification.result;
  if (typeof result !== 'object' || result === null || !Object.hasOwn(result, 'base64')) return notification;
  return { ...notification, result: Object.fromEntries(Object.entries(result).filter(([key]) => key !== 'base64')) };
}

/**
 * A stable id per task, event and target (a BullMQ jobId: no ':'), so a
 * retried task queues each event once; every failover hop is an event of its own.
 */
export function deliveryId(notification: TaskNotification, url: string): string {
  const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);
  const task = /^[A-Za-z0-9._-]{1,100}$/.test(notification.taskId) ? notification.taskId : hash(notification.taskId);
  const hop = notification.event === 'task.failover' ? `\u0000${notification.from}\u0000${notification.to}\u0000${notification.attempt}` : '';
  return `${task}.${notification.event}.${hash(url + hop)}`;
}

/** The body of a webhook: the notification as JSON. What is authenticated, signed and sent are these exact bytes. */
export function webhookBody(notification: TaskNotification | ArchiveNotification): string {
  return JSON.stringify(notification);
}

export interface DeliverOptions {
  /** The configured webhook secrets (CONTRACT §4); without any the request carries no Depot-Signature. */
  secrets?: readonly string[];
  /** `Depot-Delivery`: the same on every retry of one delivery, for receivers to dedupe on. */
  deliveryId?: string;
  timeoutMs: number;
  /** The clock `t` is taken from, on each attempt. */
  now?: () => number;
}

/**
 * POSTs one delivery. Resolves on a 2xx; anything else — another status, a
 * refused connection, a timeout — rejects with `unavailable`, and the delivery
 * job is retried. Redirects are not followed (the body is signed for this URL).
 */
export function deliverCallback(delivery: CallbackDelivery, options: DeliverOptions): Promise<number> {
  let url: URL;
  try {
    url = new URL(delivery.url);
  } catch {
    return Promise.reject(new DepotError('invalid_task', 'is not a URL', { field: 'callbackUrl' }));
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || isForbiddenAddress(url.hostname.replace(/^\[|\]$/g, ''))) {
    return Promise.reject(new DepotError('invalid_task', 'must be an http or https URL outside link-local ranges', { field: 'callbackUrl' }));
  }
  const body = webhookBody(delivery.notification);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'depot-webhook',
  };
  if (options.deliveryId !== undefined) headers['depot-delivery'] = options.deliveryId;
  // `t` is this attempt's time: a retry is signed anew, so receivers can keep their tolerance tight.
  if (options.secrets?.length) headers['depot-signature'] = signatureHeader(options.secrets, body, Math.floor((options.now?.() ?? Date.now()) / 1000));
  const where = `${url.origin}${url.pathname}`;
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(url, { method: 'POST', headers, lookup: guardedLookup, timeout: options.timeoutMs });
    // The whole delivery is bounded, not only each silence of the socket.
    const deadline = setTimeout(() => request.destroy(new Error(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    request.on('timeout', () => request.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    request.on('error', (error) => {
      clearTimeout(deadline);
      reject(new DepotError('unavailable', `webhook ${where}: ${redactor.redact(error.message)}`));
    });
    request.on('response', (response) => {
      clearTimeout(deadline);
      // The status is the answer; a body is not read (one that never ends must not hold the socket).
      response.destroy();
      const status = response.statusCode ?? 0;
      if (status >= 200 && status < 300) resolve(status);
      else reject(new DepotError('unavailable', `webhook ${where} answered HTTP ${status}`));
    });
    request.end(body);
  });
}
