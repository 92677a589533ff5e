import { HeadObjectCommand, HeadObjectCommandOutput, PutObjectRetentionCommand, S3Client } from '@aws-sdk/client-s3';
import { DepotError } from '../../../contract';
import type { S3Settings } from './types';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Stores keep retain-until dates to the second (Ceph) or round them: a lock this close to the one asked for holds. */
const CLOCK_SLACK_MS = 1000;

export interface LockParams {
  ObjectLockMode: 'GOVERNANCE' | 'COMPLIANCE';
  ObjectLockRetainUntilDate: Date;
}

/**
 * Object Lock retention for a new object: the later of the configured minimum
 * (`objectLock.days` from `now`) and the task's own `retainUntil`. Nothing without
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

/** The lock of a store, pushed to the manifest's retainUntil when that is later. */
export function laterLock(lock: LockParams | undefined, retainUntil: string | undefined): LockParams | undefined {
  const wanted = retainUntil ? Date.parse(retainUntil) : NaN;
  if (!lock || Number.isNaN(wanted) || wanted <= lock.ObjectLockRetainUntilDate.getTime()) return lock;
  return { ...lock, ObjectLockRetainUntilDate: new Date(wanted) };
}

/** Whether an object (as HEAD shows it) is locked at least as strongly and as long as `wanted`. */
export function holdsLock(object: Pick<HeadObjectCommandOutput, 'ObjectLockMode' | 'ObjectLockRetainUntilDate'>, wanted: LockParams): boolean {
  const mode = object.ObjectLockMode;
  // COMPLIANCE is stricter than GOVERNANCE: it satisfies either.
  const strongEnough = mode === 'COMPLIANCE' || mode === wanted.ObjectLockMode;
  const until = object.ObjectLockRetainUntilDate?.getTime();
  return strongEnough && until !== undefined && until >= wanted.ObjectLockRetainUntilDate.getTime() - CLOCK_SLACK_MS;
}

/** Whether an AccessDenied on delete is Object Lock's refusal rather than missing permissions. */
export function isLocked(object: HeadObjectCommandOutput, error: unknown): boolean {
  const until = object.ObjectLockRetainUntilDate?.getTime();
  if ((until !== undefined && until > Date.now()) || object.ObjectLockLegalHoldStatus === 'ON') return true;
  const message = error instanceof Error ? error.message : '';
  return /object lock|retention|worm|legal hold/i.test(message);
}

/**
 * Makes one object version hold `wanted` and reads it back. Some stores ignore
 * the lock headers of CreateMultipartUpload (Ceph RGW 16 does): the object
 * then exists unlocked, and only PutObjectRetention locks it. A store that
 * still shows no such lock afterwards will not keep one: `misconfigured`.
 */
export async function lockVersion(
  client: S3Client,
  target: { bucket: string; key: string; versionId?: string; label: string },
  wanted: LockParams,
  signal?: AbortSignal,
): Promise<void> {
  const head = () => client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.key, VersionId: target.versionId }), { abortSignal: signal });
  const before = await head();
  if (holdsLock(before, wanted)) return;
  await client.send(
    new PutObjectRetentionCommand({
      Bucket: target.bucket,
      Key: target.key,
      // The version HEAD saw when none was named: the one just verified to be ours.
      VersionId: target.versionId ?? before.VersionId,
      Retention: { Mode: wanted.ObjectLockMode, RetainUntilDate: wanted.ObjectLockRetainUntilDate },
    }),
    { abortSignal: signal },
  );
  const after = await head();
  if (!holdsLock(after, wanted)) {
    const shown = after.ObjectLockMode ? `${after.ObjectLockMode} until ${after.ObjectLockRetainUntilDate?.toISOString()}` : 'no retention';
    throw new DepotError(
      'misconfigured',
      `${target.label}: the store shows ${shown} after depot asked for ${wanted.ObjectLockMode} until ${wanted.ObjectLockRetainUntilDate.toISOString()}; it does not keep Object Lock retention`,
    );
  }
}
