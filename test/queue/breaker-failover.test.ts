import { createConnection, createServer, Server, Socket } from 'node:net';
import path from 'node:path';
import type { StoreResult } from '../../src/contract';
import { runDepot, jsonOf } from '../helpers/depot-cli';
import {
  cleanupAll,
  eventually,
  InProcessWorker,
  queueClient,
  QueueClient,
  settle,
  startInProcessWorker,
  TempDirs,
  testConfig,
  writeConfigFile,
} from '../helpers/queue-harness';
import { freePort, RedisServer, startRedis } from '../helpers/redis-server';
import { S3RVER_CREDENTIALS, S3Server, startS3Server, uniqueBucket } from '../helpers/s3-server';

/**
 * CONTRACT §10's circuit breaker end to end: a real s3rver that is stopped
 * and started again, reached through a TCP forwarder that counts every
 * connection the s3 driver opens — the calls the dead backend receives.
 */
jest.setTimeout(120_000);

// Longer than a `depot status` round (a process of its own) takes on a loaded CI machine: the test reads the breaker
// as open through it, and at 2 s the cool-down had sometimes ended by then (seen as `half-open`, at load 6–8).
const COOL_DOWN_MS = 8_000;
const SECRETS = { S3_KEY: S3RVER_CREDENTIALS.accessKeyId, S3_SECRET: S3RVER_CREDENTIALS.secretAccessKey };
const temp = new TempDirs();
let redis: RedisServer;
let s3: S3Server;
let counter: CountingForwarder;
let worker: InProcessWorker | undefined;
let client: QueueClient;
let configFile: string;
let taskNumber = 0;

/**
 * A load balancer in front of the S3 server: forwards loopback connections to
 * `port`, counting them; while the server is down it answers each with 503,
 * as a load balancer whose backend is gone does.
 */
interface CountingForwarder {
  port: number;
  readonly connections: number;
  close(): Promise<void>;
}

async function startCountingForwarder(target: number): Promise<CountingForwarder> {
  const port = await freePort();
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections++;
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    let connected = false;
    upstream.once('connect', () => (connected = true));
    upstream.once('error', () => {
      if (connected) return;
      client.resume();
      client.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        if (connected) client.destroy();
        upstream.destroy();
      });
      socket.on('end', () => (socket === client ? upstream : client).end());
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    get connections() {
      return connections;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

beforeAll(async () => {
  redis = await startRedis();
  s3 = await startS3Server();
  const bucket = uniqueBucket('breaker');
  await s3.createBucket(bucket);
  counter = await startCountingForwarder(s3.port);
  const work = await temp.make('depot-breaker-');
  const s3Driver = (breaker: Record<string, number>) => ({
    type: 's3',
    bucket,
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${counter.port}`,
    forcePathStyle: true,
    checksums: 'when_required',
    timeoutMs: 3_000,
    accessKeyId: '${S3_KEY}',
    secretAccessKey: '${S3_SECRET}',
    breaker,
  });
  const raw = {
    redis: { url: redis.url },
    queue: { attempts: 3, backoffMs: 20 },
    defaultDriver: 'worm',
    drivers: {
      // The same backend under two names: two breakers.
      worm: s3Driver({ failures: 3, coolDownMs: COOL_DOWN_MS }),
      solo: s3Driver({ failures: 2, coolDownMs: COOL_DOWN_MS }),
      local: { type: 'filesystem', root: path.join(work, 'local') },
    },
    failover: { worm: ['local'] },
  };
  configFile = await writeConfigFile(work, raw);
  worker = await startInProcessWorker(testConfig(raw, work, SECRETS));
  client = await queueClient(redis.port);
});

afterAll(async () => {
  await cleanupAll(
    () => client?.close(),
    () => worker?.close(),
    () => counter?.close(),
    () => s3?.destroy(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

async function store(driver?: string) {
  taskNumber++;
  const data = {
    taskId: `breaker-${taskNumber}`,
    name: `a-${taskNumber}.zip`,
    source: { base64: Buffer.from(`archive ${taskNumber}`).toString('base64') },
    ...(driver ? { driver } : {}),
  };
  return client.queue.add('store', data, { jobId: `task-breaker-${taskNumber}` });
}

async function stored(driver?: string): Promise<StoreResult> {
  const outcome = await settle(client, await store(driver));
  if (outcome.state !== 'completed') throw new Error(`store ${outcome.state}: ${outcome.failedReason}\n${worker?.logs.join('\n')}`);
  return outcome.result as StoreResult;
}

async function breakers(): Promise<Record<string, string>> {
  const run = await runDepot(['status', '--json'], configFile, SECRETS);
  const status = jsonOf<{ drivers: Array<{ driver: string; breaker: string }> }>(run);
  return Object.fromEntries(status.drivers.map((d) => [d.driver, d.breaker]));
}

test('a stopped S3 server: after the threshold, stores go straight to the failover driver without calling it; once it is back and the cool-down has passed, they return to it', async () => {
  expect(await stored()).toMatchObject({ ref: { driver: 'worm' }, driversTried: ['worm'], failedOver: false });
  await s3.stop();

  // Three unavailable attempts (queue.attempts) open worm's breaker; that store fails over as before.
  const first = await stored();
  expect(first).toMatchObject({ ref: { driver: 'local' }, driversTried: ['worm', 'local'], failedOver: true });
  expect(await breakers()).toEqual({ worm: 'open', solo: 'closed', local: 'closed' });
  const callsWhenOpened = counter.connections;

  // Open: the dead backend hears nothing more; stores go to local at once.
  for (let i = 0; i < 3; i++) expect(await stored()).toMatchObject({ ref: { driver: 'local' }, driversTried: ['local'], failedOver: true });
  expect(counter.connections).toBe(callsWhenOpened);

  await s3.start();
  // Still open until the cool-down ends: no call yet, even with the server back.
  expect(await stored()).toMatchObject({ ref: { driver: 'local' } });
  expect(counter.connections).toBe(callsWhenOpened);
  await eventually(async () => ((await breakers()).worm === 'half-open' ? true : undefined), COOL_DOWN_MS * 3, 'the cool-down to end');

  // The probe succeeds and closes it; the stores after it go to worm again.
  expect(await stored()).toMatchObject({ ref: { driver: 'worm' }, driversTried: ['worm'], failedOver: false });
  expect(counter.connections).toBeGreaterThan(callsWhenOpened);
  expect(await breakers()).toEqual({ worm: 'closed', solo: 'closed', local: 'closed' });
  expect(await stored()).toMatchObject({ ref: { driver: 'worm' }, failedOver: false });
});

test('no failover driver: while its breaker is open the task waits as a delayed job, not failed, and completes once the backend is back', async () => {
  await s3.stop();
  try {
    // Two unavailable attempts open solo's breaker; the third attempt finds it open, and the task waits.
    const job = await store('solo');
    await eventually(async () => ((await job.getState()) === 'delayed' ? true : undefined), 30_000, 'the task to wait');
    expect(await breakers()).toMatchObject({ solo: 'open' });
    const callsWhenOpened = counter.connections;
    const second = await store('solo');
    await eventually(async () => ((await second.getState()) === 'delayed' ? true : undefined), 10_000, 'the second task to wait');
    expect(counter.connections).toBe(callsWhenOpened);
    const waiting = await client.queue.getJob(job.id ?? '');
    expect(waiting?.attemptsMade).toBe(0);
    expect(waiting?.failedReason ?? '').toBe('');

    await s3.start();
    for (const j of [job, second]) {
      const outcome = await settle(client, j, COOL_DOWN_MS * 10);
      expect(outcome).toMatchObject({ state: 'completed', result: { ref: { driver: 'solo' }, failedOver: false } });
    }
    expect(await breakers()).toMatchObject({ solo: 'closed' });
  } finally {
    await s3.start().catch(() => undefined);
  }
});
