import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { s3SettingsSchema } from '../src/storage/drivers/s3';
import { S3RVER_CREDENTIALS, startS3Server } from '../test/helpers/s3-server';
import { BenchContext, startDepotRun, stopAll } from './context';
import { sha256File } from './large';
import type { UploadRequest } from './lib-storage-uploader';
import { askScript, childPids, cpuSecondsOf, startLibStorageUploader, WorkerProcess } from './processes';
import { Producer } from './producer';
import { writeRandomFile } from './scratch';
import { ComparisonFigures, MiB, recordRound, rotatedRounds } from './stats';

/** `serverCpu`: s3rver's. */
export interface S3Result extends ComparisonFigures<Contender> {
  bytes: number;
  /** depot's defaults, which lib-storage and rclone are given too. */
  partSizeMiB: number;
  queueSize: number;
  /** Seconds per run, paired by index. */
  depot: number[];
  libStorage: number[];
  rclone: number[];
  /** VmHWM of the lib-storage process, as depotIdleRss and depotPeakRss. */
  libStorageIdleRss: number;
  libStoragePeakRss: number[];
}

/** The credentials reach every contender through the environment, never through a file or an argument. */
const KEY_ENV = 'BENCH_S3_ACCESS_KEY_ID';
const SECRET_ENV = 'BENCH_S3_SECRET_ACCESS_KEY';
const BUCKET = 'bench';
/** The rclone remote, defined by RCLONE_CONFIG_<NAME>_* variables. */
const REMOTE = 'benchs3';

const CONTENDERS = ['depot', 'libStorage', 'rclone'] as const;
type Contender = (typeof CONTENDERS)[number];

export function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${command} failed: ${stderr || error.message}`)) : resolve(stdout),
    );
  });
}

/** Runs a command under bash and returns the CPU seconds it used (bash's `times`: user and system time of its children). */
export async function runCpu(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const out = await run('bash', ['-c', `${command} "$@" && times`, 'bash', ...args], env);
  const children = out.trim().split('\n').at(-1) ?? '';
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return seconds.length === 2 ? seconds[0] + seconds[1] : Number.NaN;
}

async function objectSize(client: S3Client, key: string): Promise<number | undefined> {
  const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  return head.ContentLength;
}

/**
 * Measurement 7: the large-archive comparison on S3. One s3rver (loopback, its own
 * temp directory), one large random file from a `path` source, stored by
 * (a) depot: a worker with an `s3` driver at its defaults, enqueue → completed;
 * (b) lib-storage's Upload of the same file in a process of its own, as a script would do it;
 * (c) `rclone copyto` to the same server.
 * Same part size and parallel parts for all three; rotating order; every object
 * is checked and deleted after its run.
 */
export async function s3LargeArchive(ctx: BenchContext, runs: number, bytes: number): Promise<S3Result> {
  const defaults = s3SettingsSchema.parse({ type: 's3', bucket: BUCKET, region: 'us-east-1' });
  const partSize = defaults.partSizeMiB * MiB;
  const earlier = new Set(childPids('s3rver'));
  const server = await startS3Server();
  ctx.scratch.adopt(server.dataDir);
  // s3rver's process, for its CPU time: the helper does not say, so it is found among this process's children.
  const serverPid = childPids('s3rver').find((pid) => !earlier.has(pid));
  const serverCpu = () => (serverPid === undefined ? Number.NaN : cpuSecondsOf(serverPid));
  const admin = server.client();
  let depot: Awaited<ReturnType<typeof startDepotRun>> | undefined;
  let uploader: WorkerProcess | undefined;
  let producer: Producer | undefined;
  try {
    await server.createBucket(BUCKET);
    const credentials = { [KEY_ENV]: S3RVER_CREDENTIALS.accessKeyId, [SECRET_ENV]: S3RVER_CREDENTIALS.secretAccessKey };
    depot = await startDepotRun(ctx, 's3', {
      env: credentials,
      // What an operator writes for an S3-compatible store; part size and queue size left at their defaults.
      driver: {
        type: 's3',
        bucket: BUCKET,
        region: 'us-east-1',
        endpoint: server.endpoint,
        forcePathStyle: true,
        checksums: 'when_required',
        accessKeyId: `\${${KEY_ENV}}`,
        secretAccessKey: `\${${SECRET_ENV}}`,
      },
    });
    const worker = depot.workers[0];
    uploader = await startLibStorageUploader(
      [server.endpoint, BUCKET, String(partSize), String(defaults.queueSize)],
      credentials,
      path.join(depot.dir, 'lib-storage.log'),
    );
    const peer = uploader;
    const source = path.join(depot.sources, 'large.bin');
    ctx.log(`  writing ${bytes / MiB} MiB of random bytes; s3rver on ${server.endpoint}`);
    writeRandomFile(source, bytes);
    const expected = await sha256File(source);
    const rcloneConfig = path.join(depot.dir, 'rclone.conf');
    await writeFile(rcloneConfig, '');
    // Without the machine's AWS_* settings: rclone 1.60 fails on AWS_CA_BUNDLE even for a plain http endpoint.
    const rcloneEnv: NodeJS.ProcessEnv = {
      ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_'))),
      [`RCLONE_CONFIG_${REMOTE.toUpperCase()}_TYPE`]: 's3',
      [`RCLONE_CONFIG_${REMOTE.toUpperCase()}_PROVIDER`]: 'Other',
      [`RCLONE_CONFIG_${REMOTE.toUpperCase()}_ENDPOINT`]: server.endpoint,
      [`RCLONE_CONFIG_${REMOTE.toUpperCase()}_REGION`]: 'us-east-1',
      [`RCLONE_CONFIG_${REMOTE.toUpperCase()}_FORCE_PATH_STYLE`]: 'true',
      [`RCLONE_CONFIG_${REMOTE.toUpperCase()}_ACCESS_KEY_ID`]: credentials[KEY_ENV],
      [`RCLONE_CONFIG_${REMOTE.toUpperCase()}_SECRET_ACCESS_KEY`]: credentials[SECRET_ENV],
    };
    const rcloneFlags = [
      '--config',
      rcloneConfig,
      // Multipart above one part, in depot's part size, as many parts in flight as depot.
      `--s3-upload-cutoff=${defaults.partSizeMiB}Mi`,
      `--s3-chunk-size=${defaults.partSizeMiB}Mi`,
      `--s3-upload-concurrency=${defaults.queueSize}`,
      '--s3-no-check-bucket',
      // A failure must fail the run, not be retried behind the timing.
      '--retries=1',
    ];
    producer = new Producer(ctx.redisUrl, depot.queue);
    await producer.listen();
    const p = producer;
    const up = uploader;
    let uploads = 0;
    const freshKey = (who: string) => `${who}/${++uploads}/large.bin`;
    const expectSize = async (key: string, who: string) => {
      const size = await objectSize(admin, key);
      if (size !== bytes) throw new Error(`${who}: ${key} holds ${size} bytes on s3rver, expected ${bytes}`);
    };

    /** Each contender stores once; its seconds, its CPU and s3rver's, once the object is checked; the keys to delete. */
    const once: Record<Contender, () => Promise<{ seconds: number; cpuSeconds: number; serverCpuSeconds: number; keys: string[] }>> = {
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
        await expectSize(key, 'depot');
        return { seconds, cpuSeconds, serverCpuSeconds, keys: [key, `${key}.depot.json`] };
      },
      libStorage: async () => {
        const key = freshKey('lib-storage');
        const cpu = up.cpuSeconds();
        const server = serverCpu();
        const start = performance.now();
        await askScript(up, { file: source, key } satisfies UploadRequest, 'lib-storage uploader');
        const seconds = (performance.now() - start) / 1000;
        const cpuSeconds = up.cpuSeconds() - cpu;
        const serverCpuSeconds = serverCpu() - server;
        await expectSize(key, 'lib-storage');
        return { seconds, cpuSeconds, serverCpuSeconds, keys: [key] };
      },
      rclone: async () => {
        const key = freshKey('rclone');
        const server = serverCpu();
        const start = performance.now();
        const cpuSeconds = await runCpu('rclone', [...rcloneFlags, 'copyto', source, `${REMOTE}:${BUCKET}/${key}`], rcloneEnv);
        const seconds = (performance.now() - start) / 1000;
        const serverCpuSeconds = serverCpu() - server;
        await expectSize(key, 'rclone');
        return { seconds, cpuSeconds, serverCpuSeconds, keys: [key] };
      },
    };
    // Objects are deleted right after their run and written-back data flushed, so that
    // s3rver's data directory stays small and its writeback does not land on the next contender.
    const settle = async (keys: string[]) => {
      for (const key of keys) await admin.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      await run('sync', []);
    };
    const result: S3Result = {
      bytes,
      partSizeMiB: defaults.partSizeMiB,
      queueSize: defaults.queueSize,
      depot: [],
      libStorage: [],
      rclone: [],
      cpu: { depot: [], libStorage: [], rclone: [] },
      serverCpu: { depot: [], libStorage: [], rclone: [] },
      depotIdleRss: worker.peakRss(),
      depotPeakRss: [],
      libStorageIdleRss: uploader.peakRss(),
      libStoragePeakRss: [],
    };
    await rotatedRounds(
      CONTENDERS,
      runs,
      (who) => once[who](),
      (measured) => settle(measured.keys),
      (round, i) => {
        recordRound(result, CONTENDERS, round);
        result.depotPeakRss.push(worker.peakRss());
        result.libStoragePeakRss.push(peer.peakRss());
        const figures = (who: Contender) =>
          `${(bytes / MiB / round[who].seconds).toFixed(0)} MiB/s (CPU ${round[who].cpuSeconds.toFixed(1)} s, s3rver ${round[who].serverCpuSeconds.toFixed(1)} s)`;
        ctx.log(
          `  s3 run ${i + 1}: depot ${figures('depot')}, lib-storage ${figures('libStorage')}, rclone ${figures('rclone')}; depot peak RSS ${(worker.peakRss() / MiB).toFixed(0)} MiB`,
        );
      },
    );
    const left = await admin.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    if ((left.Uploads ?? []).length > 0) throw new Error(`${left.Uploads?.length} multipart uploads left on s3rver`);
    return result;
  } finally {
    await producer?.close();
    await uploader?.stop();
    if (depot) await stopAll(depot.workers);
    await server.destroy();
    await ctx.scratch.remove(server.dataDir);
    if (depot) await ctx.scratch.remove(depot.dir);
  }
}
