import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import IORedis from 'ioredis';
import type { RedisNode } from '../../src/queue/connection';
import { freePort, RedisProcess, spawnRedis } from './redis-server';
import { replicasAcknowledging, waitFor } from './redis-sentinel';

const run = promisify(execFile);

/**
 * A Redis Cluster of six nodes on free loopback ports — three masters, each
 * with one replica — made by `redis-cli --cluster create`. A master that stops
 * answering is failed over by its replica after the node timeout (1 s here).
 */
export interface RedisCluster {
  nodes: RedisNode[];
  /** The config's `redis` section: the first three nodes (the rest are discovered). */
  redisConfig: { cluster: RedisNode[] };
  /** The master that serves a key's slot now (ask with a hash-tagged key such as `{depot}`). */
  masterOf(key: string): Promise<RedisNode>;
  /** SIGKILLs the master serving `key`; resolves once a replica serves its slot as master. */
  killMasterOf(key: string, timeoutMs?: number): Promise<{ killed: RedisNode; promoted: RedisNode }>;
  stop(): Promise<void>;
}

const NODE_TIMEOUT_MS = 1_000;

export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), 'depot-cluster-'));
  const processes = new Map<number, RedisProcess>();
  const stop = async () => {
    await Promise.all([...processes.values()].map((p) => p.kill()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const nodes: RedisNode[] = [];
    for (let i = 0; i < 6; i++) nodes.push({ host: '127.0.0.1', port: await freePort() });
    // Settled, all of them, before a failure is thrown: a node still starting would escape stop() and keep jest alive.
    const started = await Promise.allSettled(
      nodes.map(async ({ port }) => {
        const nodeDir = path.join(dir, String(port));
        await mkdir(nodeDir);
        processes.set(
          port,
          await spawnRedis(port, [
            '--bind',
            '127.0.0.1',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            String(NODE_TIMEOUT_MS),
            // A replica takes over however long it was cut off from its master.
            '--cluster-replica-validity-factor',
            '0',
            // A replica's first full sync starts at once, not after the default 5 s wait for more replicas.
            '--repl-diskless-sync-delay',
            '0',
            '--save',
            '',
            '--appendonly',
            'no',
            '--dir',
            nodeDir,
            '--maxmemory-policy',
            'noeviction',
          ]),
        );
      }),
    );
    const failed = started.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], {
      timeout: 30_000,
    });
    await waitFor(
      async () => (await Promise.all(nodes.map((n) => clusterInfo(n.port)))).every((text) => text.includes('cluster_state:ok')),
      15_000,
      'every node to report cluster_state:ok',
    );
    // cluster_state:ok comes before the replicas hold their masters' data, and a replica that has
    // loaded its first full sync gets the writes after it only once the master has its first ACK.
    // Until then a master killed takes its keys with it; so each master makes a write (FUNCTION
    // FLUSH: replicated, and no key to route) and WAITs for its replica to acknowledge it.
    await waitFor(
      async () => (await Promise.all(nodes.map((n) => replicasAcknowledging(n.port)))).reduce((sum, n) => sum + n, 0) === 3,
      15_000,
      'every replica to acknowledge its master',
    );
    const masterOf = async (key: string): Promise<RedisNode> => {
      for (const node of nodes) {
        const child = processes.get(node.port)?.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) continue;
        const found = await slotMaster(node.port, key).catch(() => undefined);
        if (found) return found;
      }
      throw new Error(`no node answers for ${key}`);
    };
    return {
      nodes,
      redisConfig: { cluster: nodes.slice(0, 3) },
      masterOf,
      killMasterOf: async (key, timeoutMs = 20_000) => {
        const killed = await masterOf(key);
        await processes.get(killed.port)?.kill();
        let promoted: RedisNode | undefined;
        await waitFor(
          async () => {
            const now = await masterOf(key).catch(() => killed);
            if (now.port === killed.port) return false;
            promoted = now;
            return (await clusterInfo(now.port)).includes('cluster_state:ok');
          },
          timeoutMs,
          'a replica to take over the dead master',
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

async function clusterInfo(port: number): Promise<string> {
  const client = new IORedis({ host: '127.0.0.1', port, lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return String(await client.call('CLUSTER', 'INFO'));
  } catch {
    return '';
  } finally {
    client.disconnect();
  }
}

/** The master of the key's slot, as the node on `port` sees the cluster. */
async function slotMaster(port: number, key: string): Promise<RedisNode | undefined> {
  const client = new IORedis({ host: '127.0.0.1', port, lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
    const ranges = (await client.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    return range ? { host: range[2][0], port: Number(range[2][1]) } : undefined;
  } finally {
    client.disconnect();
  }
}
