import IORedis, { Redis, RedisOptions } from 'ioredis';

/**
 * Redis connections for BullMQ. Workers wait out Redis outages (no per-request
 * retry limit, reconnect with capped backoff); producers fail fast so a caller
 * learns at once that Redis is down instead of queueing commands in memory.
 */
export type ConnectionRole = 'worker' | 'producer';

export function redisOptions(role: ConnectionRole): RedisOptions {
  const common: RedisOptions = {
    connectTimeout: 5_000,
    retryStrategy: (times) => Math.min(200 * 2 ** Math.min(times, 6), 5_000),
    lazyConnect: false,
  };
  return role === 'worker'
    ? { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true }
    : { ...common, maxRetriesPerRequest: 1, enableOfflineQueue: false };
}

/** The URL for messages: the password replaced by `***` whatever its form (the redactor masks it too; this does not depend on it). */
export function redisUrlForDisplay(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.href;
  } catch {
    return '(not a URL)';
  }
}

export function createRedis(url: string, role: ConnectionRole): Redis {
  return new IORedis(url, redisOptions(role));
}

/**
 * Waits until the connection is ready, or fails after `timeoutMs` — or at the
 * first connection error with `failFast`, as producers want.
 */
export async function waitForRedis(redis: Redis, timeoutMs = 5_000, failFast = false): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('Redis connection closed'));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('end', onEnd);
      redis.off('error', onError);
    };
    redis.on('ready', onReady);
    redis.on('end', onEnd);
    if (failFast) redis.on('error', onError);
  });
}
