import { createHmac } from 'node:crypto';
import { deliveryKeys, deliveryMacs, isAuthenticDelivery, signatureHeader, webhookSecrets } from '../../../src/support/webhook-signatures';

/** The two MACs made from the webhook secrets, and why neither stands in for the other. */
const SECRET = 'hook-secret-0123456789abcdef';
const body = '{"event":"task.completed","taskId":"t1"}';

test('webhookSecrets: the rotation list, else the one secret, else none', () => {
  expect(webhookSecrets({ secrets: ['new-secret-0123456789', 'old-secret-0123456789'] })).toEqual(['new-secret-0123456789', 'old-secret-0123456789']);
  expect(webhookSecrets({ secret: SECRET })).toEqual([SECRET]);
  expect(webhookSecrets({})).toEqual([]);
  expect(webhookSecrets(undefined)).toEqual([]);
});

test("signatureHeader: t, then one v1= per secret, keyed with the secret's UTF-8 bytes", () => {
  const other = 'zweites-Geheimnis-äöü-0123';
  const mac = (secret: string) => createHmac('sha256', Buffer.from(secret, 'utf8')).update(`1700000000.${body}`).digest('hex');
  expect(signatureHeader([SECRET, other], body, 1_700_000_000)).toBe(`t=1700000000,v1=${mac(SECRET)},v1=${mac(other)}`);
  expect(signatureHeader([], body, 1_700_000_000)).toBe('t=1700000000');
});

test('delivery MACs use a key derived from the secret, not the secret: no delivery MAC is a receiver signature', () => {
  const [key] = deliveryKeys([SECRET]);
  expect(key.length).toBe(32);
  expect(key.equals(Buffer.from(SECRET))).toBe(false);
  const [mac] = deliveryMacs([key], 'd1', 'https://h.example/hook', body);
  const message = JSON.stringify(['d1', 'https://h.example/hook', body]);
  expect(mac).not.toBe(createHmac('sha256', SECRET).update(message).digest('hex'));
  expect(signatureHeader([SECRET], body, 1)).not.toContain(mac);
});

test('isAuthenticDelivery: only the very id, URL and body, under any of the keys; anything else is refused', () => {
  const keys = deliveryKeys(['new-secret-0123456789', SECRET]);
  const macs = deliveryMacs(deliveryKeys([SECRET]), 'd1', 'https://h.example/hook', body);
  expect(isAuthenticDelivery(keys, 'd1', 'https://h.example/hook', body, macs)).toBe(true);
  expect(isAuthenticDelivery(keys, 'd2', 'https://h.example/hook', body, macs)).toBe(false);
  expect(isAuthenticDelivery(keys, 'd1', 'https://h.example/other', body, macs)).toBe(false);
  expect(isAuthenticDelivery(keys, 'd1', 'https://h.example/hook', body.replace('t1', 't2'), macs)).toBe(false);
  // Fields cannot be shifted across the joints: the id and the URL are not glued together.
  expect(isAuthenticDelivery(keys, 'd1https://h.example/hook', '', body, deliveryMacs(keys, 'd1', 'https://h.example/hook', body))).toBe(false);
  for (const bad of [undefined, null, 'x', [], [42], ['0'.repeat(64)], [macs[0].toUpperCase()]])
    expect(isAuthenticDelivery(keys, 'd1', 'https://h.example/hook', body, bad)).toBe(false);
  expect(isAuthenticDelivery(deliveryKeys(['another-secret-0123456']), 'd1', 'https://h.example/hook', body, macs)).toBe(false);
});
