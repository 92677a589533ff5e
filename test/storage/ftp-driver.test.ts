/**
 * FTP driver behaviour beyond the conformance suite, on real proftpd servers:
 * refused logins and untrusted certificates (`auth`, never echoing the
 * password), implicit FTPS and plain FTP, a server that goes away and comes
 * back under a running driver, the bound of the connection pool, retrieve
 * streams given up early, the sweep of dead writers' staging files, space
 * against a quota, and the whole path through the queue with a worker process.
 */
import { readFileSync } from 'node:fs';
import { chown, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { ArchivingManager } from '../../src/archiving/manager';
import { openSource } from '../../src/archiving/sources';
import { archiveKey, DepotError, newTaskId, toArchiveKey } from '../../src/contract';
import { ArchiveStore } from '../../src/storage/archive-store';
import { FtpDriver } from '../../src/storage/drivers/ftp';
import { silentLogger } from '../../src/support/logging';
import { adoptNodeErrorsInBasicFtp, ftpDriverSettings, FtpServer, startFtpServer } from '../helpers/ftp-server';
import {
  cleanupAll,
  digestFile,
  exitWithin,
  killAllWorkerProcesses,
  spawnWorkerProcess,
  TempDirs,
  WorkerProcess,
  writeConfigFile,
  writePatternFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { delay, Digest, digestOf, digestStream, KiB, MiB, patternBytes, patternSource } from '../helpers/streams';
import { failure } from '../helpers/depot-failure';

// Socket and TLS errors must look like errors to basic-ftp under jest (see the helper).
adoptNodeErrorsInBasicFtp();

const logger = silentLogger();
const temp = new TempDirs();
/** explicit FTPS (TLSRequired on): most tests; its own instance for the outage test, which stops it. */
let explicit: FtpServer;
let outageServer: FtpServer;
let implicit: FtpServer;
let plain: FtpServer;
const drivers: FtpDriver[] = [];

beforeAll(async () => {
  [explicit, outageServer, implicit, plain] = await Promise.all([
    startFtpServer({ tls: 'explicit' }),
    startFtpServer({ tls: 'explicit' }),
    startFtpServer({ tls: 'implicit' }),
    startFtpServer({ tls: 'off' }),
  ]);
}, 30_000);

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await cleanupAll(
    () => Promise.all(drivers.splice(0).map((d) => d.close())),
    () => explicit?.destroy(),
    () => outageServer?.destroy(),
    () => implicit?.destroy(),
    () => plain?.destroy(),
    () => temp.cleanup(),
  );
});

async function setup(server: FtpServer, overrides: Record<string, unknown> = {}) {
  const { ftpPath, diskPath } = await server.makeRoot();
  const settings = ftpDriverSettings(server, ftpPath, overrides);
  const driver = new FtpDriver('ftp', settings, logger);
  drivers.push(driver);
  return { driver, store: new ArchiveStore(driver, logger), diskPath };
}

function ref(name = 'exam.zip') {
  const taskId = newTaskId();
  return { key: archiveKey(new Date(), taskId, name), taskId, name };
}

/** Rejects when `promise` has not settled after `ms`: a hang fails with a message, not with the test timeout. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Stores `size` pseudo-random bytes with their sha256 and size declared, reads them back through the verifying stream. */
async function roundTrip(store: ArchiveStore, size: number, seed: string): Promise<{ key: string; digest: Digest }> {
  const r = ref(`${seed}.bin`);
  const bytes = patternBytes(size, seed);
  const digest = digestOf(bytes);
  const stored = await store.store({ ...r, body: Readable.from(size > 0 ? [bytes] : []), sha256: digest.sha256, size });
  expect(stored.created).toBe(true);
  expect(stored.manifest).toMatchObject({ key: r.key, name: r.name, size, sha256: digest.sha256 });
  const { manifest, stream } = await store.retrieve(r.key);
  expect(manifest).toEqual(stored.manifest);
  expect(await digestStream(stream)).toEqual(digest);
  return { key: r.key, digest };
}

/** Stores a streamed archive of `size` bytes (never one big buffer). */
async function storeLarge(store: ArchiveStore, size: number, seed: string): Promise<{ key: string; digest: Digest }> {
  const r = ref(`${seed}.bin`);
  const source = patternSource(size, seed);
  const stored = await store.store({ ...r, body: source.stream });
  expect(stored.manifest).toMatchObject({ size, sha256: source.sent().sha256 });
  return { key: r.key, digest: source.sent() };
}

/**
 * Local ports of this network namespace's ESTABLISHED TCP connections to
 * 127.0.0.1:`port`, client side: FTP control connections (data connections
 * go to other, passive ports). Read from /proc/net/tcp, which is cheap
 * enough to sample every few milliseconds.
 */
function controlConnections(port: number): Set<number> {
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const ports = new Set<number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, rem, state] = line.trim().split(/\s+/);
    if (state === '01' && rem === remote) ports.add(parseInt(local.split(':')[1], 16));
  }
  return ports;
}

/** Sizes of every file below `dir` on disk, sidecars and dot directories included. */
async function bytesOnDisk(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

describe('refused credentials and certificates → auth', () => {
  test('a wrong password: every operation fails with auth (not retried), and nothing carries the password', async () => {
    const wrong = `Wr0ng-${explicit.password}-x`;
    const { driver, store } = await setup(explicit, { password: wrong });
    const r = ref();
    const errors: DepotError[] = [];
    for (const operation of [
      () => store.store({ ...r, body: Readable.from([Buffer.from('never stored')]) }),
      () => store.stat(r.key),
      () => store.retrieve(r.key),
      () =>
        driver.store(
          toArchiveKey(r.key),
          {
            stream: Readable.from([Buffer.from('x')]),
            manifest: () => {
              throw new Error('not reached');
            },
            declared: {},
          },
          new AbortController().signal,
        ),
      () => driver.check(new AbortController().signal),
      async () => {
        for await (const m of store.list('')) void m;
      },
    ]) {
      errors.push(await failure(operation()));
    }
    const checked = await store.check();
    expect(checked).toMatchObject({ driver: 'ftp', ok: false, error: { code: 'auth' } });
    for (const error of errors) {
      expect(error.code).toBe('auth');
      expect(error.retryable).toBe(false);
      expect(error.message).toMatch(/530/);
    }
    for (const text of [...errors.flatMap((e) => [e.message, JSON.stringify(e), inspect(e, { depth: 5 }), String(e.stack)]), JSON.stringify(checked)]) {
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(explicit.password);
    }
  });

  test('an untrusted (self-signed) certificate: auth without caFile; accepted with rejectUnauthorized false', async () => {
    const strict = await setup(explicit, { caFile: undefined });
    const r = ref();
    const refused = await failure(strict.store.store({ ...r, body: Readable.from([Buffer.from('x')]) }));
    expect(refused.code).toBe('auth');
    expect(refused.retryable).toBe(false);
    expect(refused.message).toMatch(/DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED/);
    expect(await strict.store.check()).toMatchObject({ ok: false, error: { code: 'auth' } });
    expect((await failure(strict.store.stat(r.key))).code).toBe('auth');

    const lax = await setup(explicit, { caFile: undefined, rejectUnauthorized: false });
    await roundTrip(lax.store, 100 * KiB + 3, 'unverified');
    expect(await lax.store.check()).toMatchObject({ ok: true });
  });

  test('implicit FTPS: the same certificate refused from the first byte is auth too', async () => {
    const { store } = await setup(implicit, { secure: 'implicit', caFile: undefined });
    const error = await failure(store.stat(ref().key));
    expect({ code: error.code, retryable: error.retryable }).toEqual({ code: 'auth', retryable: false });
    expect(error.message).toMatch(/not trusted/);
  });
});

describe('the other transport modes', () => {
  test.each([
    ['implicit FTPS', () => implicit, 'implicit'],
    ['plain FTP', () => plain, false],
  ] as const)('%s: stores and reads back (sha256 verified), empty archives too', async (_mode, server, secure) => {
    expect(server().secure).toBe(secure);
    const { store, diskPath } = await setup(server(), { secure });
    const big = await roundTrip(store, 3 * MiB + 17, 'transport-big');
    await roundTrip(store, 0, 'transport-empty');
    await roundTrip(store, 1, 'transport-one');
    expect(digestOf(await readFile(path.join(diskPath, ...big.key.split('/'))))).toEqual(big.digest);
    expect(await readdir(path.join(diskPath, '.depot-tmp'))).toEqual([]);
    expect(await store.check()).toMatchObject({ ok: true });
  });
});

describe('a local source file (path and spool sources)', () => {
  const policy = { inlineBytes: MiB, timeoutMs: 10_000, maxDurationMs: 60_000, maxBytes: 1024 * MiB };
  /** Opens `file` as a store task's path source, exactly as the task runner does. */
  async function pathSource(file: string) {
    const source = await openSource({ path: file }, policy, new AbortController().signal);
    return { body: source.stream, file: source.file, sourceSize: source.totalBytes };
  }

  test.each([
    ['explicit FTPS', () => explicit, true],
    ['plain FTP', () => plain, false],
  ] as const)('%s: uploaded from the file, its stream never read; a size that is no whole number of chunks arrives whole', async (_mode, server, secure) => {
    const { store, diskPath } = await setup(server(), { secure });
    const file = path.join(await temp.make('depot-ftp-file-'), 'source.bin');
    const digest = await writePatternFile(file, 5 * MiB + 13, `file-${String(secure)}`);
    const source = await pathSource(file);
    const stored = await store.store({ ...ref('from-file.bin'), ...source });
    expect(source.body.readableDidRead).toBe(false);
    expect(stored.manifest).toMatchObject(digest);
    expect(await digestFile(path.join(diskPath, ...stored.manifest.key.split('/')))).toEqual(digest);
    expect(await readdir(path.join(diskPath, '.depot-tmp'))).toEqual([]);
  });

  test('aborted mid-upload: unavailable, nothing published, no staging file', async () => {
    const { store, diskPath } = await setup(explicit);
    const file = path.join(await temp.make('depot-ftp-file-'), 'source.bin');
    await writePatternFile(file, 64 * MiB, 'file-aborted');
    const controller = new AbortController();
    const r = ref('aborted.bin');
    const error = await failure(
      store.store({ ...r, ...(await pathSource(file)), signal: controller.signal, onBytes: (bytes) => bytes >= 4 * MiB && controller.abort() }),
    );
    expect(error.code).toBe('unavailable');
    expect(await store.stat(r.key)).toBeNull();
    expect(await readdir(path.join(diskPath, '.depot-tmp'))).toEqual([]);
  });
});

describe('server down and back', () => {
  const TIMEOUT_MS = 3000;

  /** The driver's control connections: those not open before it was made (the helper's readiness probe is). */
  function driverConnections(server: FtpServer, before: Set<number>): number[] {
    return [...controlConnections(server.port)].filter((p) => !before.has(p));
  }

  test('stopped → unavailable (retryable) within timeoutMs; restarted → the same driver stores and reads again', async () => {
    const probeOnly = controlConnections(outageServer.port);
    const { store } = await setup(outageServer, { timeoutMs: TIMEOUT_MS });
    const before = await roundTrip(store, 200 * KiB, 'before-outage');
    // The pool holds connections now; the stop kills their server side.
    expect(driverConnections(outageServer, probeOnly).length).toBeGreaterThanOrEqual(1);

    await outageServer.stop();
    try {
      // Pooled connections may still be open for a moment (proftpd's sessions outlive its master): they fail as unavailable too.
      const during = ref('during.zip');
      const operations: Array<[string, () => Promise<unknown>]> = [
        ['store', () => store.store({ ...during, body: Readable.from([Buffer.from('during')]) })],
        ['stat', () => store.stat(before.key)],
        ['retrieve', () => store.retrieve(before.key)],
        ['store again', () => store.store({ ...during, body: Readable.from([Buffer.from('during')]) })],
      ];
      for (const [what, operation] of operations) {
        const started = Date.now();
        const error = await within(TIMEOUT_MS + 5000, what, failure(operation()));
        const took = Date.now() - started;
        expect({ what, code: error.code, retryable: error.retryable, message: error.message }).toEqual({
          what,
          code: 'unavailable',
          retryable: true,
          message: expect.any(String),
        });
        expect(took).toBeLessThan(TIMEOUT_MS + 2000);
      }
      expect((await within(TIMEOUT_MS + 5000, 'check', store.check())).error?.code).toBe('unavailable');
    } finally {
      await outageServer.start(); // same port, same data
    }

    const after = await within(15_000, 'round trip after the restart', roundTrip(store, 300 * KiB, 'after-outage'));
    expect(after.digest.size).toBe(300 * KiB);
    const { stream } = await store.retrieve(before.key);
    expect(await digestStream(stream)).toEqual(before.digest);
  });

  test('stopped under a running retrieve: the stream fails unavailable (retryable); restarted → the same driver works', async () => {
    const { store } = await setup(outageServer, { timeoutMs: TIMEOUT_MS });
    const big = await storeLarge(store, 48 * MiB, 'cut-off');
    const { stream } = await store.retrieve(big.key); // held unread: the transfer waits on us
    await delay(100);
    await outageServer.stop();
    try {
      const started = Date.now();
      const error = await within(TIMEOUT_MS + 5000, 'the cut retrieve', failure(digestStream(stream)));
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 2000);
      // The control connection's FIN ("Server sent FIN packet unexpectedly") is the server going away.
      expect({ code: error.code, retryable: error.retryable, message: error.message }).toEqual({
        code: 'unavailable',
        retryable: true,
        message: expect.any(String),
      });
    } finally {
      await outageServer.start();
    }
    const { stream: again } = await within(10_000, 'retrieve after the restart', store.retrieve(big.key));
    expect(await within(20_000, 'reading after the restart', digestStream(again))).toEqual(big.digest);
  });
});

describe('connection pool', () => {
  test('maxConcurrent 2: 6 concurrent stores and retrieves all succeed; the server never sees more than 2 sessions of the driver', async () => {
    const existing = controlConnections(explicit.port); // the helper's readiness probe, and whatever else is open
    const { store } = await setup(explicit, { maxConcurrent: 2 });
    let most = 0;
    let samples = 0;
    const sample = () => {
      samples += 1;
      most = Math.max(most, [...controlConnections(explicit.port)].filter((p) => !existing.has(p)).length);
    };
    const sampler = setInterval(sample, 2);
    try {
      const sources = Array.from({ length: 6 }, (_, i) => ({
        r: ref(`pool-${i}.bin`),
        source: patternSource(2 * MiB + i, `pool-${i}`, { chunkSize: 256 * KiB }),
      }));
      const stored = await within(30_000, 'six stores', Promise.all(sources.map(({ r, source }) => store.store({ ...r, body: source.stream }))));
      expect(stored.map((s) => s.created)).toEqual([true, true, true, true, true, true]);
      sample();
      const read = await within(30_000, 'six retrieves', Promise.all(sources.map(async ({ r }) => digestStream((await store.retrieve(r.key)).stream))));
      expect(read).toEqual(sources.map(({ source }) => source.sent()));
      sample();
    } finally {
      clearInterval(sampler);
    }
    expect(samples).toBeGreaterThan(10);
    // Idle pooled connections stay open, so 2 is reached and seen; a pool that opened more would show them.
    expect(most).toBe(2);
  });

  test('maxConcurrent 2: with two retrieve streams held unread, a third operation waits until one of them is destroyed', async () => {
    const { store } = await setup(explicit, { maxConcurrent: 2 });
    const big = await storeLarge(store, 48 * MiB, 'held');
    const first = await store.retrieve(big.key);
    const second = await store.retrieve(big.key);
    let statDone = false;
    const statting = store.stat(big.key).then((m) => {
      statDone = true;
      return m;
    });
    await delay(600);
    expect(statDone).toBe(false);
    first.stream.destroy();
    expect(await within(5000, 'stat after a slot was freed', statting)).toMatchObject({ size: big.digest.size, sha256: big.digest.sha256 });
    // The other stream was paused all along (backpressure, not a stall): it reads to the end, verified.
    expect(await within(30_000, 'reading the held stream', digestStream(second.stream))).toEqual(big.digest);
  });

  test('maxConcurrent 1: a retrieve stream destroyed after one chunk of 20 MiB gives its connection back', async () => {
    const { store } = await setup(explicit, { maxConcurrent: 1 });
    const big = await storeLarge(store, 20 * MiB, 'given-up');
    const { stream } = await store.retrieve(big.key);
    const chunk = await within(
      10_000,
      'first chunk',
      new Promise<Buffer>((resolve, reject) => {
        stream.once('data', (data: Buffer) => resolve(data));
        stream.once('error', reject);
      }),
    );
    expect(chunk.length).toBeGreaterThan(0);
    stream.destroy();

    expect(await within(5000, 'stat after the destroy', store.stat(big.key))).toMatchObject({ size: big.digest.size });
    await within(10_000, 'round trip after the destroy', roundTrip(store, 64 * KiB, 'after-destroy'));
    // Given up the other way too: an async iterator left early (break) destroys the stream.
    for await (const piece of (await store.retrieve(big.key)).stream) {
      expect((piece as Buffer).length).toBeGreaterThan(0);
      break;
    }
    const { stream: whole } = await within(5000, 'retrieve after the break', store.retrieve(big.key));
    expect(await within(20_000, 'reading the whole archive', digestStream(whole))).toEqual(big.digest);
  });
});

describe('staging leftovers', () => {
  test("the first store sweeps this host's dead writers' files; live writers', other hosts' and foreign files stay", async () => {
    const { store, diskPath } = await setup(explicit);
    const staging = path.join(diskPath, '.depot-tmp');
    const owner = await stat(diskPath); // the FTP user
    await mkdir(staging);
    await chown(staging, owner.uid, owner.gid);
    const deadPid = 999_999; // above this kernel's pid_max, so never a live process
    expect(pidAlive(deadPid)).toBe(false);
    expect(pidAlive(process.ppid)).toBe(true);
    const dead = [`${hostname()}-${deadPid}-abcdef12.part`, `${hostname()}-${deadPid}-abcdef12.manifest`];
    const kept = [
      `other-host.example-${process.pid}-abcdef12.part`, // another host: its pids mean nothing here
      `${hostname()}-${process.ppid}-0badcafe.part`, // a live process of this host
      'README.txt', // not the driver's
    ];
    for (const name of [...dead, ...kept]) {
      await writeFile(path.join(staging, name), `leftover ${name}\n`);
      await chown(path.join(staging, name), owner.uid, owner.gid);
    }

    await roundTrip(store, 10 * KiB, 'sweeper');
    const until = Date.now() + 5000;
    let left = await readdir(staging);
    while (dead.some((name) => left.includes(name)) && Date.now() < until) {
      await delay(25);
      left = await readdir(staging);
    }
    expect(left.filter((name) => dead.includes(name))).toEqual([]);
    // The sweep may still be going through the listing: give it a moment to (wrongly) remove more.
    await store.stat(ref().key);
    await delay(300);
    expect((await readdir(staging)).sort()).toEqual([...kept].sort());
  });
});

describe('space', () => {
  test('without quotaBytes: nothing to report', async () => {
    const { driver, store } = await setup(explicit);
    expect(driver.capabilities.space).toBe(false);
    expect(await store.space()).toEqual({});
  });

  test('with quotaBytes: used is every file under the root (sidecars included), free the rest of the quota', async () => {
    const quota = 10 * MiB;
    const { driver, store, diskPath } = await setup(explicit, { quotaBytes: quota });
    expect(driver.capabilities.space).toBe(true);
    const archives = (await roundTrip(store, 300 * KiB + 1, 'space-one')).digest.size + (await roundTrip(store, 700 * KiB + 2, 'space-two')).digest.size;
    const used = await bytesOnDisk(diskPath);
    // Both archives and their two manifests (a few hundred bytes each); staging is empty again.
    expect(used - archives).toBeGreaterThan(200);
    expect(used - archives).toBeLessThan(4 * KiB);
    expect(await readdir(path.join(diskPath, '.depot-tmp'))).toEqual([]);
    expect(await store.space()).toEqual({ totalBytes: quota, usedBytes: used, freeBytes: quota - used });
  });
});

describe('through the queue: a worker process with an ftp driver', () => {
  let redis: RedisServer | undefined;
  let manager: ArchivingManager | undefined;
  let worker: WorkerProcess | undefined;

  afterAll(async () => {
    await cleanupAll(
      () => manager?.close(),
      () => killAllWorkerProcesses(),
      () => redis?.stop(),
    );
  });

  test('store from a path, retrieve to a path, check: ok; the password comes from the environment and never reaches the logs', async () => {
    redis = await startRedis();
    const work = await temp.make('depot-ftp-queue-');
    const { ftpPath, diskPath } = await explicit.makeRoot();
    const configFile = await writeConfigFile(work, {
      redis: { url: redis.url },
      queue: { attempts: 2, backoffMs: 50 },
      drivers: {
        ftp: {
          type: 'ftp',
          host: explicit.host,
          port: explicit.port,
          user: explicit.user,
          password: '${FTP_TEST_PASSWORD}',
          secure: true,
          caFile: explicit.caFile,
          root: ftpPath,
          timeoutMs: 10_000,
        },
      },
    });
    expect(await readFile(configFile, 'utf8')).not.toContain(explicit.password);
    worker = spawnWorkerProcess(configFile, { FTP_TEST_PASSWORD: explicit.password });
    manager = new ArchivingManager({ redisUrl: redis.url });

    const source = path.join(work, 'source.mbz');
    const digest = await writePatternFile(source, 512 * KiB + 5, 'queue-source');
    const stored = await (await manager.store({ path: source }, { name: 'course.mbz', metadata: { courseId: '7' } })).result(30_000);
    expect(stored).toMatchObject({
      ref: { driver: 'ftp' },
      name: 'course.mbz',
      size: digest.size,
      sha256: digest.sha256,
      driversTried: ['ftp'],
      failedOver: false,
    });
    expect(await digestFile(path.join(diskPath, ...stored.ref.key.split('/')))).toEqual(digest);

    const target = path.join(work, 'retrieved.mbz');
    const retrieved = await (await manager.retrieve(stored.ref, { path: target })).result(20_000);
    expect(retrieved).toMatchObject({ ref: stored.ref, size: digest.size, sha256: digest.sha256 });
    expect(await digestFile(target)).toEqual(digest);

    const checked = await (await manager.check('ftp')).result(20_000);
    expect(checked).toMatchObject({ driver: 'ftp', ok: true });
    expect(checked.error).toBeUndefined();

    worker.child.kill('SIGTERM');
    expect(await exitWithin(worker, 15_000)).toEqual({ code: 0, signal: null });
    const output = worker.output();
    expect(output).toContain('storage worker ready');
    expect(output).toContain(stored.ref.key); // the audit lines: the logs were really read
    expect(output).not.toContain(explicit.password);
  });
});
