import IORedis, { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';

/**
 * Redis connections for BullMQ, on any of the three topologies of CONTRACT §10:
 * a single server, a master found through Sentinel, or a Redis Cluster.
 * Workers wait out Redis outages and failovers (no per-request retry limit,
 * reconnect with capped backoff); producers fail fast so a caller learns at
 * once that Redis is down instead of queueing commands in memory.
 */
export type ConnectionRole = 'worker' | 'producer';

export interface RedisNode {
  host: string;
  port: number;
}

/** Credentials shared by the Sentinel and Cluster forms (a single server carries them in its URL). */
interface RedisAuth {
  username?: string;
  password?: string;
  /** TLS to every node (rediss:// for a single server). */
  tls?: boolean;
}

export type RedisTopology =
  | { kind: 'single'; url: string }
  | ({ kind: 'sentinel'; sentinels: RedisNode[]; name: string; sentinelPassword?: string; db?: number } & RedisAuth)
  | ({ kind: 'cluster'; nodes: RedisNode[] } & RedisAuth);

/** Where a connection goes: a topology, or a `redis://` URL (a single server). */
export type RedisTarget = string | RedisTopology;

/** A connection as BullMQ takes it: one server's (single, Sentinel) or a cluster's. */
export type RedisClient = Redis | Cluster;

const CONNECT_TIMEOUT_MS = 5_000;
const MAX_BACKOFF_MS = 5_000;

function backoff(times: number): number {
  return Math.min(200 * 2 ** Math.min(times, 6), MAX_BACKOFF_MS);
}

/**
 * After a failover the old master may still answer, now as a replica: writes
 * get READONLY. Reconnecting (2: and sending the command again) reaches the
 * new master — Sentinel names it, a cluster's slot map points to it. LOADING:
 * a restarted server still reading its AOF.
 */
function reconnectOnError(error: Error): boolean | 1 | 2 {
  return /^(READONLY|LOADING)\b/.test(error.message) ? 2 : false;
}

export function redisOptions(role: ConnectionRole): RedisOptions {
  const common: RedisOptions = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: backoff,
    reconnectOnError,
    lazyConnect: false,
  };
  return role === 'worker'
    ? { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true }
    : { ...common, maxRetriesPerRequest: 1, enableOfflineQueue: false };
}

function topologyOf(target: RedisTarget): RedisTopology {
  return typeof target === 'string' ? { kind: 'single', url: target } : target;
}

export function createRedis(target: RedisTarget, role: ConnectionRole): RedisClient {
  const topology = topologyOf(target);
  const options = redisOptions(role);
  switch (topology.kind) {
    case 'single':
      return new IORedis(topology.url, options);
    case 'sentinel':
      return new IORedis({
        ...options,
        sentinels: topology.sentinels,
        name: topology.name,
        role: 'master',
        username: topology.username,
        password: topology.password,
        sentinelPassword: topology.sentinelPassword,
        db: topology.db,
        ...(topology.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
        // Sentinels asked in turn, each within the connect timeout; the whole round again with backoff.
        sentinelRetryStrategy: backoff,
        sentinelCommandTimeout: CONNECT_TIMEOUT_MS,
        // Subscribes to +switch-master: a failover moves the connection at once, not at its next error.
        failoverDetector: true,
      });
    case 'cluster':
      return new Cluster(topology.nodes, clusterOptions(topology, role, options));
  }
}

function clusterOptions(topology: Extract<RedisTopology, { kind: 'cluster' }>, role: ConnectionRole, options: RedisOptions): ClusterOptions {
  // A cluster reconnects by its own strategy and queues offline by its own option; the rest applies to each node's connection.
  const { connectTimeout, maxRetriesPerRequest, enableOfflineQueue, lazyConnect } = options;
  return {
    redisOptions: {
      connectTimeout,
      maxRetriesPerRequest,
      reconnectOnError,
      username: topology.username,
      password: topology.password,
      ...(topology.tls ? { tls: {} } : {}),
    },
    enableOfflineQueue,
    lazyConnect,
    enableReadyCheck: true,
    clusterRetryStrategy: backoff,
    slotsRefreshTimeout: 2_000,
    // While a replica takes over a dead master's slots, commands for them are retried this far apart ...
    retryDelayOnFailover: 300,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 300,
    // ... and this many times (about 20 s for a worker, which waits out a failover; a producer gives up sooner).
    maxRedirections: role === 'worker' ? 64 : 16,
  };
}

/** The topology for messages: addresses and names, never a credential (the redactor masks those too; this does not depend on it). */
export function redisForDisplay(target: RedisTarget): string {
  const topology = topologyOf(target);
  const nodes = (list: RedisNode[]) => list.map((n) => `${n.host}:${n.port}`).join(',');
  switch (topology.kind) {
    case 'single':
      return redisUrlForDisplay(topology.url);
    case 'sentinel':
      return `Sentinel master '${topology.name}' via ${nodes(topology.sentinels)}`;
    case 'cluster':
      return `Cluster ${nodes(topology.nodes)}`;
  }
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

/**
 * Redis Cluster keeps keys that share a hash tag — the text between the first
 * `{` and the next `}`, not empty — in one slot. BullMQ's scripts touch many
 * keys of a queue at once, and depot's own keys (locks, inline results) sit
 * beside them: every key begins with the prefix, so a prefix with a hash tag
 * keeps all of them, on every queue, in one slot.
 */
export function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  if (open < 0) return false;
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1;
}

/**
 * Waits until the connection is ready, or fails after `timeoutMs` — or at the
 * first connection error with `failFast`, as producers want.
 */
export async function waitForRedis(redis: RedisClient, timeoutMs = 5_000, failFast = false): Promise<void> {
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
