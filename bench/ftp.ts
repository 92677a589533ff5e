import { execFile } from 'node:child_process';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FtpServer, startFtpServer } from '../test/helpers/ftp-server';
import type { FtpUploadRequest } from './basic-ftp-uploader';
import { BenchContext, startDepotRun, stopAll } from './context';
import { sha256File } from './large';
import { askScript, childPidsNamed, startBasicFtpUploader, treeCpuSecondsOf, WorkerProcess } from './processes';
import { Producer } from './producer';
import { run, runCpu } from './s3';
import { writeRandomFile } from './scratch';
import { ComparisonFigures, MiB, recordRound, rotatedRounds } from './stats';

/** `serverCpu`: proftpd's master and every session process it forked (running or ended) during the run; NaN when its process was not found. */
export interface FtpResult extends ComparisonFigures<FtpContender> {
  bytes: number;
  /** Seconds per run, paired by index. */
  depot: number[];
  basicFtp: number[];
  rclone: number[];
  /** VmHWM of the basic-ftp process, as depotIdleRss and depotPeakRss. */
  basicFtpIdleRss: number;
  basicFtpPeakRss: number[];
}

/** The password reaches each contender through its own environment only, never through a file or an argument. */
const PASSWORD_ENV = 'BENCH_FTP_PASSWORD';
/** The rclone remote, defined by RCLONE_CONFIG_<NAME>_* variables. */
const REMOTE = 'benchftp';

const CONTENDERS = ['depot', 'basicFtp', 'rclone'] as const;
type FtpContender = (typeof CONTENDERS)[number];

/** The server of the measurement running now, for an interrupted run. */
let running: FtpServer | undefined;

/** Stops the benchmark's proftpd (its whole process group) and removes its files, if one is running. */
export async function destroyFtpServer(): Promise<void> {
  const server = running;
  running = undefined;
  await server?.destroy();
}

/** `rclone obscure`, the form its config takes a password in; read from stdin, so that it never shows in a process list. */
function obscure(password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('rclone', ['obscure', '-'], (error, stdout, stderr) =>
      error ? reject(new Error(`rclone obscure failed: ${stderr || error.message}`)) : resolve(stdout.trim()),
    );
    child.stdin?.end(password);
  });
}

/**
 * Measurement 7b: the large-archive comparison on FTP over explicit TLS. One proftpd
 * (the test helper's: loopback, a free port, AUTH TLS required, overwriting off, its
 * own temp directory), one large random file from a `path` source, stored by
 * (a) depot: a worker with an `ftp` driver at its defaults, enqueue → completed;
 * (b) basic-ftp's `uploadFrom(fs.createReadStream(file))` in a process of its own, as a script would do it;
 * (c) `rclone copyto` to the same server.
 * Each contender writes into a directory of its own; rotating order; every file is
 * checked on disk and deleted after its run.
 */
export async function ftpLargeArchive(ctx: BenchContext, runs: number, bytes: number): Promise<FtpResult> {
  const earlier = new Set(childPidsNamed('proftpd'));
  const server = await startFtpServer({ tls: 'explicit' });
  running = server;
  // The helper's temp directory (config, certificate, the user's home): removed with the others also when the run is interrupted.
  const serverDir = path.dirname(server.homeDir);
  ctx.scratch.adopt(serverDir);
  // proftpd's master process, for its CPU and that of its sessions: the helper does not say, so it is found among this process's children.
  const masterPid = childPidsNamed('proftpd').find((pid) => !earlier.has(pid));
  const serverCpu = () => (masterPid === undefined ? Number.NaN : treeCpuSecondsOf(masterPid));
  let depot: Awaited<ReturnType<typeof startDepotRun>> | undefined;
  let uploader: WorkerProcess | undefined;
  let producer: Producer | undefined;
  try {
    const roots = { depot: await server.makeRoot('depot'), basicFtp: await server.makeRoot('basic-ftp'), rclone: await server.makeRoot('rclone') };
    const password = { [PASSWORD_ENV]: server.password };
    depot = await startDepotRun(ctx, 'ftp', {
      env: password,
      // What an operator writes for an FTPS server with its own CA; connections and timeout left at their defaults.
      driver: {
        type: 'ftp',
        host: server.host,
        port: server.port,
        user: server.user,
        password: `\${${PASSWORD_ENV}}`,
        secure: true,
        caFile: server.caFile,
        root: roots.depot.ftpPath,
      },
    });
    const worker = depot.workers[0];
    uploader = await startBasicFtpUploader([server.host, String(server.port), server.user, server.caFile], password, path.join(depot.dir, 'basic-ftp.log'));
    const peer = uploader;
    const source = path.join(depot.sources, 'large.bin');
    ctx.log(`  writing ${bytes / MiB} MiB of random bytes; proftpd (explicit FTPS) on ${server.host}:${server.port}`);
    writeRandomFile(source, bytes);
    const expected = await sha256File(source);
    const rcloneConfig = path.join(depot.dir, 'rclone.conf');
    await writeFile(rcloneConfig, '');
    const remote = REMOTE.toUpperCase();
    const rcloneEnv: NodeJS.ProcessEnv = {
      ...process.env,
      [`RCLONE_CONFIG_${remote}_TYPE`]: 'ftp',
      [`RCLONE_CONFIG_${remote}_HOST`]: server.host,
      [`RCLONE_CONFIG_${remote}_PORT`]: String(server.port),
      [`RCLONE_CONFIG_${remote}_USER`]: server.user,
      [`RCLONE_CONFIG_${remote}_PASS`]: await obscure(server.password),
      [`RCLONE_CONFIG_${remote}_EXPLICIT_TLS`]: 'true',
      // rclone 1.60's ftp backend ignores --ca-cert (x509: certificate signed by unknown authority): it cannot verify this certificate.
      [`RCLONE_CONFIG_${remote}_NO_CHECK_CERTIFICATE`]: 'true',
    };
    // A failure must fail the run, not be retried behind the timing.
    const rcloneFlags = ['--config', rcloneConfig, '--retries=1'];
    producer = new Producer(ctx.redisUrl, depot.queue);
    await producer.listen();
    const p = producer;
    const up = uploader;
    let uploads = 0;
    const freshName = (who: string) => `${who}-${++uploads}.bin`;
    /** The file as the server wrote it: `relative` to a contender's root. */
    const expectSize = async (who: FtpContender, relative: string) => {
      const size = await stat(path.join(roots[who].diskPath, relative)).then(
        (s) => s.size,
        () => undefined,
      );
      if (size !== bytes) throw new Error(`${who}: ${relative} holds ${size ?? 'no'} bytes on proftpd's disk, expected ${bytes}`);
    };

    /** Each contender stores once; its seconds, its CPU and proftpd's, once the file is checked; what to delete. */
    const once: Record<FtpContender, () => Promise<{ seconds: number; cpuSeconds: number; serverCpuSeconds: number; remove: string }>> = {
      depot: async () => {
        const cpu = worker.cpuSeconds();
        const server = serverCpu();
        const start = performance.now();
        const { jobId, done } = await p.store({ path: source }, 'large.bin');
        const seconds = ((await done) - start) / 1000;
        const cpuSeconds = worker.cpuSeconds() - cpu;
        const serverCpuSeconds = serverCpu() - server;
        const { key, attempts } = await p.storedArchive(jobId, { bytes: bytes, sha256: expected });
        if (attempts !== 1) throw new Error(`depot: the store took ${attempts} attempts`);
        await expectSize('depot', key);
        // The task's directory (archive and manifest); the date directories stay, as they would in production.
        return { seconds, cpuSeconds, serverCpuSeconds, remove: path.join(roots.depot.diskPath, path.dirname(key)) };
      },
      basicFtp: async () => {
        const name = freshName('basic-ftp');
        const cpu = up.cpuSeconds();
        const server = serverCpu();
        const start = performance.now();
        await askScript(up, { file: source, remotePath: path.posix.join(roots.basicFtp.ftpPath, name) } satisfies FtpUploadRequest, 'basic-ftp uploader');
        const seconds = (performance.now() - start) / 1000;
        const cpuSeconds = up.cpuSeconds() - cpu;
        const serverCpuSeconds = serverCpu() - server;
        await expectSize('basicFtp', name);
        return { seconds, cpuSeconds, serverCpuSeconds, remove: path.join(roots.basicFtp.diskPath, name) };
      },
      rclone: async () => {
        const name = freshName('rclone');
        const server = serverCpu();
        const start = performance.now();
        const cpuSeconds = await runCpu('rclone', [...rcloneFlags, 'copyto', source, `${REMOTE}:${path.posix.join(roots.rclone.ftpPath, name)}`], rcloneEnv);
        const seconds = (performance.now() - start) / 1000;
        const serverCpuSeconds = serverCpu() - server;
        await expectSize('rclone', name);
        return { seconds, cpuSeconds, serverCpuSeconds, remove: path.join(roots.rclone.diskPath, name) };
      },
    };
    // Files are deleted (behind the server's back, on its disk) right after their run and written-back data
    // flushed, so that the server's directory stays small and its writeback does not land on the next contender.
    const settle = async (doomed: string) => {
      await rm(doomed, { recursive: true, force: true });
      await run('sync', []);
    };
    const result: FtpResult = {
      bytes,
      depot: [],
      basicFtp: [],
      rclone: [],
      cpu: { depot: [], basicFtp: [], rclone: [] },
      serverCpu: { depot: [], basicFtp: [], rclone: [] },
      depotIdleRss: worker.peakRss(),
      depotPeakRss: [],
      basicFtpIdleRss: uploader.peakRss(),
      basicFtpPeakRss: [],
    };
    await rotatedRounds(
      CONTENDERS,
      runs,
      (who) => once[who](),
      (measured) => settle(measured.remove),
      (round, i) => {
        recordRound(result, CONTENDERS, round);
        result.depotPeakRss.push(worker.peakRss());
        result.basicFtpPeakRss.push(peer.peakRss());
        const figures = (who: FtpContender) =>
          `${(bytes / MiB / round[who].seconds).toFixed(0)} MiB/s (CPU ${round[who].cpuSeconds.toFixed(1)} s, proftpd ${round[who].serverCpuSeconds.toFixed(1)} s)`;
        ctx.log(
          `  ftp run ${i + 1}: depot ${figures('depot')}, basic-ftp ${figures('basicFtp')}, rclone ${figures('rclone')}; depot peak RSS ${(worker.peakRss() / MiB).toFixed(0)} MiB`,
        );
      },
    );
    // depot removes its staging files before it reports a store: none may be left.
    const staged = await readdir(path.join(roots.depot.diskPath, '.depot-tmp')).catch(() => []);
    if (staged.length > 0) throw new Error(`depot left ${staged.length} staging files on proftpd: ${staged.join(', ')}`);
    return result;
  } finally {
    await producer?.close();
    await uploader?.stop();
    if (depot) await stopAll(depot.workers);
    await destroyFtpServer();
    await ctx.scratch.remove(serverDir);
    if (depot) await ctx.scratch.remove(depot.dir);
  }
}
