import { randomBytes } from 'node:crypto';

/**
 * UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. depot's own
 * taskIds carry their creation day, which the key scheme uses.
 */
export function newTaskId(now: number = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6] & 0x0f) | 0x70; // version 7
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** The creation time a UUIDv7 carries, or null for any other taskId. */
export function taskIdTime(taskId: string): Date | null {
  if (!UUID_V7.test(taskId)) return null;
  const ms = parseInt(taskId.replace(/-/g, '').slice(0, 12), 16);
  return new Date(ms);
}

/** The last moment the key scheme's four-digit year (`YYYY/MM/DD`) can write. */
const LAST_KEY_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * Why a UUIDv7 taskId cannot name its key's day, or null. Its 48-bit time
 * reaches the year 10889, past what a `YYYY/MM/DD` key can hold.
 */
export function taskIdTimeProblem(taskId: string): string | null {
  const time = taskIdTime(taskId);
  if (time && time.getTime() > LAST_KEY_TIME) return 'a UUIDv7 taskId must carry a date before the year 10000 (the key scheme is YYYY/MM/DD)';
  return null;
}
