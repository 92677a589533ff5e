import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { ArchivingManager } from '../../src/archiving/manager';
import { DepotHttpServer, startHttpServer } from '../../src/http/server';
import { breakerSettings, RedisBreakers } from '../../src/queue/breaker';
import { createRedis, waitForRedis } from '../../src/queue/connection';
import { scheduleExpiry } from '../../src/queue/expiry-schedule';
import { StorageAPI } from '../../src/storage/api';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { silentLogger } from '../../src/support/logging';
import { cleanupAll, eventually, InProcessWorker, startInProcessWorker, TempDirs, testConfig } from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';

/**
 * /metrics by Prometheus' conventions (issue 10): units before `_total`,
 * gauges named as gauges, HELP and TYPE for every family, series present from
 * the start, bounded labels, process metrics. Each test uses a queue of its
 * own so that counts are its own.
 */
jest.setTimeout(60_000);

const temp = new TempDirs();
const logger = silentLogger();
let redis: RedisServer;
let work: string;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startRedis();
  work = await temp.make('depot-metrics-');
});

afterAll(async () => {
  await cleanupAll(
    ...closers.reverse(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

type Drivers = Record<string, Record<string, unknown>>;

function config(queue: string, drivers: Drivers, failover: Record<string, string[]> = {}) {
  return testConfig(
    {
      redis: { url: redis.url },
      queue: { name: queue, attempts: 1, backoffMs: 10 },
      defaultDriver: 'local',
      drivers,
      failover,
      paths: { allowed: [work] },
      http: { port: 0 },
    },
    work,
  );
}

async function serve(queue: string, drivers: Drivers): Promise<DepotHttpServer> {
  const storage = new StorageAPI(config(queue, drivers), defaultDriverFactory(), logger);
  const http = await startHttpServer(config(queue, drivers), storage, logger);
  closers.push(async () => (await http.close(), await storage.close()));
  await http.health.settled();
  return http;
}

async function worker(queue: string, drivers: Drivers, failover: Record<string, string[]> = {}): Promise<InProcessWorker> {
  const started = await startInProcessWorker(config(queue, drivers, failover));
  closers.push(() => started.close());
  return started;
}

function producer(queue: string): ArchivingManager {
  const manager = new ArchivingManager({ redisUrl: redis.url, queueName: queue, jobOptions: { attempts: 1 } });
  closers.push(() => manager.close());
  return manager;
}

async function metrics(http: DepotHttpServer): Promise<string> {
  const response = await fetch(`${http.url}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one series, e.g. `depot_workers{queue="depot"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Sample lines of one family (histograms: its _bucket, _sum and _count too). */
function seriesOf(text: string, family: string): string[] {
  return text.split('\n').filter((l) => !l.startsWith('#') && /^[^{ ]+/.exec(l)?.[0].replace(/_(bucket|sum|count)$/, '') === family);
}

/** `# TYPE` of every family, by name. */
function types(text: string): Map<string, string> {
  return new Map(text.split('\n').flatMap((l) => (l.startsWith('# TYPE ') ? [l.slice(7).split(' ') as [string, string]] : [])));
}

const local = (dir: string): Drivers => ({ local: { type: 'filesystem', root: path.join(work, dir) } });

test('names: units before _total, gauges without _total, HELP and TYPE for every family', async () => {
  const queue = 'names';
  const drivers = local('names');
  const http = await serve(queue, drivers);
  await worker(queue, drivers);
  const file = path.join(work, 'names.zip');
  await writeFile(file, 'bytes for the byte counters');
  const manager = producer(queue);
  const stored = await (await manager.store({ path: file }, { name: 'names.zip' })).result(30_000);
  await (await manager.retrieve(stored.ref, { inline: true })).result(30_000);

  const text = await eventually(
    async () => {
      const body = await metrics(http);
      return sample(body, 'depot_tasks_total{operation="retrieve",outcome="completed"}') === 1 ? body : undefined;
    },
    10_000,
    'the retrieve in /metrics',
  );
  expect(sample(text, 'depot_stored_bytes_total{driver="local"}')).toBe(stored.size);
  expect(sample(text, 'depot_retrieved_bytes_total{driver="local"}')).toBe(stored.size);
  expect(sample(text, 'depot_driver_capacity_bytes{driver="local"}')).toBeGreaterThan(0);
  const declared = types(text);
  expect(declared.get('depot_stored_bytes_total')).toBe('counter');
  expect(declared.get('depot_retrieved_bytes_total')).toBe('counter');
  expect(declared.get('depot_driver_capacity_bytes')).toBe('gauge');
  for (const old of ['depot_bytes_stored_total', 'depot_bytes_retrieved_total', 'depot_driver_total_bytes']) expect(declared.has(old)).toBe(false);
  for (const [name, type] of declared) {
    // Only counters end in _total, and every counter does; units come before it.
    expect({ name, type, total: name.endsWith('_total') }).toEqual({ name, type, total: type === 'counter' });
    // depot's own names: no `total` as a word inside a name (nodejs_heap_size_total_bytes is prom-client's standard name).
    if (name.startsWith('depot_')) expect(name).not.toMatch(/_total_/);
  }
  // Every sample belongs to a family declared with HELP and TYPE, declared once.
  const helps = text
    .split('\n')
    .filter((l) => l.startsWith('# HELP '))
    .map((l) => l.split(' ')[2]);
  expect(new Set(helps).size).toBe(helps.length);
  expect([...declared.keys()].sort()).toEqual([...helps].sort());
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? line;
    const family = declared.get(name) === undefined ? name.replace(/_(bucket|sum|count)$/, '') : name;
    expect({ line, declared: declared.has(family) }).toEqual({ line, declared: true });
  }
});

test("every operation × outcome series, and every operation's histogram, is there from the start at 0", async () => {
  const http = await serve('fresh', local('fresh'));
  const text = await metrics(http);
  for (const operation of ['store', 'retrieve', 'delete', 'check', 'expire', 'other']) {
    for (const outcome of ['completed', 'failed'])
      expect({ operation, outcome, value: sample(text, `depot_tasks_total{operation="${operation}",outcome="${outcome}"}`) }).toEqual({
        operation,
        outcome,
        value: 0,
      });
    expect(sample(text, `depot_task_duration_seconds_count{operation="${operation}"}`)).toBe(0);
    expect(sample(text, `depot_task_duration_seconds_bucket{operation="${operation}",le="+Inf"}`)).toBe(0);
  }
  expect(sample(text, 'depot_stored_bytes_total{driver="local"}')).toBe(0);
  expect(sample(text, 'depot_retrieved_bytes_total{driver="local"}')).toBe(0);
  expect(sample(text, 'depot_store_retries_total')).toBe(0);
});

test("depot's expiry scheduler is not queue depth: its due run, its run in progress and its next run count 0; a delayed task still counts", async () => {
  const queue = 'scheduled';
  const http = await serve(queue, local('scheduled'));
  await scheduleExpiry({ redis: redis.url, queueName: queue, prefix: 'bull', everyMs: 3_600_000 });
  const plain = new Queue(queue, { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
  closers.push(() => plain.close());
  // The first run is due at once (waiting, no worker here); once it runs, the next one is delayed.
  expect(await plain.getJobCounts('waiting', 'delayed')).toEqual({ waiting: 1, delayed: 0 });
  let text = await metrics(http);
  for (const state of ['waiting', 'active', 'delayed', 'prioritized'])
    expect({ state, n: sample(text, `depot_queue_jobs{queue="${queue}",state="${state}"}`) }).toEqual({ state, n: 0 });

  // A worker takes the run and holds it: BullMQ adds the next one, delayed by the interval.
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const holder = new Worker(queue, () => held, { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
  closers.push(async () => (release(), await holder.close()));
  await eventually(
    async () => {
      const counts = await plain.getJobCounts('waiting', 'active', 'delayed');
      return counts.waiting === 0 && counts.active === 1 && counts.delayed === 1 ? true : undefined;
    },
    10_000,
    'the first expire run to be active and the next delayed',
  );
  text = await metrics(http);
  for (const state of ['waiting', 'active', 'delayed', 'prioritized'])
    expect({ state, n: sample(text, `depot_queue_jobs{queue="${queue}",state="${state}"}`) }).toEqual({ state, n: 0 });
  release();
  await eventually(async () => ((await plain.getJobCounts('completed')).completed === 1 ? true : undefined), 10_000, 'the expire run to complete');

  await plain.add('check', { driver: 'local' }, { delay: 60_000 });
  text = await metrics(http);
  expect(sample(text, `depot_queue_jobs{queue="${queue}",state="delayed"}`)).toBe(1);
});

test('webhook deliveries carry the queue label of depot-callbacks', async () => {
  const http = await serve('webhooks', local('webhooks'));
  const text = await metrics(http);
  for (const state of ['waiting', 'active', 'delayed', 'completed', 'failed']) {
    expect({ state, n: sample(text, `depot_webhook_deliveries{queue="depot-callbacks",state="${state}"}`) }).toEqual({ state, n: expect.any(Number) });
  }
  expect(seriesOf(text, 'depot_webhook_deliveries').every((l) => l.includes('queue="depot-callbacks"'))).toBe(true);
});

test('failovers are counted per hop, labelled with the driver given up (from) and the one tried next (to)', async () => {
  const queue = 'failover';
  const brokenRoot = path.join(work, 'failover-not-a-dir');
  await writeFile(brokenRoot, 'a file where a directory should be\n');
  const drivers: Drivers = { ...local('failover'), broken: { type: 'filesystem', root: brokenRoot } };
  const http = await serve(queue, drivers);
  await worker(queue, drivers, { broken: ['local'] });
  const file = path.join(work, 'failover.zip');
  await writeFile(file, 'an archive that ends on the fallback');
  const stored = await (await producer(queue).store({ path: file }, { name: 'failover.zip', driver: 'broken' })).result(30_000);
  expect(stored).toMatchObject({ failedOver: true, driversTried: ['broken', 'local'], ref: { driver: 'local' } });

  const text = await eventually(
    async () => {
      const body = await metrics(http);
      return sample(body, 'depot_tasks_total{operation="store",outcome="completed"}') === 1 ? body : undefined;
    },
    10_000,
    'the store in /metrics',
  );
  expect(sample(text, 'depot_failovers_total{from="broken",to="local"}')).toBe(1);
  expect(seriesOf(text, 'depot_failovers_total')).toEqual(['depot_failovers_total{from="broken",to="local"} 1']);
});

test('process metrics: CPU, memory, start time, file descriptors, heap and event-loop delay', async () => {
  const http = await serve('process', local('process'));
  await metrics(http); // the event-loop figures cover the time since the previous scrape
  // Hold the event loop (the server runs in this process) for 60 ms.
  await new Promise((resolve) => setTimeout(resolve, 30));
  for (const until = Date.now() + 60; Date.now() < until;);
  await new Promise((resolve) => setTimeout(resolve, 30));
  const text = await metrics(http);
  const declared = types(text);
  const expected: Record<string, string> = {
    process_cpu_seconds_total: 'counter',
    process_cpu_user_seconds_total: 'counter',
    process_cpu_system_seconds_total: 'counter',
    process_resident_memory_bytes: 'gauge',
    process_virtual_memory_bytes: 'gauge',
    process_start_time_seconds: 'gauge',
    process_open_fds: 'gauge',
    process_max_fds: 'gauge',
    nodejs_heap_size_total_bytes: 'gauge',
    nodejs_heap_size_used_bytes: 'gauge',
    nodejs_external_memory_bytes: 'gauge',
    nodejs_eventloop_lag_mean_seconds: 'gauge',
    nodejs_eventloop_lag_max_seconds: 'gauge',
    nodejs_version_info: 'gauge',
  };
  for (const [name, type] of Object.entries(expected)) expect({ name, type: declared.get(name) }).toEqual({ name, type });
  const cpu = process.cpuUsage();
  expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
  expect(sample(text, 'process_cpu_seconds_total')).toBeLessThanOrEqual((cpu.user + cpu.system) / 1e6);
  expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
  const started = sample(text, 'process_start_time_seconds') ?? 0;
  expect(Math.abs(started - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2);
  expect(sample(text, 'process_open_fds')).toBeGreaterThan(3);
  expect(sample(text, 'process_max_fds')).toBeGreaterThanOrEqual(sample(text, 'process_open_fds') ?? Infinity);
  expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  const lag = sample(text, 'nodejs_eventloop_lag_max_seconds') ?? -1;
  expect(lag).toBeGreaterThan(0.04);
  expect(lag).toBeLessThan(10);
  expect(
    sample(
      text,
      `nodejs_version_info{version="${process.version}",major="${process.versions.node.split('.')[0]}",minor="${process.versions.node.split('.')[1]}",patch="${process.versions.node.split('.')[2]}"}`,
    ),
  ).toBe(1);
});

test('operation labels stay bounded whatever job names producers send: unknown names are "other"', async () => {
  const queue = 'names-galore';
  const http = await serve(queue, local('galore'));
  const before = await metrics(http);
  const count = (text: string) => seriesOf(text, 'depot_tasks_total').length + seriesOf(text, 'depot_task_duration_seconds').length;
  await worker(queue, local('galore'));
  const plain = new Queue(queue, { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'bull' });
  closers.push(() => plain.close());
  const NAMES = 300;
  await plain.addBulk(Array.from({ length: NAMES }, (_, i) => ({ name: `made-up-${i}`, data: {}, opts: { attempts: 1 } })));

  const text = await eventually(
    async () => {
      const body = await metrics(http);
      return sample(body, 'depot_tasks_total{operation="other",outcome="failed"}') === NAMES ? body : undefined;
    },
    30_000,
    `${NAMES} unknown job names counted as other`,
  );
  expect(count(text)).toBe(count(before));
  expect(text).not.toContain('made-up-');
  expect(sample(text, 'depot_task_duration_seconds_count{operation="other"}')).toBe(NAMES);
});

test("each driver's circuit breaker: 1 once consecutive unavailable attempts opened it, 0 while closed", async () => {
  const queue = 'breakers';
  const drivers: Drivers = {
    ...local('breakers'),
    remote: { type: 'filesystem', root: path.join(work, 'breakers-remote'), breaker: { failures: 2, coolDownMs: 60_000 } },
  };
  const http = await serve(queue, drivers);
  const before = await metrics(http);
  expect(sample(before, 'depot_driver_breaker_open{driver="local"}')).toBe(0);
  expect(sample(before, 'depot_driver_breaker_open{driver="remote"}')).toBe(0);

  // What workers record after two unavailable attempts on remote.
  const connection = createRedis(redis.url, 'producer');
  closers.push(async () => void (await connection.quit()));
  await waitForRedis(connection);
  const configured = config(queue, drivers);
  const breakers = new RedisBreakers(connection, { prefix: configured.queue.prefix, name: queue }, breakerSettings(configured.drivers));
  for (let i = 0; i < 2; i++) await breakers.record('remote', 'unavailable', false);

  const after = await metrics(http);
  expect(sample(after, 'depot_driver_breaker_open{driver="remote"}')).toBe(1);
  expect(sample(after, 'depot_driver_breaker_open{driver="local"}')).toBe(0);
});
