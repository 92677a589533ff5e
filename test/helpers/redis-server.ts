import { ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A private redis-server on a free loopback port, so tests never share state. */
export interface RedisServer {
  port: number;
  url: string;
  /** SIGKILL, as a crash would, then the same server again on the same port and directory (its AOF, if any, read back). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Append-only file, fsynced on every write (`appendfsync always`): nothing acknowledged is lost to a crash. */
  aof?: boolean;
}

/**
 * Ports handed out already in this test file: the kernel may offer a port it
 * just offered again, and servers started together (a cluster's six nodes)
 * then got the same one (seen in CI: mkdir EEXIST for the second node).
 */
const handedOut = new Set<number>();

/** A loopback port no server listens on now, and not handed out before in this test file. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await unusedPort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startRedis(port?: number, options: RedisServerOptions = {}): Promise<RedisServer> {
  const chosen = port ?? (await freePort());
  const dir = await mkdtemp(path.join(tmpdir(), 'depot-redis-'));
  const persistence = options.aof ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  let server = await spawnRedis(chosen, ['--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir, '--maxmemory-policy', 'noeviction']);
  return {
    port: chosen,
    url: `redis://127.0.0.1:${chosen}`,
    restart: async () => {
      await server.kill();
      server = await spawnRedis(chosen, ['--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir, '--maxmemory-policy', 'noeviction']);
    },
    stop: async () => {
      await server.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisProcess {
  child: ChildProcess;
  /** SIGKILL unless it already exited; resolves once it is gone. */
  kill(): Promise<void>;
}

/** `redis-server ARGS --port PORT` (or a config file first), ready once it answers PING. */
export async function spawnRedis(port: number, args: string[], configFile?: string): Promise<RedisProcess> {
  const child: ChildProcess = spawn('redis-server', [...(configFile ? [configFile] : []), '--port', String(port), ...args], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  try {
    await waitForPort(port, 5_000);
  } catch (error) {
    await kill();
    throw error;
  }
  return { child, kill };
}

export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' }, () => {
        socket.write('PING\r\n');
      });
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`redis-server on port ${port} did not start within ${timeoutMs} ms`);
}
