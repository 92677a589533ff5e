import { ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstreamManager, JetStreamManager } from '@nats-io/jetstream';
import { connect, NatsConnection } from '../../src/storage/drivers/nats/client';
import { natsSettingsSchema, NatsSettings } from '../../src/storage/drivers/nats';
import { freePort } from './redis-server';

/**
 * Real nats-server processes (Debian's 2.9.10, /usr/sbin/nats-server) with
 * JetStream, on free loopback ports with their own store directories — never
 * the machine's 4222. A single server, optionally with an account that has
 * JetStream limits and a password (so that space and auth are the server's
 * own), or a cluster of several routed together (JetStream replicas).
 */
export const NATS_SERVER = process.env.NATS_SERVER_BIN ?? 'nats-server';

/** The account and user the servers started here accept, when `account` is asked for. */
export const NATS_TEST_USER = { user: 'depot', password: 'depot-test-password-1' };

export interface NatsAccountOptions {
  /** JetStream limits of the account, in bytes. */
  maxFileBytes: number;
  maxMemoryBytes: number;
  /** More users of the account, with NATS permissions (written as JSON, which the config format accepts). */
  users?: Array<{ user: string; password: string; permissions?: unknown }>;
}

export interface NatsNode {
  name: string;
  port: number;
  url: string;
  /** SIGKILL; resolves once it is gone. */
  kill(): Promise<void>;
  /** SIGTERM (nats-server's clean shutdown); resolves once it is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and store directory. */
  start(): Promise<void>;
  readonly running: boolean;
}

export interface NatsServer extends NatsNode {
  dataDir: string;
  /** Stops it and removes its store. */
  destroy(): Promise<void>;
}

export interface NatsCluster {
  nodes: NatsNode[];
  urls: string[];
  destroy(): Promise<void>;
}

interface NodePlan {
  name: string;
  port: number;
  clusterPort?: number;
  routes?: number[];
  storeDir: string;
  account?: NatsAccountOptions;
  /** false: a server without JetStream. */
  jetstream?: boolean;
  /** TLS required of every client, with this certificate. */
  tls?: { certFile: string; keyFile: string };
}

function configText(plan: NodePlan): string {
  const lines = [
    `server_name: ${plan.name}`,
    `listen: 127.0.0.1:${plan.port}`,
    plan.jetstream === false ? '' : `jetstream { store_dir: ${JSON.stringify(plan.storeDir)} }`,
    // Fast enough for tests: a lost client is noticed in seconds.
    'ping_interval: "2s"',
  ];
  if (plan.account) {
    const users = [{ user: NATS_TEST_USER.user, password: NATS_TEST_USER.password }, ...(plan.account.users ?? [])];
    const limits = plan.jetstream === false ? '' : `jetstream: { max_file: ${plan.account.maxFileBytes}, max_mem: ${plan.account.maxMemoryBytes} }, `;
    lines.push('accounts {', `  DEPOT { ${limits}users: ${JSON.stringify(users)} }`, '}');
  }
  if (plan.tls) lines.push(`tls { cert_file: ${JSON.stringify(plan.tls.certFile)}, key_file: ${JSON.stringify(plan.tls.keyFile)} }`);
  if (plan.clusterPort !== undefined) {
    lines.push(
      'cluster {',
      '  name: depot-test',
      `  listen: 127.0.0.1:${plan.clusterPort}`,
      `  routes: [${(plan.routes ?? []).map((p) => `"nats-route://127.0.0.1:${p}"`).join(', ')}]`,
      '}',
    );
  }
  return lines.join('\n') + '\n';
}

async function startNode(plan: NodePlan, dir: string): Promise<NatsNode> {
  const configFile = path.join(dir, `${plan.name}.conf`);
  await writeFile(configFile, configText(plan));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const start = async () => {
    output = '';
    const proc = spawn(NATS_SERVER, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-16 * 1024);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    running.add(proc);
    void exited.then(() => running.delete(proc));
    await waitForInfo(
      plan.port,
      10_000,
      () => proc.exitCode !== null || proc.signalCode !== null,
      () => output,
    );
  };
  const end = async (signal: NodeJS.Signals) => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
    child = undefined;
  };
  await start();
  return {
    name: plan.name,
    port: plan.port,
    url: `nats://127.0.0.1:${plan.port}`,
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
    start,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
  };
}

/**
 * One nats-server, with JetStream unless `jetstream: false`; with `account`,
 * clients must log in as NATS_TEST_USER (or one of the account's users) and
 * get the account's limits.
 */
export async function startNatsServer(
  options: { account?: NatsAccountOptions; jetstream?: boolean; tls?: { certFile: string; keyFile: string } } = {},
): Promise<NatsServer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'depot-nats-'));
  const node = await startNode(
    { name: 'single', port: await freePort(), storeDir: path.join(dataDir, 'js'), account: options.account, jetstream: options.jetstream, tls: options.tls },
    dataDir,
  );
  return Object.assign(node, {
    dataDir,
    destroy: async () => {
      await node.kill();
      await rm(dataDir, { recursive: true, force: true });
    },
  });
}

/** `size` nats-servers routed into one JetStream cluster on loopback; resolves once JetStream answers on every node. */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), 'depot-nats-cluster-'));
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const nodes = await Promise.all(
    ports.map((port, i) =>
      startNode(
        {
          name: `n${i + 1}`,
          port,
          clusterPort: clusterPorts[i],
          routes: clusterPorts.filter((_, j) => j !== i),
          storeDir: path.join(dir, `n${i + 1}`),
        },
        dir,
      ),
    ),
  );
  const cluster = {
    nodes,
    urls: nodes.map((n) => n.url),
    destroy: async () => {
      await Promise.all(nodes.map((n) => n.kill()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const node of nodes) await waitForJetStream(node.url, 30_000);
  } catch (error) {
    await cluster.destroy();
    throw error;
  }
  return cluster;
}

/** Waits until JetStream answers account info through `url` (a cluster has elected its meta leader). */
export async function waitForJetStream(url: string, timeoutMs: number, auth: { user?: string; pass?: string } = {}): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    let nc: NatsConnection | undefined;
    try {
      nc = await connect({ servers: url, timeout: 2000, reconnect: false, ...auth });
      const jsm = await jetstreamManager(nc, { timeout: 2000 });
      await jsm.getAccountInfo();
      return;
    } catch (error) {
      last = error;
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await nc?.close().catch(() => undefined);
    }
  }
  throw new Error(`JetStream did not answer at ${url} within ${timeoutMs} ms: ${String(last)}`);
}

/** Waits for the server's INFO line on its client port. */
async function waitForInfo(port: number, timeoutMs: number, gone: () => boolean, output: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (gone()) throw new Error(`nats-server on port ${port} exited: ${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('INFO'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nats-server on port ${port} did not start within ${timeoutMs} ms: ${output()}`);
}

const running = new Set<ChildProcess>();
// Should the test process go away, the servers it started go with it.
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** An admin connection and JetStream manager to a server (as the test, behind the driver's back). */
export async function adminConnection(
  servers: string | string[],
  auth: { user?: string; pass?: string } = {},
): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  // Reconnecting for as long as it takes: tests stop and start servers under it.
  const nc = await connect({ servers, timeout: 5000, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...auth });
  return { nc, jsm: await jetstreamManager(nc, { timeout: 5000 }) };
}

let buckets = 0;

/** A bucket name no other test of this process uses. */
export function uniqueBucket(label = 'depot'): string {
  buckets += 1;
  return `${label}-${process.pid}-${buckets}-${Date.now().toString(36)}`;
}

/** Settings of a nats driver against these servers. */
export function natsSettings(servers: string | string[], bucket: string, overrides: Record<string, unknown> = {}): NatsSettings {
  return natsSettingsSchema.parse({ type: 'nats', servers, bucket, timeoutMs: 5_000, ...overrides });
}
