import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import IORedis from 'ioredis';
import type { RedisNode } from '../../src/queue/connection';
import { freePort, RedisProcess, spawnRedis } from './redis-server';

/**
 * One master, one replica and three sentinels (quorum 2) on free loopback
 * ports: `redis-server --sentinel`, the program Debian's `redis-sentinel`
 * package runs. Failover is quick: a master is down after 1 s of silence.
 */
export interface SentinelSet {
  name: string;
  sentinels: RedisNode[];
  /** The config's `redis` section for this set. */
  redisConfig: { sentinels: RedisNode[]; name: string };
  /** The master the sentinels name now. */
  master(): Promise<RedisNode>;
  /** SIGKILLs the current master; resolves with the node the sentinels promoted in its place. */
  killMaster(timeoutMs?: number): Promise<{ killed: RedisNode; promoted: RedisNode }>;
  stop(): Promise<void>;
}

const MASTER_NAME = 'depot-test';
const DOWN_AFTER_MS = 1_000;

export async function startSentinelSet(): Promise<SentinelSet> {
  const dir = await mkdtemp(path.join(tmpdir(), 'depot-sentinel-'));
  const servers = new Map<number, RedisProcess>();
  const sentinelProcesses: RedisProcess[] = [];
  const stop = async () => {
    await Promise.all([...sentinelProcesses, ...servers.values()].map((p) => p.kill()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const masterPort = await freePort();
    const replicaPort = await freePort();
    const common = (name: string) => [
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--dbfilename',
      `${name}.rdb`,
      '--maxmemory-policy',
      'noeviction',
      // The replica's first full sync starts at once, not after the default 5 s wait for more replicas.
      '--repl-diskless-sync-delay',
      '0',
    ];
    servers.set(masterPort, await spawnRedis(masterPort, common('master')));
    servers.set(replicaPort, await spawnRedis(replicaPort, [...common('replica'), '--replicaof', '127.0.0.1', String(masterPort)]));
    await waitFor(async () => (await info(replicaPort, 'replication')).includes('master_link_status:up'), 10_000, 'the replica to sync');
    // A replica that has loaded its first sync gets the writes after it only once the master has its first ACK:
    // until then a master killed takes them with it (see redis-cluster.ts).
    await waitFor(async () => (await replicasAcknowledging(masterPort)) === 1, 10_000, 'the replica to acknowledge the master');

    const sentinels: RedisNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // Sentinel rewrites its config file as it learns: one writable file each.
      const file = path.join(dir, `sentinel-${i}.conf`);
      await writeFile(
        file,
        [
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}`,
          `sentinel failover-timeout ${MASTER_NAME} 5000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      sentinelProcesses.push(await spawnRedis(port, ['--sentinel'], file));
      sentinels.push({ host: '127.0.0.1', port });
    }
    const master = async (): Promise<RedisNode> => {
      const client = new IORedis({ ...sentinels[0], lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 1 });
      try {
        await client.connect();
        const [host, port] = (await client.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as [string, string];
        return { host, port: Number(port) };
      } finally {
        client.disconnect();
      }
    };
    // Every sentinel has found the replica and the other sentinels: a failover can then be agreed.
    await waitFor(
      async () => {
        for (const s of sentinels) {
          const text = await info(s.port, 'sentinel');
          if (!/slaves=1,sentinels=3/.test(text)) return false;
        }
        return true;
      },
      15_000,
      'the sentinels to know each other and the replica',
    );
    return {
      name: MASTER_NAME,
      sentinels,
      redisConfig: { sentinels, name: MASTER_NAME },
      master,
      killMaster: async (timeoutMs = 20_000) => {
        const killed = await master();
        await servers.get(killed.port)?.kill();
        let promoted: RedisNode | undefined;
        await waitFor(
          async () => {
            const now = await master().catch(() => killed);
            if (now.port === killed.port) return false;
            // Promoted and answering as a master.
            if (!(await info(now.port, 'replication')).includes('role:master')) return false;
            promoted = now;
            return true;
          },
          timeoutMs,
          'the sentinels to promote the replica',
        );
        return { killed, promoted: promoted as RedisNode };
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** `INFO section` of the server on a loopback port; '' when it does not answer. */
export async function info(port: number, section: string): Promise<string> {
  const client = new IORedis({ host: '127.0.0.1', port, lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.info(section);
  } catch {
    return '';
  } finally {
    client.disconnect();
  }
}

/** On a master: how many replicas acknowledged a write just made (0 on a replica, or when none did within 1 s). */
export async function replicasAcknowledging(port: number): Promise<number> {
  const client = new IORedis({ host: '127.0.0.1', port, lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    if (!(await client.info('replication')).includes('role:master')) return 0;
    await client.call('FUNCTION', 'FLUSH');
    return Number(await client.call('WAIT', '1', '1000'));
  } catch {
    return 0;
  } finally {
    client.disconnect();
  }
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
