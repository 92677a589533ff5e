import type { CrashResult, CrashSettings, StallResult } from './crash';
import type { MachineFacts } from './env';
import type { FtpResult } from './ftp';
import type { HttpResult } from './http';
import type { LargeResult } from './large';
import type { MemoryResult } from './memory';
import type { NatsResult } from './nats';
import type { S3Result } from './s3';
import type { LatencyRun, ScalingResult, SmallResult } from './small';
import { fmt, fmtSpread, GiB, median, MiB, pairedRatios, WARM_UP_BYTES } from './stats';

export interface BenchResults {
  facts: MachineFacts;
  startedAt: Date;
  minutes: number;
  loadBefore: number[];
  loadAfter: number[];
  large: LargeResult;
  /** Measurement 1 again, with the machine's other core kept busy. */
  largeBusy: LargeResult;
  memory: MemoryResult;
  small: SmallResult;
  latency: LatencyRun[];
  scaling: ScalingResult;
  crash: CrashResult[];
  stalls: StallResult;
  s3: S3Result;
  ftp: FtpResult;
  http: HttpResult;
  nats: NatsResult;
}

export interface Row {
  measurement: string;
  depot: string;
  peer: string;
  ratio: string;
  target: string;
  met: boolean | undefined;
}

const mibs = (bytes: number, seconds: number[]) => seconds.map((s) => bytes / MiB / s);
/** The raw figures of the runs, comma-separated. */
const list = (values: number[], digits = 0) => values.map((v) => fmt(v, digits)).join(', ');
const mib = (bytes: number) => bytes / MiB;
const crashLabel = (c: CrashSettings) => `${c.lockDurationMs}/${c.stalledIntervalMs} ms, new worker ${c.sameHost ? 'on the same host' : 'named as elsewhere'}`;

/** A gap in milliseconds with its sign (depot slower: +). */
const signedMs = (ms: number) => `${ms >= 0 ? '+' : '−'}${fmt(Math.abs(ms))} ms`;

/** Measurement 1 (issue 19's targets): the large path-source store against rclone and cp+sync+openssl, and its retrieve to a path against cp+openssl. */
function largeRows(large: LargeResult): Row[] {
  const size = `${large.bytes / MiB} MiB`;
  const beside = large.busy ? ', beside a CPU-bound load' : '';
  const depot = mibs(large.bytes, large.depot);
  const rclone = mibs(large.bytes, large.rclone);
  const cp = mibs(large.bytes, large.cpSyncOpenssl);
  const retrieve = mibs(large.bytes, large.retrieve.depot);
  const cpBack = mibs(large.bytes, large.retrieve.cpOpenssl);
  const ratio = (a: number[], b: number[]) => median(pairedRatios(a, b));
  const compare = (measurement: string, ours: number[], theirs: number[], target: number): Row => ({
    measurement,
    depot: `${fmtSpread(ours, 0)} MiB/s`,
    peer: `${fmtSpread(theirs, 0)} MiB/s`,
    ratio: `${fmt(ratio(ours, theirs))}×`,
    target: `≥ ${fmt(target, 1)}×`,
    met: ratio(ours, theirs) >= target,
  });
  return [
    compare(`1. large archive (${size})${beside} vs rclone copyto --checksum`, depot, rclone, 1.3),
    compare(`1. large archive (${size})${beside} vs cp + sync + openssl dgst -sha256`, depot, cp, 0.9),
    compare(`1. retrieve to a path (${size}, fsynced)${beside} vs cp + openssl dgst -sha256 of the copy (not synced)`, retrieve, cpBack, 0.9),
  ];
}

/** Every figure is a median over runs; every ratio is the median of ratios of runs measured side by side. */
export function rows(r: BenchResults): Row[] {
  const oneGiB = median(r.memory.oneGiB.map(mib));
  const fourGiB = median(r.memory.fourGiB.map(mib));
  const concurrent = median(r.memory.concurrent.map(mib));
  const smallRatio = median(pairedRatios(r.small.depot, r.small.bare));
  const p50Gap = median(r.latency.map((l) => l.depot.p50 - l.bare.p50));
  const scale = median(pairedRatios(r.scaling.two, r.scaling.one));
  const defaults = r.crash[0];
  const crashSeconds = median(defaults.seconds);
  const list: Row[] = [
    ...largeRows(r.large),
    ...largeRows(r.largeBusy),
    {
      measurement: '2. worker peak RSS (VmHWM), 1 GiB / 4 GiB archive',
      depot: `${fmt(oneGiB, 0)} / ${fmt(fourGiB, 0)} MiB`,
      peer: `idle worker ${fmt(median(r.memory.idle.map(mib)), 0)} MiB`,
      ratio: `4 GiB / 1 GiB ${fmt(fourGiB / oneGiB)}×`,
      target: '< 200 MiB, flat (≤ 1.10×)',
      met: oneGiB < 200 && fourGiB < 200 && fourGiB / oneGiB <= 1.1,
    },
    {
      measurement: '2. worker peak RSS (VmHWM), 1 GiB path-source store (issue 19)',
      depot: `${fmt(oneGiB, 0)} MiB`,
      peer: `idle worker ${fmt(median(r.memory.idle.map(mib)), 0)} MiB`,
      ratio: `store adds ${fmt(oneGiB - median(r.memory.idle.map(mib)), 0)} MiB`,
      target: '< 100 MiB',
      met: oneGiB < 100,
    },
    {
      measurement: `2. worker peak RSS, ${r.memory.concurrentStores} concurrent ${r.memory.concurrentBytes / MiB} MiB stores`,
      depot: `${fmt(concurrent, 0)} MiB`,
      peer: '',
      ratio: '',
      target: '< 200 MiB',
      met: concurrent < 200,
    },
    {
      measurement: `3. small archives (${r.small.count} × 4 KiB, concurrency ${r.small.concurrency}) vs bare BullMQ worker`,
      depot: `${fmtSpread(r.small.depot, 0)} /s`,
      peer: `${fmtSpread(r.small.bare, 0)} /s`,
      ratio: `${fmt(smallRatio)}×`,
      target: '≥ 0.5×',
      met: smallRatio >= 0.5,
    },
    {
      measurement: '4. latency enqueue → completed, 4 KiB, one at a time: p50',
      depot: `${fmtSpread(r.latency.map((l) => l.depot.p50))} ms`,
      peer: `${fmtSpread(r.latency.map((l) => l.bare.p50))} ms`,
      ratio: signedMs(p50Gap),
      target: '≤ +2 ms',
      met: p50Gap <= 2,
    },
    {
      measurement: '4. latency: p99',
      depot: `${fmtSpread(r.latency.map((l) => l.depot.p99))} ms`,
      peer: `${fmtSpread(r.latency.map((l) => l.bare.p99))} ms`,
      ratio: signedMs(median(r.latency.map((l) => l.depot.p99 - l.bare.p99))),
      target: '(reported)',
      met: undefined,
    },
    {
      measurement: `5. scaling: 2 worker processes vs 1 (small-archive load)`,
      depot: `${fmtSpread(r.scaling.two, 0)} /s`,
      peer: `${fmtSpread(r.scaling.one, 0)} /s`,
      ratio: `${fmt(scale)}×`,
      target: '≥ 1.3×',
      met: scale >= 1.3,
    },
    {
      measurement: `6. crash recovery, kill -9 mid-store (200 MiB), ${crashLabel(defaults)} (defaults)`,
      depot: `${fmtSpread(defaults.seconds)} s`,
      peer: '',
      ratio: '',
      target: '≤ 6 s',
      met: crashSeconds <= 6,
    },
  ];
  for (const variant of r.crash.slice(1)) {
    list.push({
      measurement: `6. crash recovery, ${crashLabel(variant)}`,
      depot: `${fmtSpread(variant.seconds)} s`,
      peer: '',
      ratio: '',
      target: '(explored)',
      met: undefined,
    });
  }
  list.push({
    measurement: `6. jobs taken for stalled under load (${r.stalls.jobs} × 100 MiB), ${crashLabel(r.stalls)}`,
    depot: `${r.stalls.stalled}`,
    peer: '',
    ratio: '',
    target: '(cost of short locks)',
    met: undefined,
  });
  list.push(...s3Rows(r.s3));
  list.push(...ftpRows(r.ftp));
  list.push(...httpRows(r.http));
  list.push(...natsRows(r.nats));
  return list;
}

/**
 * One large-archive comparison on a remote store (measurements 7, 7b and 9): against the direct-library
 * peer (with a target where the issue set one; else the ratio is reported) and rclone, where rclone has a backend for it.
 */
interface RemoteComparison {
  tag: string;
  /** The store as the rows name it (S3, FTPS, NATS), its server, and the direct-library peer. */
  where: string;
  server: string;
  peer: string;
  peerCall: string;
  /** The least speed against the direct-library peer. */
  target?: number;
  bytes: number;
  seconds: PerContender;
  cpu: PerContender;
  /** The server's own CPU, with the row's label, where it was measured per contender. */
  serverCpu?: PerContender & { label: string };
  rss: { depotPeak: number[]; depotIdle: number; peerPeak: number[]; peerIdle: number };
}

/** Figures per run of depot, the direct-library peer and rclone (when it took part). */
interface PerContender {
  depot: number[];
  peer: number[];
  rclone?: number[];
}

const reported = { target: '(reported)', met: undefined };

/** A speed comparison's row: depot's MiB/s against a peer's, the median of the paired ratios, against `target` when there is one. */
function speedRow(measurement: string, bytes: number, depotSeconds: number[], peerSeconds: number[], target?: number): Row {
  const depotMibs = mibs(bytes, depotSeconds);
  const peerMibs = mibs(bytes, peerSeconds);
  const ratio = median(pairedRatios(depotMibs, peerMibs));
  return {
    measurement,
    depot: `${fmtSpread(depotMibs, 0)} MiB/s`,
    peer: `${fmtSpread(peerMibs, 0)} MiB/s`,
    ratio: `${fmt(ratio)}×`,
    ...(target === undefined ? reported : { target: `≥ ${fmt(target, 1)}×`, met: ratio >= target }),
  };
}

function remoteRows(c: RemoteComparison): Row[] {
  const size = `${c.bytes / MiB} MiB`;
  const perGiB = (cpu: number[]) => cpu.map((x) => (x * GiB) / c.bytes);
  const versus = (name: string, peerSeconds: number[], target?: number): Row =>
    speedRow(`${c.tag}. large archive on ${c.where} (${size}, ${c.server}) vs ${name}`, c.bytes, c.seconds.depot, peerSeconds, target);
  const cpuRow = (measurement: string, cpu: PerContender): Row => ({
    measurement,
    depot: `${fmtSpread(perGiB(cpu.depot), 1)} s`,
    peer: `${fmtSpread(perGiB(cpu.peer), 1)} s${cpu.rclone ? ` (${fmtSpread(perGiB(cpu.rclone), 1)} s)` : ''}`,
    ratio: `${fmt(median(pairedRatios(cpu.depot, cpu.peer)))}×`,
    ...reported,
  });
  return [
    versus(c.peerCall, c.seconds.peer, c.target),
    ...(c.seconds.rclone ? [versus('rclone copyto', c.seconds.rclone)] : []),
    cpuRow(`${c.tag}. CPU per GiB on ${c.where}: depot worker vs ${c.peer} process${c.cpu.rclone ? ' (rclone)' : ''}`, c.cpu),
    ...(c.serverCpu ? [cpuRow(c.serverCpu.label, c.serverCpu)] : []),
    {
      measurement: `${c.tag}. worker peak RSS (VmHWM) over the ${c.where} stores, vs the ${c.peer} process`,
      depot: `${fmt(mib(Math.max(...c.rss.depotPeak)), 0)} MiB (idle ${fmt(mib(c.rss.depotIdle), 0)})`,
      peer: `${fmt(mib(Math.max(...c.rss.peerPeak)), 0)} MiB (idle ${fmt(mib(c.rss.peerIdle), 0)})`,
      ratio: '',
      ...reported,
    },
  ];
}

export function s3Rows(s3: S3Result): Row[] {
  return remoteRows({
    tag: '7',
    where: 'S3',
    server: 's3rver',
    peer: 'lib-storage',
    peerCall: 'lib-storage Upload',
    bytes: s3.bytes,
    seconds: { depot: s3.depot, peer: s3.libStorage, rclone: s3.rclone },
    cpu: { depot: s3.cpu.depot, peer: s3.cpu.libStorage, rclone: s3.cpu.rclone },
    rss: { depotPeak: s3.depotPeakRss, depotIdle: s3.depotIdleRss, peerPeak: s3.libStoragePeakRss, peerIdle: s3.libStorageIdleRss },
  });
}

export function ftpRows(ftp: FtpResult): Row[] {
  return remoteRows({
    tag: '7b',
    where: 'FTPS',
    server: 'proftpd',
    peer: 'basic-ftp',
    peerCall: 'basic-ftp uploadFrom',
    bytes: ftp.bytes,
    seconds: { depot: ftp.depot, peer: ftp.basicFtp, rclone: ftp.rclone },
    cpu: { depot: ftp.cpu.depot, peer: ftp.cpu.basicFtp, rclone: ftp.cpu.rclone },
    serverCpu: {
      label: '7b. proftpd CPU per GiB (master and sessions) while storing: for depot vs for basic-ftp (rclone)',
      depot: ftp.serverCpu.depot,
      peer: ftp.serverCpu.basicFtp,
      rclone: ftp.serverCpu.rclone,
    },
    rss: { depotPeak: ftp.depotPeakRss, depotIdle: ftp.depotIdleRss, peerPeak: ftp.basicFtpPeakRss, peerIdle: ftp.basicFtpIdleRss },
  });
}

/** Measurement 8 (issue 17): an upload through `POST /v1/tasks` to a stored archive against curl to a server that writes and fsyncs. */
export function httpRows(h: HttpResult): Row[] {
  const size = `${h.bytes / MiB} MiB`;
  const perGiB = (cpu: number[]) => cpu.map((x) => (x * GiB) / h.bytes);
  const workerCpu = h.cpu.depot.map((total, i) => total - h.serveCpu[i]);
  const peak = (values: number[]) => fmt(mib(Math.max(...values)), 0);
  return [
    speedRow(
      `8. upload over HTTP to a stored archive (${size}, curl multipart POST /v1/tasks → completed, filesystem driver) vs curl -T to a Node server that writes and fsyncs`,
      h.bytes,
      h.depot,
      h.peer,
      0.8,
    ),
    speedRow(`8. depot's upload alone (curl → 202: spooled, hashed, fsynced, queued), vs the same`, h.bytes, h.depotUpload, h.peer),
    {
      measurement: '8. CPU per GiB of the receiving side: depot serve + worker (serve / worker) vs the Node server',
      depot: `${fmtSpread(perGiB(h.cpu.depot), 1)} s (${fmt(median(perGiB(h.serveCpu)), 1)} / ${fmt(median(perGiB(workerCpu)), 1)})`,
      peer: `${fmtSpread(perGiB(h.cpu.peer), 1)} s`,
      ratio: `${fmt(median(pairedRatios(h.cpu.depot, h.cpu.peer)))}×`,
      ...reported,
    },
    {
      measurement: '8. peak RSS (VmHWM) over the uploads: depot serve / worker vs the Node server',
      depot: `${peak(h.servePeakRss)} / ${peak(h.workerPeakRss)} MiB (idle ${fmt(mib(h.serveIdleRss), 0)} / ${fmt(mib(h.workerIdleRss), 0)})`,
      peer: `${peak(h.peerPeakRss)} MiB (idle ${fmt(mib(h.peerIdleRss), 0)})`,
      ratio: '',
      ...reported,
    },
  ];
}

/** Measurement 9 (issue 17): a store on a NATS object store against a direct `@nats-io/obj` put. */
export function natsRows(n: NatsResult): Row[] {
  return remoteRows({
    tag: '9',
    where: 'NATS',
    server: 'nats-server',
    peer: '@nats-io/obj',
    peerCall: '@nats-io/obj put',
    target: 0.9,
    bytes: n.bytes,
    seconds: { depot: n.depot, peer: n.obj },
    cpu: { depot: n.cpu.depot, peer: n.cpu.obj },
    serverCpu: { label: '9. nats-server CPU per GiB while storing: for depot vs for @nats-io/obj', depot: n.serverCpu.depot, peer: n.serverCpu.obj },
    rss: { depotPeak: n.depotPeakRss, depotIdle: n.depotIdleRss, peerPeak: n.objPeakRss, peerIdle: n.objIdleRss },
  });
}

/** Measurement 7's runs, as the raw list gives them. */
export function s3Raw(s3: S3Result): string[] {
  return [
    `- large archive on S3, seconds per run (depot / lib-storage / rclone): ${list(s3.depot, 2)} / ${list(s3.libStorage, 2)} / ${list(s3.rclone, 2)}`,
    `- on S3, CPU seconds per run of the contender (depot / lib-storage / rclone): ${list(s3.cpu.depot, 2)} / ${list(s3.cpu.libStorage, 2)} / ${list(s3.cpu.rclone, 2)}; of s3rver meanwhile: ${list(s3.serverCpu.depot, 2)} / ${list(s3.serverCpu.libStorage, 2)} / ${list(s3.serverCpu.rclone, 2)}`,
    `- on S3, peak RSS MiB after each round (depot worker / lib-storage process): ${list(s3.depotPeakRss.map(mib))} / ${list(s3.libStoragePeakRss.map(mib))}`,
  ];
}

/** Measurement 7b's runs, as the raw list gives them. */
export function ftpRaw(ftp: FtpResult): string[] {
  return [
    `- large archive on FTPS, seconds per run (depot / basic-ftp / rclone): ${list(ftp.depot, 2)} / ${list(ftp.basicFtp, 2)} / ${list(ftp.rclone, 2)}`,
    `- on FTPS, CPU seconds per run of the contender (depot / basic-ftp / rclone): ${list(ftp.cpu.depot, 2)} / ${list(ftp.cpu.basicFtp, 2)} / ${list(ftp.cpu.rclone, 2)}; of proftpd meanwhile: ${list(ftp.serverCpu.depot, 2)} / ${list(ftp.serverCpu.basicFtp, 2)} / ${list(ftp.serverCpu.rclone, 2)}`,
    `- on FTPS, peak RSS MiB after each round (depot worker / basic-ftp process): ${list(ftp.depotPeakRss.map(mib))} / ${list(ftp.basicFtpPeakRss.map(mib))}`,
  ];
}

/** Measurement 8's runs, as the raw list gives them. */
export function httpRaw(h: HttpResult): string[] {
  const workerCpu = h.cpu.depot.map((total, i) => total - h.serveCpu[i]);
  return [
    `- upload over HTTP, seconds per run (depot to the stored archive / of which until serve's 202 / the Node server): ${list(h.depot, 2)} / ${list(h.depotUpload, 2)} / ${list(h.peer, 2)}`,
    `- over HTTP, CPU seconds per run of depot serve / depot worker (with its cp) / the Node server: ${list(h.serveCpu, 2)} / ${list(workerCpu, 2)} / ${list(h.cpu.peer, 2)}; of curl (to depot / to the Node server): ${list(h.curlCpu.depot, 2)} / ${list(h.curlCpu.peer, 2)}`,
    `- over HTTP, peak RSS MiB after each round (depot serve / depot worker / the Node server): ${list(h.servePeakRss.map(mib))} / ${list(h.workerPeakRss.map(mib))} / ${list(h.peerPeakRss.map(mib))}`,
    `- over HTTP, the worker's attempts per store (2: it looked for the spool file before serve had moved it there, and retried after its backoff): ${list(h.depotAttempts)}`,
  ];
}

/** Measurement 9's runs, as the raw list gives them. */
export function natsRaw(n: NatsResult): string[] {
  return [
    `- large archive on NATS, seconds per run (depot / @nats-io/obj): ${list(n.depot, 2)} / ${list(n.obj, 2)}`,
    `- on NATS, CPU seconds per run of the contender (depot / @nats-io/obj): ${list(n.cpu.depot, 2)} / ${list(n.cpu.obj, 2)}; of nats-server meanwhile: ${list(n.serverCpu.depot, 2)} / ${list(n.serverCpu.obj, 2)}`,
    `- on NATS, peak RSS MiB after each round (depot worker / @nats-io/obj process): ${list(n.depotPeakRss.map(mib))} / ${list(n.objPeakRss.map(mib))}`,
  ];
}

const verdict = (met: boolean | undefined) => (met === undefined ? '' : met ? 'met' : 'MISSED');

/** The table for the terminal. */
export function textTable(list: Row[]): string {
  const cells = [
    ['measurement', 'depot', 'peer', 'ratio', 'target', ''],
    ...list.map((r) => [r.measurement, r.depot, r.peer, r.ratio, r.target, verdict(r.met)]),
  ];
  const widths = cells[0].map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells.map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ')).join('\n');
}

function markdownTable(header: string[], body: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...body.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

/** docs/BENCHMARKS.md: the figures of this run, the raw runs, and the hand-written findings. */
export function markdown(r: BenchResults, findings: string): string {
  const f = r.facts;
  const table = markdownTable(
    ['measurement', 'depot', 'peer', 'ratio', 'target', ''],
    rows(r).map((row) => [row.measurement, row.depot, row.peer, row.ratio, row.target, row.met === undefined ? '' : row.met ? 'met' : '**missed**']),
  );
  const raw = [
    ...[r.large, r.largeBusy].flatMap((large) => {
      const beside = large.busy ? ' beside a CPU-bound load' : '';
      return [
        `- large archive${beside}, seconds per run (depot / rclone / cp+sync+openssl): ${list(large.depot, 2)} / ${list(large.rclone, 2)} / ${list(large.cpSyncOpenssl, 2)}`,
        `- retrieve to a path${beside}, seconds per run (depot / cp+openssl): ${list(large.retrieve.depot, 2)} / ${list(large.retrieve.cpOpenssl, 2)}`,
      ];
    }),
    `- peak RSS MiB, idle: ${list(r.memory.idle.map(mib))}; 1 GiB: ${list(r.memory.oneGiB.map(mib))}; 4 GiB: ${list(r.memory.fourGiB.map(mib))}; ${r.memory.concurrentStores} × ${r.memory.concurrentBytes / MiB} MiB: ${list(r.memory.concurrent.map(mib))}`,
    `- small archives per second (depot / bare): ${list(r.small.depot)} / ${list(r.small.bare)}`,
    `- latency ms per run, p50 depot / bare: ${list(
      r.latency.map((l) => l.depot.p50),
      2,
    )} / ${list(
      r.latency.map((l) => l.bare.p50),
      2,
    )}; p99: ${list(
      r.latency.map((l) => l.depot.p99),
      2,
    )} / ${list(
      r.latency.map((l) => l.bare.p99),
      2,
    )}`,
    `- scaling, per second (1 worker / 2 workers): ${list(r.scaling.one)} / ${list(r.scaling.two)}`,
    ...r.crash.map((c) => `- crash recovery ${crashLabel(c)}, seconds: ${list(c.seconds, 2)}`),
    `- stalled events under load with ${crashLabel(r.stalls)}: ${r.stalls.stalled} of ${r.stalls.jobs} jobs`,
    ...s3Raw(r.s3),
    ...ftpRaw(r.ftp),
    ...httpRaw(r.http),
    ...natsRaw(r.nats),
  ].join('\n');
  return `# depot benchmarks

Generated by \`npm run bench\` (sources in \`bench/\`) on ${r.startedAt.toISOString()}; the run took ${fmt(r.minutes, 1)} minutes.
Every figure is the median of several runs (range in brackets); every ratio is the median of
the ratios of runs made side by side (A B A B …), because absolute times on a shared machine drift.

## Machine

| | |
|---|---|
| cores | ${f.cores} (${f.cpuModel}) |
| memory | ${f.memoryGiB} GiB |
| kernel | ${f.kernel} |
| Node | ${f.node} |
| Redis | ${f.redis} (private redis-server started for the run) |
| bullmq / ioredis | ${f.bullmq} / ${f.ioredis} |
| rclone | ${f.rclone} |
| openssl | ${f.openssl} |
| s3rver / @aws-sdk/lib-storage | ${f.s3rver} (started for the run, on a free loopback port) / ${f.libStorage} |
| proftpd / basic-ftp | ${f.proftpd} (started for the run, on a free loopback port, explicit FTPS required) / ${f.basicFtp} |
| curl | ${f.curl} |
| nats-server / @nats-io/obj | ${f.natsServer} (started for the run, on a free loopback port, JetStream on file storage) / ${f.natsObj} |
| disk | ${f.filesystem} at ${f.tmpdir} |
| load average before / after | ${r.loadBefore.map((v) => fmt(v)).join(' ')} / ${r.loadAfter.map((v) => fmt(v)).join(' ')} |

## Results

${table}

Raw runs:

${raw}

## How it is measured

- depot runs as operators run it: \`node bin/depot worker\`, compiled (built first with \`npm run build\`)
  with \`DEPOT_CONFIG\` pointing at a YAML file (one filesystem driver with fsync on, \`paths.allowed\` set,
  queue concurrency 16), against a private \`redis-server\` on a free port. Tasks are added the way
  \`ArchivingManager\` adds them (UUIDv7 taskId, jobId \`task-<taskId>\`, its default job options).
- Every run writes into fresh directories under the system temp directory. Directories full of small files
  are deleted only at the end, because this disk is slow to hand out freed inodes again right after a big
  delete (running the benchmark twice within a few minutes lowers the small-archive figures of the second run).
- 1: enqueue → completion event for a \`path\` source of random bytes; the stored sha256 is checked.
  rclone: \`rclone copyto --checksum\` to a new file on the same disk (rclone does not fsync; a \`sync\`
  after it, not timed, keeps its dirty pages out of the next measurement). cp: \`cp\`, \`sync\` and
  \`openssl dgst -sha256\` of the same file, timed together. Every copy is deleted right after its run.
  On this VM a large write is slowed by whatever large write ran just before it, so each contender runs
  twice in a row and only the second run counts, and the order of the contenders rotates from round
  to round.
- 2: VmHWM from \`/proc/<pid>/status\` of a fresh worker process per load.
- 3 and 5: the tasks are queued while the queue is paused, then released at once; the rate is the number of
  jobs over the span from the first job taken to the last job finished (the workers' own timestamps).
  The bare worker (\`bench/bare-worker.ts\`) is a plain BullMQ worker at the same concurrency that writes
  each job's bytes to a new file and fsyncs it.
- 4: one task at a time, alternately to depot and to the bare worker (both running), timed from before
  \`queue.add\` to the completion event seen by a QueueEvents listener; after 100 warm-up tasks each.
- 6: a 200 MiB store is killed with SIGKILL once half of it is staged; a new worker process is started at
  once; the figure is the time from the kill to the completion event. "On the same host": the new worker
  has its default name and hands back the dead worker's task as it starts; "named as elsewhere": it runs
  with \`DEPOT_WORKER_NAME\` set, so only BullMQ's stalled-job check can recover the task.
- 7: one s3rver (the test helper's, on a free loopback port, data in its own temp directory) and one file
  of random bytes. depot: a worker whose one driver is \`s3\` (endpoint, bucket, \`forcePathStyle\`,
  \`checksums: when_required\`, credentials as \`\${ENV}\` references, part size and queue size at their
  defaults of ${r.s3.partSizeMiB} MiB and ${r.s3.queueSize}), timed from enqueue of a \`path\` source to the completion
  event; the returned sha256 and the object's size are checked. lib-storage: \`Upload\` of
  \`fs.createReadStream(file)\` with the same part size and queue size, path style and checksums only
  when required, in a process of its own started beforehand (bench/lib-storage-uploader.ts), timed from
  the request to its answer. rclone: \`rclone copyto\` with \`--s3-chunk-size\` and \`--s3-upload-cutoff\`
  ${r.s3.partSizeMiB} MiB and \`--s3-upload-concurrency ${r.s3.queueSize}\`, otherwise its defaults (an s3 remote of
  provider Other given by \`RCLONE_CONFIG_*\` variables), timed around the command. Each contender
  stores once untimed first; then rounds in rotating order. Every object is checked (HEAD: size) and
  deleted right after its run, followed by an untimed \`sync\`. CPU is user + system time of the
  contender's process (from \`/proc\`, and bash's \`times\` for rclone) and of s3rver during the run.
- 7b: one proftpd (the test helper's: a free loopback port, explicit FTPS required (\`AUTH TLS\`,
  \`TLSRequired on\`, TLS 1.2/1.3, a self-signed certificate), \`AllowOverwrite off\`, its files in its own temp
  directory; destroyed afterwards, also when the run is interrupted) and one file of random bytes; each
  contender writes into a directory of its own. depot: a worker whose one driver is \`ftp\` (host, port, user,
  \`password: \${BENCH_FTP_PASSWORD}\` set in the worker's environment only, \`secure: true\`, \`caFile\` the server's
  certificate, \`root\`; connections and timeout at their defaults), timed from enqueue of a \`path\` source to
  the completion event; the returned sha256 is checked. depot uploads to a staging name under \`.depot-tmp\`,
  checks its SIZE, writes the manifest as a sidecar file and renames both into place.
  basic-ftp: \`client.uploadFrom(fs.createReadStream(file), remotePath)\` over explicit FTPS verifying the same
  certificate, in a process of its own started beforehand that keeps its control connection
  (bench/basic-ftp-uploader.ts), timed from the request to its answer. rclone: \`rclone copyto\` with an ftp
  remote given by \`RCLONE_CONFIG_*\` variables (\`explicit_tls\`, the password obscured with \`rclone obscure\`,
  \`no_check_certificate\`, because rclone ${r.facts.rclone.split(' ')[0]}'s ftp backend does not take \`--ca-cert\`), otherwise
  its defaults, timed around the command. Each contender stores once untimed first; then rounds in rotating
  order. Every file's size is checked on the server's disk, and the file (depot: the task's directory) is
  deleted there right after its run, followed by an untimed \`sync\`. CPU is user + system time of the
  contender's process (as for 7) and of proftpd: its master process and every session process it forked,
  those still running (\`/proc/<pid>/stat\`) and those ended (the master's \`cutime\`/\`cstime\`).
- 8: one file of random bytes, sent by \`curl\` on 127.0.0.1 to (a) \`depot serve\` beside a \`depot worker\` on
  one config (a filesystem driver with fsync on; \`http.spoolDir\` beside the driver's root, on the same
  filesystem; one bearer token, \`\${BENCH_HTTP_TOKEN}\` in both processes' environment only, handed to curl
  through a descriptor bash fills with a builtin): a multipart \`POST /v1/tasks\` (\`-F task=<task.json\` with a
  taskId chosen beforehand, \`-F file=@file\`), timed from curl's start to the task's completion event (serve
  spooled, hashed and fsynced the file and queued the task; the worker stored it from the spool: staged,
  hashed, fsynced, published, catalogued); serve's answer (taskId, size, sha256), the job's result and the
  archive's size on disk are checked, and serve's removal of the spool file is waited for (untimed). A store
  the worker had to try again (it took the task before serve had moved the file into the spool) counts as
  it came, and its attempts are listed.
  The second row is the same runs timed only until serve's 202. (b) \`curl -T file\` (a streamed PUT) to a
  minimal Node HTTP server in a process of its own started beforehand (bench/fsync-http-server.ts:
  \`pipeline(request, fs.createWriteStream(file, { flush: true }))\`, i.e. written and fsynced before it answers
  201), timed around curl; the file's size is checked. Each contender receives once untimed first (a
  ${WARM_UP_BYTES / MiB} MiB file, to keep the measurement short); then rounds in rotating order; every file is deleted right after its run, followed by an untimed \`sync\`. CPU:
  user + system time of serve, of the worker with its children (the \`cp\` of the kernel copy), of the Node
  server (\`/proc\`), and of curl (bash's \`times\`).
- 9: one nats-server (the test helper's: a free loopback port, JetStream with file storage in its own temp
  directory; never the machine's shared server) and one file of random bytes; each contender writes into a
  bucket of its own. depot: a worker whose one driver is \`nats\` (\`servers\`, \`bucket\`; chunk size (${r.nats.chunkKiB} KiB) and
  timeout at their defaults), timed from enqueue of a \`path\` source to the completion event; the returned
  sha256 is checked. @nats-io/obj: \`objm.create(bucket)\` once, then \`os.put({ name, options: { max_chunk_size } },
  Readable.toWeb(fs.createReadStream(file)))\` with depot's chunk size and the client's native SHA-256
  (\`setSha256Backend('native')\`, which its documentation recommends on Node), in a process of its own
  started beforehand (bench/nats-obj-uploader.ts), timed from the request to its answer. Each contender
  stores once untimed first (a ${WARM_UP_BYTES / MiB} MiB file); then rounds in rotating order. After each run the object's size and the object
  store's digest (\`SHA-256=\` of the file's sha256) are checked through \`@nats-io/obj\`'s \`info\`, and the
  contender's stream is purged, followed by an untimed \`sync\`. CPU is user + system time of the contender's
  process and of nats-server during the run.

## Findings

${findings.trim()}
`;
}
