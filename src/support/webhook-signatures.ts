import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * The two uses of the webhook secrets (config `callbacks.secret`, or
 * `callbacks.secrets` during a rotation):
 *
 * - `Depot-Signature`, for receivers (CONTRACT §4): HMAC-SHA256 keyed with the
 *   secret's UTF-8 bytes over `<t>.<body>`, one `v1=` per secret.
 * - Delivery authentication, between depot's own processes: the process that
 *   queues a delivery on `depot-callbacks` adds a MAC over it, and the callback
 *   worker signs for the receiver only what such a MAC vouches for — anyone else
 *   who can write to Redis could otherwise have depot sign whatever they queue.
 *   Its key is derived from each secret with HKDF under a label of its own, so
 *   neither MAC can stand in for the other, and the MACs kept in Redis reveal
 *   nothing that signs a webhook.
 */
const DELIVERY_KEY_LABEL = 'depot-callbacks delivery authentication v1';

/** The configured secrets, in order: `secrets` during a rotation, else the one `secret`, else none. */
export function webhookSecrets(callbacks: { secret?: string; secrets?: readonly string[] } | undefined): string[] {
  if (callbacks?.secrets?.length) return [...callbacks.secrets];
  return callbacks?.secret ? [callbacks.secret] : [];
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, one `v1=` per secret, as receivers verify it. */
export function signatureHeader(secrets: readonly string[], body: string, unixSeconds: number): string {
  const macs = secrets.map((secret) => `v1=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${unixSeconds}.${body}`).digest('hex')}`);
  return [`t=${unixSeconds}`, ...macs].join(',');
}

/** One delivery-authentication key per secret. */
export function deliveryKeys(secrets: readonly string[]): Buffer[] {
  return secrets.map((secret) => Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), DELIVERY_KEY_LABEL, 32)));
}

/** What a delivery MAC covers: the delivery's id (its `Depot-Delivery`), its URL and its exact body, unambiguously joined. */
function deliveryMessage(id: string, url: string, body: string): string {
  return JSON.stringify([id, url, body]);
}

/** One hex MAC per key, so that a process with any one of the secrets accepts the delivery (a rotation rolls out process by process). */
export function deliveryMacs(keys: readonly Buffer[], id: string, url: string, body: string): string[] {
  const message = deliveryMessage(id, url, body);
  return keys.map((key) => createHmac('sha256', key).update(message).digest('hex'));
}

/** Whether any of `macs` (job data, so anything) is the MAC of this delivery under any of `keys`; compared in constant time. */
export function isAuthenticDelivery(keys: readonly Buffer[], id: string, url: string, body: string, macs: unknown): boolean {
  if (!Array.isArray(macs)) return false;
  const given = macs.filter((mac): mac is string => typeof mac === 'string' && /^[0-9a-f]{64}$/.test(mac)).map((mac) => Buffer.from(mac, 'hex'));
  let authentic = false;
  for (const expected of deliveryMacs(keys, id, url, body).map((mac) => Buffer.from(mac, 'hex'))) {
    for (const mac of given) authentic = timingSafeEqual(expected, mac) || authentic;
  }
  return authentic;
}
