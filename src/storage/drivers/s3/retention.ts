import type { S3Settings } from './types';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface LockParams {
  ObjectLockMode: 'GOVERNANCE' | 'COMPLIANCE';
  ObjectLockRetainUntilDate: Date;
}

/**
 * Object Lock retention for a new object: the later of the configured minimum
 * (`objectLock.days` from now) and the task's own `retainUntil`. Nothing without
 * `objectLock` in the settings: depot then enforces retainUntil itself on delete.
 */
export function lockFor(settings: Pick<S3Settings, 'objectLock'>, retainUntil: string | undefined, now = new Date()): LockParams | undefined {
  if (!settings.objectLock) return undefined;
  const minimum = now.getTime() + settings.objectLock.days * DAY_MS;
  const asked = retainUntil ? Date.parse(retainUntil) : NaN;
  return {
    ObjectLockMode: settings.objectLock.mode,
    ObjectLockRetainUntilDate: new Date(Number.isNaN(asked) ? minimum : Math.max(minimum, asked)),
  };
}
