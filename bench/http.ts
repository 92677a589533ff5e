import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { newTaskId } from '../src/contract';
import { jobIdFor } from '../src/queue/names';
import { freePort } from '../test/helpers/redis-server';
import { BenchContext, startDepotRun, stopAll } from './context';
import { randomSource, SourceFile } from './large';
import { startDepotServe, startFsyncHttpServer, treeCpuSecondsOf, WorkerProcess } from './processes';
import { Producer } from './producer';
import { run, runCpu } from './s3';
import { MiB, rotatedRounds, WARM_UP_BYTES } from './stats';

export interface HttpResult {
  bytes: number;
  /** Seconds per run, paired by index: curl's start to the archive stored (depot), to the server's answer (peer). */
  depot: number[];
  peer: number[];
  /** depot's share of its seconds until serve answered 202 (the file spooled, hashed, fsynced; the task queued). */
  depotUpload: number[];
  /** The worker's attempts per counted store: 2 when it looked for the spool file before serve had moved it there (CONTRACT §9), and retried. */
  depotAttempts: number[];
  /** CPU seconds (user + system) per counted run of the receiving side: depot serve and worker (with its `cp`), the peer's server. */
  cpu: Record<HttpContender, number[]>;
  /** The serve process's part of depot's. */
  serveCpu: number[];
  /** curl's own, sending to each. */
  curlCpu: Record<HttpContender, number[]>;
  /** VmHWM before the first upload, and after each round (peak RSS only grows): depot serve, depot worker, the peer's server. */
  serveIdleRss: number;
  servePeakRss: number[];
  workerIdleRss: number;
  workerPeakRss: number[];
  peerIdleRss: number;
  peerPeakRss: number[];
}

const CONTENDERS = ['depot', 'peer'] as const;
type HttpContender = (typeof CONTENDERS)[number];

/** The bearer token reaches depot serve through its environment, and curl through a descriptor bash fills: never a file or an argument. */
const TOKEN_ENV = 'BENCH_HTTP_TOKEN';
/** curl for depot, with the token header read from a process substitution (`printf` is bash's builtin: no process list shows it). */
const CURL_WITH_TOKEN = `curl -H @<(printf 'Authorization: Bearer %s\\n' "$${TOKEN_ENV}")`;
/** Both uploads: quiet but for errors, an HTTP error fails the run, never through a proxy. */
const CURL_FLAGS = ['-sS', '--fail-with-body', '--noproxy', '*'];

interface Measured {
  seconds: number;
  /** depot only: until serve's answer. */
  uploadSeconds: number;
  /** depot only: the worker's attempts. */
  attempts: number;
  cpuSeconds: number;
  serveCpuSeconds: number;
  curlCpuSeconds: number;
  /** What to delete once the run is checked. */
  remove: string;
}

/** The worker's log lines about the retries of a task's store (JSON lines; the errors' messages). */
async function retriesLogged(logFile: string, taskId: string): Promise<string> {
  const lines = (await readFile(logFile, 'utf8')).split('\n').filter((line) => line.includes(taskId) && line.includes('retrying'));
  return lines.map((line) => (JSON.parse(line) as { message?: string; error?: { message?: string } }).error?.message ?? line).join('; ') || '(not logged)';
}

/**
 * Measurement 8: a large upload over HTTP to a stored archive. One file of random bytes,
 * sent by curl on 127.0.0.1 to
 * (a) depot: `depot serve` and a `depot worker` on one config (a filesystem driver, the spool
 *     beside its root on the same filesystem): a multipart `POST /v1/tasks` (part `task`, part
 *     `file`), timed until the task's completion event (the archive stored, fsynced, hashed and
 *     catalogued), its answer and result checked;
 * (b) a minimal Node HTTP server in a process of its own (bench/fsync-http-server.ts) that writes the
 *     body of `curl -T` to a file and fsyncs it before answering.
 * The untimed first upload of each with a smaller file; rotating order; every file is
 * checked on disk and deleted after its run.
 */
export async function httpUpload(ctx: BenchContext, runs: number, bytes: number): Promise<HttpResult> {
  const token = randomBytes(24).toString('hex');
  const tokenEnv = { [TOKEN_ENV]: token };
  const [depotPort, peerPort] = [await freePort(), await freePort()];
  let depot: Awaited<ReturnType<typeof startDepotRun>> | undefined;
  let serve: WorkerProcess | undefined;
  let server: WorkerProcess | undefined;
  let producer: Producer | undefined;
  try {
    // What an operator writes for serve beside its worker: the spool next to the archive root (the embedded default's layout).
    depot = await startDepotRun(ctx, 'http', {
      env: tokenEnv,
      http: { host: '127.0.0.1', port: depotPort, spoolDir: './spool', tokens: [`\${${TOKEN_ENV}}`] },
    });
    const worker = depot.workers[0];
    const { root, dir } = depot;
    const spoolDir = path.join(dir, 'spool');
    serve = await startDepotServe(depot.configFile, path.join(dir, 'serve.log'), ctx.nodeArgs, tokenEnv);
    const peerDir = path.join(dir, 'peer');
    await mkdir(peerDir);
    server = await startFsyncHttpServer([peerDir, String(peerPort)], path.join(dir, 'fsync-http-server.log'));
    const depotServe = serve;
    const peerServer = server;
    ctx.log(`  writing ${bytes / MiB} MiB of random bytes; depot serve on 127.0.0.1:${depotPort}, the fsync server on 127.0.0.1:${peerPort}`);
    const large = await randomSource(path.join(depot.sources, 'large.bin'), bytes);
    const warmUp = await randomSource(path.join(depot.sources, 'warm-up.bin'), Math.min(bytes, WARM_UP_BYTES));
    producer = new Producer(ctx.redisUrl, depot.queue);
    await producer.listen();
    const p = producer;
    const taskFile = path.join(dir, 'task.json');
    const answerFile = path.join(dir, 'answer.json');
    const curlEnv = { ...process.env, ...tokenEnv };
    let uploads = 0;
    const expectSize = async (who: HttpContender, file: string, bytes: number) => {
      const size = await stat(file).then(
        (s) => s.size,
        () => undefined,
      );
      if (size !== bytes) throw new Error(`${who}: ${file} holds ${size ?? 'no'} bytes, expected ${bytes}`);
    };

    /** Each contender receives `file` once; its seconds and CPU, once the copy is checked; what to delete. */
    const once: Record<HttpContender, (file: SourceFile) => Promise<Measured>> = {
      depot: async (file) => {
        const taskId = newTaskId();
        const jobId = jobIdFor(taskId);
        await writeFile(taskFile, JSON.stringify({ operation: 'store', task: { taskId, name: path.basename(file.path) } }));
        // Listened for before the upload starts: the completion may come before curl has ended.
        const done = p.completion(jobId);
        const cpu = { serve: depotServe.cpuSeconds(), worker: treeCpuSecondsOf(worker.pid) };
        const start = performance.now();
        const form = ['-F', `task=<${taskFile};type=application/json`, '-F', `file=@${file.path};type=application/octet-stream`];
        const curlCpuSeconds = await runCpu(CURL_WITH_TOKEN, [...CURL_FLAGS, '-o', answerFile, ...form, `http://127.0.0.1:${depotPort}/v1/tasks`], curlEnv);
        const uploadSeconds = (performance.now() - start) / 1000;
        const seconds = ((await done) - start) / 1000;
        const serveCpuSeconds = depotServe.cpuSeconds() - cpu.serve;
        const cpuSeconds = serveCpuSeconds + treeCpuSecondsOf(worker.pid) - cpu.worker;
        const answer = JSON.parse(await readFile(answerFile, 'utf8')) as { taskId?: string; size?: number; sha256?: string };
        if (answer.taskId !== taskId || answer.size !== file.bytes || answer.sha256 !== file.sha256)
          throw new Error(`depot serve: unexpected answer ${JSON.stringify(answer)}, expected sha256 ${file.sha256}`);
        // A worker that takes the task before serve has moved the file into the spool retries after its backoff: part of the figure, and counted.
        const { key, attempts } = await p.storedArchive(jobId, file);
        if (attempts > 1) ctx.log(`  depot: the store took ${attempts} attempts: ${await retriesLogged(worker.logFile, taskId)}`);
        await expectSize('depot', path.join(root, key), file.bytes);
        // The task's directory (archive and manifest); the date directories stay, as they would in production.
        return { seconds, uploadSeconds, attempts, cpuSeconds, serveCpuSeconds, curlCpuSeconds, remove: path.join(root, path.dirname(key)) };
      },
      peer: async (file) => {
        const name = `peer-${++uploads}.bin`;
        const cpu = peerServer.cpuSeconds();
        const start = performance.now();
        const curlCpuSeconds = await runCpu('curl', [...CURL_FLAGS, '-o', '/dev/null', '-T', file.path, `http://127.0.0.1:${peerPort}/${name}`], process.env);
        const seconds = (performance.now() - start) / 1000;
        const cpuSeconds = peerServer.cpuSeconds() - cpu;
        await expectSize('peer', path.join(peerDir, name), file.bytes);
        return { seconds, uploadSeconds: seconds, attempts: 1, cpuSeconds, serveCpuSeconds: 0, curlCpuSeconds, remove: path.join(peerDir, name) };
      },
    };
    // Files are deleted right after their run, serve's removal of the spool file (on the completion event) is
    // waited for, and written-back data flushed, so that no writeback or freeing of blocks lands on the next contender.
    const settle = async (doomed: string) => {
      await rm(doomed, { recursive: true, force: true });
      const until = Date.now() + 10_000;
      for (;;) {
        const left = (await readdir(spoolDir).catch(() => [] as string[])).filter((entry) => entry !== 'incoming');
        left.push(...(await readdir(path.join(spoolDir, 'incoming')).catch(() => [] as string[])));
        if (left.length === 0) break;
        if (Date.now() > until) throw new Error(`depot serve left ${left.length} spool files: ${left.join(', ')}`);
        await sleep(20);
      }
      await run('sync', []);
    };
    const result: HttpResult = {
      bytes,
      depot: [],
      peer: [],
      depotUpload: [],
      depotAttempts: [],
      cpu: { depot: [], peer: [] },
      serveCpu: [],
      curlCpu: { depot: [], peer: [] },
      serveIdleRss: serve.peakRss(),
      servePeakRss: [],
      workerIdleRss: worker.peakRss(),
      workerPeakRss: [],
      peerIdleRss: server.peakRss(),
      peerPeakRss: [],
    };
    await rotatedRounds(
      CONTENDERS,
      runs,
      (who) => once[who](large),
      (measured) => settle(measured.remove),
      (round, i) => {
        for (const who of CONTENDERS) {
          result[who].push(round[who].seconds);
          result.cpu[who].push(round[who].cpuSeconds);
          result.curlCpu[who].push(round[who].curlCpuSeconds);
        }
        result.depotUpload.push(round.depot.uploadSeconds);
        result.depotAttempts.push(round.depot.attempts);
        result.serveCpu.push(round.depot.serveCpuSeconds);
        result.servePeakRss.push(depotServe.peakRss());
        result.workerPeakRss.push(worker.peakRss());
        result.peerPeakRss.push(peerServer.peakRss());
        const rate = (seconds: number) => `${(bytes / MiB / seconds).toFixed(0)} MiB/s`;
        const d = round.depot;
        ctx.log(
          `  http run ${i + 1}: depot ${rate(d.seconds)} (upload ${d.uploadSeconds.toFixed(1)} s of ${d.seconds.toFixed(1)} s; CPU serve ${d.serveCpuSeconds.toFixed(1)} s, ` +
            `worker ${(d.cpuSeconds - d.serveCpuSeconds).toFixed(1)} s, curl ${d.curlCpuSeconds.toFixed(1)} s), ` +
            `fsync server ${rate(round.peer.seconds)} (CPU ${round.peer.cpuSeconds.toFixed(1)} s, curl ${round.peer.curlCpuSeconds.toFixed(1)} s); ` +
            `peak RSS serve ${(depotServe.peakRss() / MiB).toFixed(0)} MiB, worker ${(worker.peakRss() / MiB).toFixed(0)} MiB`,
        );
      },
      (who) => once[who](warmUp),
    );
    return result;
  } finally {
    await producer?.close();
    await server?.stop();
    await serve?.stop();
    if (depot) await stopAll(depot.workers);
    if (depot) await ctx.scratch.remove(depot.dir);
  }
}
