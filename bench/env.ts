import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ftpServerAvailable } from '../test/helpers/ftp-server';
import { NATS_SERVER } from '../test/helpers/nats-server';

/** What the figures were measured on; written at the top of docs/BENCHMARKS.md. */
export interface MachineFacts {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  redis: string;
  bullmq: string;
  ioredis: string;
  rclone: string;
  openssl: string;
  s3rver: string;
  libStorage: string;
  proftpd: string;
  basicFtp: string;
  curl: string;
  natsServer: string;
  natsObj: string;
  tmpdir: string;
  filesystem: string;
}

export const PROJECT_ROOT = path.resolve(__dirname, '..');

function commandExists(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** rclone is the peer for large archives: installed from Debian's package when missing. */
export function ensureRclone(log: (line: string) => void): void {
  if (commandExists('rclone')) return;
  log('rclone is missing: installing the Debian package (apt-get)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', 'rclone'], { env, stdio: 'inherit' }).status === 0;
  if (!install()) {
    // A fresh machine has no package lists yet.
    if (spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'inherit' }).status !== 0 || !install()) {
      throw new Error('cannot install rclone (apt-get install -y rclone failed)');
    }
  }
}

export function requireTools(): void {
  for (const tool of ['redis-server', 'openssl', 'cp', 'sync', 'rclone', 'curl', NATS_SERVER]) {
    if (!commandExists(tool)) throw new Error(`${tool} is needed by the benchmarks and is not installed`);
  }
  if (!ftpServerAvailable()) {
    throw new Error(
      'proftpd with mod_tls is needed by the benchmarks (7b) and is not installed: apt-get install --no-install-recommends proftpd-core proftpd-mod-crypto',
    );
  }
}

function packageVersion(name: string): string {
  const file = path.join(PROJECT_ROOT, 'node_modules', name, 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

export function machineFacts(): MachineFacts {
  const cpus = os.cpus();
  const mount = run('df', ['--output=fstype', os.tmpdir()]).split('\n').at(-1) ?? '?';
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    redis: /v=(\S+)/.exec(run('redis-server', ['--version']))?.[1] ?? '?',
    bullmq: packageVersion('bullmq'),
    ioredis: packageVersion('ioredis'),
    rclone: run('rclone', ['version'])
      .split('\n')[0]
      .replace(/^rclone\s+/, ''),
    openssl: run('openssl', ['version']),
    s3rver: packageVersion('s3rver'),
    libStorage: packageVersion('@aws-sdk/lib-storage'),
    proftpd: /Version (\S+)/.exec(run('/usr/sbin/proftpd', ['-v']))?.[1] ?? '?',
    basicFtp: packageVersion('basic-ftp'),
    curl: /^curl (\S+)/.exec(run('curl', ['--version']))?.[1] ?? '?',
    natsServer: /\bv(\d\S*)/.exec(run(NATS_SERVER, ['--version']))?.[1] ?? '?',
    natsObj: packageVersion('@nats-io/obj'),
    tmpdir: os.tmpdir(),
    filesystem: mount.trim(),
  };
}
