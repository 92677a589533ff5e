import path from 'node:path';
import { Objm } from '@nats-io/obj';
import { natsSettingsSchema } from '../src/storage/drivers/nats';
import { digestOf, streamName } from '../src/storage/drivers/nats/layout';
import { adminConnection, startNatsServer } from '../test/helpers/nats-server';
import { BenchContext, startDepotRun, stopAll } from './context';
import { randomSource, SourceFile } from './large';
import type { NatsUploadRequest } from './nats-obj-uploader';
import { askScript, childPidsNamed, cpuSecondsOf, startNatsObjUploader, WorkerProcess } from './processes';
import { Producer } from './producer';
import { run } from './s3';
import { ComparisonFigures, MiB, recordRound, rotatedRounds, WARM_UP_BYTES } from './stats';

/** `serverCpu`: nats-server's. */
export interface NatsResult extends ComparisonFigures<NatsContender> {
  bytes: number;
  /** depot's default chunk size, which the obj client is given too. */
  chunkKiB: number;
  /** Seconds per run, paired by index. */
  depot: number[];
  obj: number[];
  /** VmHWM of the obj process, as depotIdleRss and depotPeakRss. */
  objIdleRss: number;
  objPeakRss: number[];
}

const CONTENDERS = ['depot', 'obj'] as const;
type NatsContender = (typeof CONTENDERS)[number];

/** Each contender's object store bucket (stream OBJ_<bucket>) on the one server. */
const BUCKETS: Record<NatsContender, string> = { depot: 'bench-depot', obj: 'bench-obj' };

/**
 * Measurement 9: the large-archive comparison on a NATS JetStream object store. One
 * nats-server (the test helper's: loopback, a free port, JetStream on a store directory
 * of its own; never the machine's shared server), one large random file from a `path`
 * source, stored by
 * (a) depot: a worker with a `nats` driver at its defaults, enqueue → completed;
 * (b) @nats-io/obj's `put` of `fs.createReadStream(file)` in a process of its own, as a script would do it.
 * Each into its own bucket; same chunk size; the untimed first store of each with a
 * smaller file; rotating order; every object's size and digest are checked after its
 * run and its bucket purged.
 */
export async function natsLargeArchive(ctx: BenchContext, runs: number, bytes: number): Promise<NatsResult> {
  const defaults = natsSettingsSchema.parse({ type: 'nats', servers: 'nats://127.0.0.1', bucket: BUCKETS.depot });
  const earlier = new Set(childPidsNamed('nats-server'));
  const server = await startNatsServer();
  ctx.scratch.adopt(server.dataDir);
  // nats-server's process, for its CPU time: the helper does not say, so it is found among this process's children.
  const serverPid = childPidsNamed('nats-server').find((pid) => !earlier.has(pid));
  const serverCpu = () => (serverPid === undefined ? Number.NaN : cpuSecondsOf(serverPid));
  let depot: Awaited<ReturnType<typeof startDepotRun>> | undefined;
  let uploader: WorkerProcess | undefined;
  let producer: Producer | undefined;
  let admin: Awaited<ReturnType<typeof adminConnection>> | undefined;
  try {
    // What an operator writes for one server without authentication; chunk size and timeout left at their defaults.
    depot = await startDepotRun(ctx, 'nats', { driver: { type: 'nats', servers: server.url, bucket: BUCKETS.depot } });
    const worker = depot.workers[0];
    uploader = await startNatsObjUploader([server.url, BUCKETS.obj, String(defaults.maxChunkBytes)], path.join(depot.dir, 'nats-obj.log'));
    const peer = uploader;
    admin = await adminConnection(server.url);
    const { nc, jsm } = admin;
    ctx.log(`  writing ${bytes / MiB} MiB of random bytes; nats-server (JetStream, file storage) on ${server.url}`);
    const large = await randomSource(path.join(depot.sources, 'large.bin'), bytes);
    const warmUp = await randomSource(path.join(depot.sources, 'warm-up.bin'), Math.min(bytes, WARM_UP_BYTES));
    producer = new Producer(ctx.redisUrl, depot.queue);
    await producer.listen();
    const p = producer;
    let uploads = 0;
    /** The object as the store describes it: its size and the store's own digest (which depot's manifest must match). */
    const expectStored = async (who: NatsContender, name: string, file: SourceFile) => {
      const info = await (await new Objm(nc).open(BUCKETS[who])).info(name);
      const digest = digestOf(file.sha256);
      if (info?.size !== file.bytes || info.digest !== digest)
        throw new Error(`${who}: ${name} holds ${info?.size ?? 'no'} bytes with digest ${info?.digest} on nats-server, expected ${file.bytes} and ${digest}`);
    };

    /** Each contender stores `file` once; its seconds, its CPU and nats-server's, once the object is checked; whose bucket to purge. */
    const once: Record<NatsContender, (file: SourceFile) => Promise<{ seconds: number; cpuSeconds: number; serverCpuSeconds: number; who: NatsContender }>> = {
      depot: async (file) => {
        const cpu = worker.cpuSeconds();
        const server = serverCpu();
        const start = performance.now();
        const { jobId, done } = await p.store({ path: file.path }, path.basename(file.path));
        const seconds = ((await done) - start) / 1000;
        const cpuSeconds = worker.cpuSeconds() - cpu;
        const serverCpuSeconds = serverCpu() - server;
        const { key, attempts } = await p.storedArchive(jobId, file);
        if (attempts !== 1) throw new Error(`depot: the store took ${attempts} attempts`);
        await expectStored('depot', key, file);
        return { seconds, cpuSeconds, serverCpuSeconds, who: 'depot' };
      },
      obj: async (file) => {
        const name = `obj-${++uploads}/${path.basename(file.path)}`;
        const cpu = peer.cpuSeconds();
        const server = serverCpu();
        const start = performance.now();
        await askScript(peer, { file: file.path, name } satisfies NatsUploadRequest, 'nats obj uploader');
        const seconds = (performance.now() - start) / 1000;
        const cpuSeconds = peer.cpuSeconds() - cpu;
        const serverCpuSeconds = serverCpu() - server;
        await expectStored('obj', name, file);
        return { seconds, cpuSeconds, serverCpuSeconds, who: 'obj' };
      },
    };
    // A contender's bucket is emptied right after its run (its stream purged: chunks and descriptions) and
    // written-back data flushed, so that nats-server's store stays small and its writeback does not land on the next contender.
    const settle = async (who: NatsContender) => {
      await jsm.streams.purge(streamName(BUCKETS[who]));
      await run('sync', []);
    };
    const result: NatsResult = {
      bytes,
      chunkKiB: defaults.maxChunkBytes / 1024,
      depot: [],
      obj: [],
      cpu: { depot: [], obj: [] },
      serverCpu: { depot: [], obj: [] },
      depotIdleRss: worker.peakRss(),
      depotPeakRss: [],
      objIdleRss: uploader.peakRss(),
      objPeakRss: [],
    };
    await rotatedRounds(
      CONTENDERS,
      runs,
      (who) => once[who](large),
      (measured) => settle(measured.who),
      (round, i) => {
        recordRound(result, CONTENDERS, round);
        result.depotPeakRss.push(worker.peakRss());
        result.objPeakRss.push(peer.peakRss());
        const figures = (who: NatsContender) =>
          `${(bytes / MiB / round[who].seconds).toFixed(0)} MiB/s (CPU ${round[who].cpuSeconds.toFixed(1)} s, nats-server ${round[who].serverCpuSeconds.toFixed(1)} s)`;
        ctx.log(`  nats run ${i + 1}: depot ${figures('depot')}, obj ${figures('obj')}; depot peak RSS ${(worker.peakRss() / MiB).toFixed(0)} MiB`);
      },
      (who) => once[who](warmUp),
    );
    // Every store's chunks were either published under a description or removed: after the purges, nothing is left.
    for (const who of CONTENDERS) {
      const left = (await jsm.streams.info(streamName(BUCKETS[who]))).state.messages;
      if (left > 0) throw new Error(`${left} messages left in ${who}'s bucket after its purge`);
    }
    return result;
  } finally {
    await producer?.close();
    await admin?.nc.close();
    await uploader?.stop();
    if (depot) await stopAll(depot.workers);
    await server.destroy();
    await ctx.scratch.remove(server.dataDir);
    if (depot) await ctx.scratch.remove(depot.dir);
  }
}
