import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection, Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { FTPContext } from 'basic-ftp';
import { freePort } from './redis-server';
import { ftpSettingsSchema, FtpSettings } from '../../src/storage/drivers/ftp';

/**
 * A real FTP server for tests: proftpd (Debian's proftpd-core + proftpd-mod-crypto)
 * in the foreground (`-n`), in its own process group, on a free 127.0.0.1 port,
 * with everything (config, virtual user, certificate, logs, pid and scoreboard,
 * the user's home) in one mkdtemp directory.
 *
 * - One virtual user (mod_auth_file, SHA-512-crypt hash of a random password).
 *   As root (our case and CI's) it maps to uid/gid 65534 and is chrooted into
 *   its home (`DefaultRoot ~`), so FTP paths look like `/<root>/...` and file
 *   permissions count. As a non-root developer proftpd cannot chroot or switch
 *   users (proftpd doc/howto/Nonroot.html): the user is you, there is no
 *   chroot, and FTP paths are the real absolute disk paths. `makeRoot` hides the
 *   difference: always use its `ftpPath`.
 * - Write-once as depot wants it: `AllowOverwrite off` (STOR and RNTO onto an
 *   existing name answer 550), `Umask 022 022`.
 * - TLS: `explicit` (default; AUTH TLS, `TLSRequired on`, so a plain login is
 *   refused), `implicit` (TLS from the first byte, `UseImplicitSSL`), or `off`
 *   (mod_tls not loaded: plain FTP only). The self-signed certificate (RSA,
 *   CN and IP SAN 127.0.0.1) is written in every mode; give `caFile` to the
 *   client to verify it.
 * - MLSD (mod_facts) is compiled in; passive data ports are kernel-chosen (no
 *   `PassivePorts`), so parallel servers never collide.
 *
 * A watchdog process (one per test process, only while servers are running)
 * SIGTERMs the servers' process groups when the test process goes away without
 * `destroy()` (a crashed or killed jest worker); a normal exit does it from an
 * `exit` hook. Only process groups this module started are ever signalled.
 */
export interface FtpServer {
  host: string;
  port: number;
  user: string;
  password: string;
  /** PEM of the self-signed certificate (CN/IP SAN 127.0.0.1), for the driver's `caFile`. */
  caFile: string;
  /** What to give basic-ftp's `secure`: true (explicit), 'implicit', or false. */
  secure: boolean | 'implicit';
  /** On-disk path of the FTP user's home (the chroot when running as root). */
  homeDir: string;
  /** A fresh, empty subdirectory for one driver instance: its FTP path ('/<name>') and its path on disk. */
  makeRoot(name?: string): Promise<{ ftpPath: string; diskPath: string }>;
  /** SIGTERM to the process group, SIGKILL after 5 s; keeps the data. */
  stop(): Promise<void>;
  /** Starts again on the same port and data (for outage tests). */
  start(): Promise<void>;
  /** Stops and removes everything it created. */
  destroy(): Promise<void>;
}

export interface FtpServerOptions {
  /** Default 'explicit' (with TLSRequired on). */
  tls?: 'explicit' | 'implicit' | 'off';
  /** `AllowOverwrite on`, as Debian's packaged config has it: STOR and RNTO replace existing files. Default off. */
  allowOverwrite?: boolean;
}

const PROFTPD = '/usr/sbin/proftpd';
const MOD_TLS = '/usr/lib/proftpd/mod_tls.so';
const HOST = '127.0.0.1';
const USER = 'depot';
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

/** proftpd and mod_tls.so are installed (apt: proftpd-core proftpd-mod-crypto). */
export function ftpServerAvailable(): boolean {
  return existsSync(PROFTPD) && existsSync(MOD_TLS);
}

// ---------------------------------------------------------------------------------------------
// Clean-up when the test process dies: process groups of servers that are running now.

const running = new Set<number>();
let watchdog: ChildProcess | undefined;
let exitHookInstalled = false;

/**
 * The watchdog reads "+<pgid> <temp dir>" / "-<pgid>" lines on stdin. When stdin
 * ends (the test process exited or was killed) it SIGTERMs each group still
 * listed whose leader is still a proftpd (pid reuse guard), SIGKILLs what is
 * left after 5 s, and removes those servers' temp dirs. It runs in its own
 * process group so a Ctrl-C on the terminal does not take it down before it
 * has done its job.
 */
const WATCHDOG = String.raw`
const fs = require('fs');
const groups = new Map(); // pgid -> temp dir
let buffer = '';
const isOurs = (pgid) => {
  try {
    const stat = fs.readFileSync('/proc/' + pgid + '/stat', 'utf8');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return comm === 'proftpd' && Number(fields[2]) === pgid;
  } catch { return false; }
};
// Some member of the group still runs (zombies waiting for their reaper do not count).
const alive = (pgid) => fs.readdirSync('/proc').some((entry) => {
  if (!/^[0-9]+$/.test(entry)) return false;
  try {
    const stat = fs.readFileSync('/proc/' + entry + '/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[2]) === pgid && fields[0] !== 'Z';
  } catch { return false; }
});
const signal = (pgid, sig) => { try { process.kill(-pgid, sig); } catch {} };
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  let i;
  while ((i = buffer.indexOf('\n')) >= 0) {
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 1);
    const space = line.indexOf(' ');
    const pgid = Number(space < 0 ? line.slice(1) : line.slice(1, space));
    if (!Number.isInteger(pgid) || pgid <= 1) continue;
    if (line[0] === '+') groups.set(pgid, space < 0 ? '' : line.slice(space + 1)); else groups.delete(pgid);
  }
});
process.stdin.on('end', () => {
  const targets = [...groups.keys()].filter(isOurs);
  for (const pgid of targets) signal(pgid, 'SIGTERM');
  const until = Date.now() + ${STOP_GRACE_MS};
  const timer = setInterval(() => {
    const left = targets.filter(alive);
    if (left.length === 0 || Date.now() > until) {
      for (const pgid of left) signal(pgid, 'SIGKILL');
      clearInterval(timer);
      for (const dir of groups.values()) {
        if (dir.includes('depot-proftpd-')) { try { fs.rmSync(dir, { recursive: true, force: true }); } catch {} }
      }
      process.exit(0);
    }
  }, 50);
});
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});
`;

function track(pgid: number, dir: string): void {
  running.add(pgid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const group of running) {
        try {
          process.kill(-group, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    });
  }
  if (!watchdog || watchdog.exitCode !== null || watchdog.signalCode !== null) {
    const dog = spawn(process.execPath, ['-e', WATCHDOG], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    dog.on('error', () => undefined);
    dog.stdin?.on('error', () => undefined);
    dog.unref();
    (dog.stdin as unknown as Socket | null)?.unref?.();
    watchdog = dog;
  }
  watchdog.stdin?.write(`+${pgid} ${dir}\n`);
}

function untrack(pgid: number): void {
  running.delete(pgid);
  if (!watchdog) return;
  watchdog.stdin?.write(`-${pgid}\n`);
  if (running.size === 0) {
    // Nothing left to guard: let it go (it exits at once with an empty list).
    watchdog.stdin?.end();
    watchdog = undefined;
  }
}

/** Some proftpd process still runs in this process group (a session child whose master is gone); zombies do not count. */
function proftpdGroupAlive(pgid: number): boolean {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (comm === 'proftpd' && Number(fields[2]) === pgid && fields[0] !== 'Z') return true;
    } catch {
      // exited meanwhile
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------

async function run(file: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
    child.stdin?.end(input ?? '');
  });
}

interface Identity {
  uid: number;
  gid: number;
  /** Non-root only: the `User`/`Group` directives (you). */
  userName?: string;
  groupName?: string;
  chroot: boolean;
}

function identity(): Identity {
  if (process.getuid?.() === 0) return { uid: 65534, gid: 65534, chroot: true };
  const me = userInfo();
  const groupName = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  return { uid: me.uid, gid: me.gid, userName: me.username, groupName, chroot: false };
}

function config(dir: string, port: number, tls: 'explicit' | 'implicit' | 'off', who: Identity, allowOverwrite: boolean): string {
  const lines = [
    'ServerType          standalone',
    'ServerName          "depot-test"',
    `Port                ${port}`,
    `DefaultAddress      ${HOST}`,
    'SocketBindTight     on',
    'UseIPv6             off',
    'UseReverseDNS       off',
    `PidFile             ${dir}/proftpd.pid`,
    `ScoreboardFile      ${dir}/proftpd.scoreboard`,
    'TransferLog         NONE',
    'WtmpLog             off',
    'MaxInstances        64',
    'DefaultTransferMode binary',
    '<IfModule mod_delay.c>',
    '  DelayEngine       off',
    '</IfModule>',
    '<IfModule mod_ctrls.c>',
    '  ControlsEngine    off',
    '</IfModule>',
    '<IfModule mod_lang.c>',
    '  UseEncoding       off',
    '</IfModule>',
    ...(who.userName ? [`User                ${who.userName}`, `Group               ${who.groupName}`] : []),
    'AuthOrder           mod_auth_file.c',
    `AuthUserFile        ${dir}/ftpd.passwd`,
    `AuthGroupFile       ${dir}/ftpd.group`,
    'RequireValidShell   off',
    ...(who.chroot ? ['DefaultRoot         ~'] : []),
    `AllowOverwrite      ${allowOverwrite ? 'on' : 'off'}`,
    'Umask               022 022',
  ];
  if (tls !== 'off') {
    lines.push(
      'ModulePath          /usr/lib/proftpd',
      'LoadModule          mod_tls.c',
      '<IfModule mod_tls.c>',
      '  TLSEngine         on',
      '  TLSRequired       on',
      '  TLSProtocol       TLSv1.2 TLSv1.3',
      `  TLSRSACertificateFile    ${dir}/cert.pem`,
      `  TLSRSACertificateKeyFile ${dir}/key.pem`,
      '  TLSVerifyClient   off',
      '  TLSRenegotiate    none',
      `  TLSLog            ${dir}/tls.log`,
      // Every TLSOptions on this one line: only the first TLSOptions directive counts.
      ...(tls === 'implicit' ? ['  TLSOptions        UseImplicitSSL'] : []),
      '</IfModule>',
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * Reads the server's greeting. On a 220 the connection is handed back still open:
 * the caller keeps it until stop(), because proftpd's master stops accepting for
 * ~400 ms whenever a session ends (SIGCHLD interrupts its select(2) and it sleeps
 * PR_TUNABLE_EINTR_RETRY_INTERVAL, 0.2 s, twice), and a closed probe would make the
 * first real login wait for that.
 */
async function banner(port: number, implicit: boolean, ca: Buffer): Promise<{ text: string | null; socket?: Socket }> {
  return new Promise((resolve) => {
    let text = '';
    let settled = false;
    const socket: Socket = implicit ? tlsConnect({ host: HOST, port, ca }) : createConnection({ host: HOST, port });
    const done = (value: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (value?.startsWith('220')) {
        socket.removeAllListeners('data');
        socket.on('error', () => undefined);
        socket.resume();
        socket.unref();
        resolve({ text: value, socket });
      } else {
        socket.destroy();
        resolve({ text: value });
      }
    };
    const timer = setTimeout(() => done(null), 1_000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) done(text);
    });
    socket.on('error', () => done(null));
    socket.on('close', () => done(text || null));
  });
}

async function tail(file: string, bytes = 4_000): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.length > bytes ? '…' + text.slice(-bytes) : text;
  } catch {
    return '(none)';
  }
}

let roots = 0;

/**
 * Jest runs each test file in its own vm context, so errors made by Node's core
 * (socket errors: ECONNRESET, ECONNREFUSED, TLS verification failures) are not
 * `instanceof Error` there (jestjs/jest#2549). basic-ftp tells errors from
 * replies with `res instanceof Error` (dist/transfer.js, dist/Client.js), so
 * under jest such an error is taken for a reply: a transfer whose data
 * socket fails never settles (the client is closed, the promise hangs until
 * the test times out), and `connect()` rejects with an FTPError whose `code`
 * is the errno string. Plain Node is not affected.
 *
 * This patches basic-ftp's FTPContext (of the calling test file's module
 * registry: jest gives each test file its own) to re-create such errors in the
 * test's realm before basic-ftp looks at them. Idempotent.
 */
export function adoptNodeErrorsInBasicFtp(): void {
  const proto = FTPContext.prototype as unknown as { _passToHandler(response: unknown): void; depotAdoptsErrors?: boolean };
  if (proto.depotAdoptsErrors) return;
  const original = proto._passToHandler;
  proto._passToHandler = function (this: unknown, response: unknown) {
    return original.call(this, adoptError(response));
  };
  proto.depotAdoptsErrors = true;
}

function adoptError(value: unknown): unknown {
  if (value instanceof Error || typeof value !== 'object' || value === null || Object.prototype.toString.call(value) !== '[object Error]') return value;
  const foreign = value as Error & Record<string, unknown>;
  const local = new Error(foreign.message);
  Object.assign(local, foreign); // code, errno, syscall, …
  local.name = foreign.name;
  local.stack = foreign.stack;
  return local;
}

export async function startFtpServer(options: FtpServerOptions = {}): Promise<FtpServer> {
  const tls = options.tls ?? 'explicit';
  if (!ftpServerAvailable()) {
    throw new Error(`proftpd is not installed (${PROFTPD} and ${MOD_TLS}); apt-get install --no-install-recommends proftpd-core proftpd-mod-crypto`);
  }
  const who = identity();
  const dir = await mkdtemp(path.join(tmpdir(), 'depot-proftpd-'));
  try {
    // mod_auth_file refuses auth files that are world-readable or in a world-writable directory.
    await chmod(dir, 0o711);
    const homeDir = path.join(dir, 'home');
    await mkdir(homeDir, { mode: 0o755 });
    await chmod(homeDir, 0o755);
    await chown(homeDir, who.uid, who.gid);

    const password = randomBytes(12).toString('base64url');
    const hash = (await run('openssl', ['passwd', '-6', '-stdin'], password + '\n')).trim();
    await writeFile(path.join(dir, 'ftpd.passwd'), `${USER}:${hash}:${who.uid}:${who.gid}::${homeDir}:/bin/false\n`, { mode: 0o600 });
    await writeFile(path.join(dir, 'ftpd.group'), `${USER}:x:${who.gid}:${USER}\n`, { mode: 0o600 });

    const caFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    // The key is written 0600 by openssl itself (it honours the umask only for the cert).
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-keyout',
      keyFile,
      '-out',
      caFile,
      '-subj',
      `/CN=${HOST}`,
      '-addext',
      `subjectAltName=IP:${HOST},DNS:localhost`,
    ]);
    await chmod(keyFile, 0o600);
    await chmod(caFile, 0o644);
    const ca = await readFile(caFile);
    const confFile = path.join(dir, 'proftpd.conf');
    const logFile = path.join(dir, 'proftpd.log');

    let port = 0;
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    let probe: Socket | undefined; // the readiness connection, held open until stop() (see banner())

    const launch = async (): Promise<{ ok: true } | { ok: false; inUse: boolean; detail: string }> => {
      await writeFile(confFile, config(dir, port, tls, who, options.allowOverwrite === true), { mode: 0o600 });
      const logStart = await stat(logFile).then(
        (st) => st.size,
        () => 0,
      );
      // With -n proftpd logs to stderr (SystemLog is not used): straight into the log file, appended across restarts.
      const log = openSync(logFile, 'a', 0o600);
      let proc: ChildProcess;
      try {
        proc = spawn(PROFTPD, ['-n', '-c', confFile], {
          detached: true, // own process group: stop() signals the master and its session children
          stdio: ['ignore', 'ignore', log],
          env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
        });
      } finally {
        closeSync(log);
      }
      // Listen before any await: 'spawn' and 'error' fire on the next tick.
      let stderr = '';
      let gone = false;
      const started = new Promise<boolean>((resolve) => {
        proc.once('spawn', () => resolve(true));
        proc.once('error', (error) => {
          stderr += String(error);
          resolve(false);
        });
      });
      exited = new Promise((resolve) => proc.once('exit', () => resolve()));
      void exited.then(() => {
        gone = true;
        if (proc.pid) untrack(proc.pid);
      });
      if (proc.pid) track(proc.pid, dir);
      const spawned = await started;
      if (!spawned) return { ok: false, inUse: false, detail: `cannot run ${PROFTPD}: ${stderr}` };
      proc.unref();
      child = proc;

      const until = Date.now() + START_TIMEOUT_MS;
      let greeting: string | null = null;
      while (!gone && Date.now() < until) {
        const answer = await banner(port, tls === 'implicit', ca);
        greeting = answer.text;
        if (answer.socket) {
          probe = answer.socket;
          return { ok: true };
        }
        if (!gone) await new Promise((r) => setTimeout(r, 25));
      }
      const diedEarly = gone;
      if (!gone) await stop();
      await exited;
      child = undefined;
      const output = (await readFile(logFile).catch(() => Buffer.alloc(0))).subarray(logStart).toString('utf8');
      const detail =
        `proftpd on ${HOST}:${port} ${diedEarly ? `exited (code ${proc.exitCode}, signal ${proc.signalCode})` : `gave no 220 banner within ${START_TIMEOUT_MS} ms (last answer: ${JSON.stringify(greeting)})`}` +
        `\nproftpd.log (its stderr):\n${output.length > 4_000 ? '…' + output.slice(-4_000) : output || '(empty)'}\ntls.log:\n${await tail(path.join(dir, 'tls.log'))}`;
      return { ok: false, inUse: /Address already in use/i.test(output), detail };
    };

    const stop = async (): Promise<void> => {
      const proc = child;
      if (!proc?.pid) return;
      const pgid = proc.pid;
      if (proc.exitCode === null && proc.signalCode === null) {
        try {
          process.kill(-pgid, 'SIGTERM');
        } catch {
          // already gone
        }
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_GRACE_MS))),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          try {
            process.kill(-pgid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        await exited;
      }
      // Session children the master did not take down (it normally does).
      if (proftpdGroupAlive(pgid)) {
        try {
          process.kill(-pgid, 'SIGKILL');
        } catch {
          // none left
        }
      }
      untrack(pgid);
      child = undefined;
      probe?.destroy();
      probe = undefined;
    };

    const start = async (): Promise<void> => {
      if (child && child.exitCode === null && child.signalCode === null) return; // running
      await stop(); // tidy up after a server that died by itself
      const result = await launch();
      if (!result.ok) throw new Error(result.detail);
    };

    // First start: a new free port each time the chosen one was taken in between.
    for (let attempt = 1; ; attempt += 1) {
      port = await freePort();
      const result = await launch();
      if (result.ok) break;
      if (!result.inUse || attempt >= 5) throw new Error(result.detail);
    }

    return {
      host: HOST,
      port,
      user: USER,
      password,
      caFile,
      secure: tls === 'explicit' ? true : tls === 'implicit' ? 'implicit' : false,
      homeDir,
      makeRoot: async (name?: string) => {
        roots += 1;
        const chosen = name ?? `root-${roots}-${randomBytes(4).toString('hex')}`;
        if (!chosen || chosen === '.' || chosen === '..' || chosen.includes('/') || chosen.includes('\0')) {
          throw new Error(`makeRoot: not a single path segment: ${JSON.stringify(chosen)}`);
        }
        const diskPath = path.join(homeDir, chosen);
        await mkdir(diskPath, { mode: 0o755 }); // fails if it exists: always fresh
        await chmod(diskPath, 0o755);
        await chown(diskPath, who.uid, who.gid);
        return { ftpPath: who.chroot ? `/${chosen}` : diskPath, diskPath };
      },
      stop,
      start,
      destroy: async () => {
        await stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The ftp driver's settings for a directory of this server, as an operator would write them (with the server's CA). */
export function ftpDriverSettings(server: FtpServer, root: string, overrides: Record<string, unknown> = {}): FtpSettings {
  return ftpSettingsSchema.parse({
    type: 'ftp',
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    secure: server.secure,
    caFile: server.caFile,
    root,
    timeoutMs: 10_000,
    ...overrides,
  });
}
