import http from 'node:http';
import https from 'node:https';
import { readdir, readFile, readlink, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { StoreResult } from '../../src/contract';
import {
  archiveKeysBelow,
  cleanupAll,
  eventually,
  HttpSource,
  InProcessWorker,
  keyDay,
  queueClient,
  QueueClient,
  Settled,
  settle,
  sha256Hex,
  stagingEntries,
  startHttpSource,
  startInProcessWorker,
  TempDirs,
  testConfig,
  writePatternFile,
} from '../helpers/queue-harness';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { KiB, MiB, patternBytes } from '../helpers/streams';

/**
 * Every bad input of CONTRACT §2 fails at once with its code and is not retried,
 * even when the producer asked BullMQ for 3 attempts; and the worker keeps
 * serving afterwards.
 */
const INLINE_LIMIT = 1024;
const JOB_OPTIONS = { attempts: 3, backoff: { type: 'fixed', delay: 100 } };

const temp = new TempDirs();
let redis: RedisServer;
let worker: InProcessWorker | undefined;
let client: QueueClient;
let source: HttpSource | undefined;
let root: string;
let work: string;
let goodFile: string;
let goodBytes: Buffer;

/** Every outgoing HTTP(S) request the worker makes, by host; link-local ones are refused here, never sent. */
const requestedHosts: string[] = [];
const originalHttpRequest = http.request;
const originalHttpsRequest = https.request;

function hostOf(args: unknown[]): string {
  const [first, second] = args;
  if (first instanceof URL) return first.hostname;
  if (typeof first === 'string') return new URL(first).hostname;
  const options = (typeof second === 'object' && second !== null ? second : first) as { hostname?: string; host?: string } | undefined;
  return options?.hostname ?? options?.host ?? '';
}

function guard<T extends (...args: never[]) => unknown>(original: T): T {
  return ((...args: Parameters<T>) => {
    const host = hostOf(args).replace(/^\[|\]$/g, '');
    requestedHosts.push(host);
    if (host.startsWith('169.254.') || host.toLowerCase().startsWith('fe80:')) throw new Error(`test guard: refused to send traffic to ${host}`);
    return original(...args);
  }) as T;
}

beforeAll(async () => {
  jest.spyOn(http, 'request').mockImplementation(guard(originalHttpRequest));
  jest.spyOn(https, 'request').mockImplementation(guard(originalHttpsRequest));
  redis = await startRedis();
  root = path.join(await temp.make(), 'archive');
  work = await temp.make();
  const config = testConfig(
    {
      redis: { url: redis.url },
      queue: { attempts: 3, backoffMs: 50 },
      drivers: { local: { type: 'filesystem', root } },
      limits: { inlineBytes: INLINE_LIMIT },
    },
    work,
  );
  // Webhooks wired as in the worker process (none configured here): the failure path reads the job's data too.
  worker = await startInProcessWorker(config);
  client = await queueClient(redis.port);
  goodFile = path.join(work, 'good.bin');
  await writePatternFile(goodFile, 20 * KiB, 'good');
  goodBytes = patternBytes(20 * KiB, 'good');
  // Redirects a download to the cloud metadata address.
  source = await startHttpSource((_req, res) => {
    res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/' });
    res.end();
  });
});

afterAll(async () => {
  jest.restoreAllMocks();
  await cleanupAll(
    () => client?.close(),
    () => worker?.close(),
    () => source?.close(),
    () => redis?.stop(),
    () => temp.cleanup(),
  );
});

/** Adds a job with 3 BullMQ attempts and waits until it settled. */
async function run(operation: string, data: Record<string, unknown>): Promise<Settled> {
  return settle(client, await client.queue.add(operation, data, JOB_OPTIONS));
}

/** Failed at the first attempt with `code: ...`, never retried (so never delayed for a retry). */
function expectFailedOnce(done: Settled, code: string, field?: string): void {
  expect({ state: done.state, failedReason: done.failedReason }).toEqual({ state: 'failed', failedReason: expect.stringMatching(new RegExp(`^${code}: `)) });
  expect(done.job.attemptsMade).toBe(1);
  if (field !== undefined) expect(done.failedReason).toMatch(new RegExp(`^${code}: ${field.replace(/[.[\]]/g, '\\$&')}: `));
}

async function storeGood(extra: Record<string, unknown> = {}, file = goodFile): Promise<StoreResult> {
  const done = await run('store', { source: { path: file }, name: 'good.zip', ...extra });
  expect(done.failedReason).toBeUndefined();
  expect(done.state).toBe('completed');
  return done.result as StoreResult;
}

/** Open descriptors of this process (where the in-process worker runs) that point at `file`. */
async function openDescriptorsOf(file: string): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target === file);
}

/** A closed archive shows no descriptor; closing is asynchronous, so allow it a moment (2 s at most). */
async function expectClosed(file: string): Promise<void> {
  const closed = await eventually(async () => ((await openDescriptorsOf(file)).length === 0 ? true : undefined), 2_000, `${file} to be closed`).catch(
    () => false,
  );
  expect({ file, open: await openDescriptorsOf(file), closed }).toEqual({ file, open: [], closed: true });
}

describe('invalid tasks: invalid_task naming the field, not retried', () => {
  const cases: Array<[string, string, () => Record<string, unknown>, string]> = [
    ["name '../x'", 'store', () => ({ source: { path: goodFile }, name: '../x' }), 'name'],
    ["name 'a/b'", 'store', () => ({ source: { path: goodFile }, name: 'a/b' }), 'name'],
    ['name with NUL', 'store', () => ({ source: { path: goodFile }, name: 'a\u0000b.zip' }), 'name'],
    ['name of 256 bytes', 'store', () => ({ source: { path: goodFile }, name: 'n'.repeat(256) }), 'name'],
    ['name of 128 two-byte characters (256 bytes of UTF-8)', 'store', () => ({ source: { path: goodFile }, name: 'é'.repeat(128) }), 'name'],
    ['missing source', 'store', () => ({ name: 'x.zip' }), 'source'],
    ['two sources', 'store', () => ({ source: { path: goodFile, base64: 'QUJD' }, name: 'x.zip' }), 'source'],
    ['sha256 not 64 hex digits', 'store', () => ({ source: { path: goodFile }, name: 'x.zip', sha256: 'abc123' }), 'sha256'],
    ['unknown field', 'store', () => ({ source: { path: goodFile }, name: 'x.zip', colour: 'red' }), 'colour'],
    ["taskId '..'", 'store', () => ({ taskId: '..', source: { path: goodFile }, name: 'x.zip' }), 'taskId'],
    ['relative source path', 'store', () => ({ source: { path: 'good.bin' }, name: 'x.zip' }), 'source.path'],
    ['retrieve of a key outside the scheme', 'retrieve', () => ({ ref: { driver: 'local', key: '../../etc/passwd' }, target: { inline: true } }), 'ref.key'],
    ['retrieve without a target', 'retrieve', () => ({ ref: { driver: 'local', key: '2024/01/02/t1/x.zip' } }), 'target'],
    ['check without a driver', 'check', () => ({}), 'driver'],
    // Node refuses such headers when it sends the request, which used to be retried as internal.
    [
      'CR/LF in a source header value',
      'store',
      () => ({ source: { url: 'http://depot-test.invalid/x', headers: { 'X-Token': 'a\r\nX-Injected: 1' } }, name: 'x.zip' }),
      'source.headers.X-Token',
    ],
    [
      'CR/LF in a source header name',
      'store',
      () => ({ source: { url: 'http://depot-test.invalid/x', headers: { 'X-A\r\nX-B': 'v' } }, name: 'x.zip' }),
      'source.headers',
    ],
    [
      'a source header value beyond Latin-1',
      'store',
      () => ({ source: { url: 'http://depot-test.invalid/x', headers: { 'X-Name': 'Łukasz' } }, name: 'x.zip' }),
      'source.headers.X-Name',
    ],
    // Its 48-bit time reads as the year 10889: no YYYY/MM/DD key can hold it.
    [
      'a UUIDv7 taskId beyond the year 9999',
      'store',
      () => ({ taskId: 'ffffffff-ffff-7fff-bfff-ffffffffffff', source: { path: goodFile }, name: 'x.zip' }),
      'taskId',
    ],
  ];

  it.each(cases)('%s', async (_title, operation, data, field) => {
    const done = await run(operation, data());
    expectFailedOnce(done, 'invalid_task', field);
  });

  it.each(['store', 'retrieve', 'delete', 'check'])('job data null (a plain BullMQ producer) for %s: invalid_task on data', async (operation) => {
    const done = await settle(client, await client.queue.add(operation, null, JOB_OPTIONS));
    expectFailedOnce(done, 'invalid_task', 'data');
  });

  it('job data that is not an object (an array, a string): invalid_task on data', async () => {
    expectFailedOnce(await settle(client, await client.queue.add('store', [{ name: 'x.zip' }], JOB_OPTIONS)), 'invalid_task', 'data');
    expectFailedOnce(await settle(client, await client.queue.add('check', 'local', JOB_OPTIONS)), 'invalid_task', 'data');
  });

  it('an unknown operation name', async () => {
    const done = await run('frobnicate', { source: { path: goodFile }, name: 'x.zip' });
    expectFailedOnce(done, 'invalid_task', 'name');
    expect(done.failedReason).toContain('frobnicate');
  });

  it(`base64 over limits.inlineBytes (${INLINE_LIMIT})`, async () => {
    const done = await run('store', { source: { base64: patternBytes(INLINE_LIMIT + 1, 'big').toString('base64') }, name: 'x.zip' });
    expectFailedOnce(done, 'invalid_task', 'source.base64');
  });

  it('a URL to the link-local metadata address, and a redirect to it: refused before connecting', async () => {
    const direct = await run('store', { source: { url: 'http://169.254.169.254/latest/meta-data/' }, name: 'x.zip' });
    expectFailedOnce(direct, 'invalid_task', 'source.url');
    const decimal = await run('store', { source: { url: 'http://2852039166/latest/meta-data/' }, name: 'x.zip' });
    expectFailedOnce(decimal, 'invalid_task', 'source.url');
    const v6 = await run('store', { source: { url: 'http://[fe80::1]/' }, name: 'x.zip' });
    expectFailedOnce(v6, 'invalid_task', 'source.url');
    const redirected = await run('store', { source: { url: source?.url('/redirect') ?? '' }, name: 'x.zip' });
    expectFailedOnce(redirected, 'invalid_task', 'source.url');
    // The redirecting server was asked (once: not retried); the metadata address never.
    expect(requestedHosts).toContain('127.0.0.1');
    expect(requestedHosts.filter((host) => host === '127.0.0.1')).toHaveLength(1);
    expect(requestedHosts.filter((host) => host.startsWith('169.254.') || host.startsWith('fe80'))).toEqual([]);
    expect(await archiveKeysBelow(root)).toEqual(expect.not.arrayContaining([expect.stringMatching(/\/x\.zip$/)]));
  });
});

describe('failures of valid tasks, each with its code and not retried', () => {
  it('unknown driver: unknown_driver', async () => {
    expectFailedOnce(await run('store', { source: { path: goodFile }, name: 'x.zip', driver: 'nowhere' }), 'unknown_driver', 'driver');
    expectFailedOnce(await run('store', { source: { path: goodFile }, name: 'x.zip', fallbacks: ['nowhere'] }), 'unknown_driver', 'fallbacks[0]');
    expectFailedOnce(await run('check', { driver: 'nowhere' }), 'unknown_driver');
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])(
    'a driver named like an object property (%s): unknown_driver, not retried',
    async (name) => {
      expectFailedOnce(await run('store', { source: { path: goodFile }, name: 'x.zip', driver: name }), 'unknown_driver', 'driver');
      expectFailedOnce(await run('store', { source: { path: goodFile }, name: 'x.zip', fallbacks: [name] }), 'unknown_driver', 'fallbacks[0]');
      expectFailedOnce(await run('check', { driver: name }), 'unknown_driver', 'driver');
      const ref = { driver: name, key: `${keyDay(new Date())}/t1/x.zip` };
      expectFailedOnce(await run('retrieve', { ref, target: { inline: true } }), 'unknown_driver', 'ref.driver');
      expectFailedOnce(await run('delete', { ref }), 'unknown_driver', 'ref.driver');
    },
  );

  it('missing source file: source_unavailable, not retried', async () => {
    const done = await run('store', { source: { path: path.join(work, 'no-such-file.zip') }, name: 'x.zip' });
    expectFailedOnce(done, 'source_unavailable', 'source.path');
  });

  it('wrong sha256: integrity, nothing published', async () => {
    const done = await run('store', { taskId: 'wrong-sum', source: { path: goodFile }, name: 'x.zip', sha256: sha256Hex(Buffer.from('other bytes')) });
    expectFailedOnce(done, 'integrity');
    const size = await run('store', { taskId: 'wrong-size', source: { path: goodFile }, name: 'x.zip', size: goodBytes.length + 1 });
    expectFailedOnce(size, 'integrity');
    const keys = await archiveKeysBelow(root);
    expect(keys.filter((key) => key.includes('/wrong-sum/') || key.includes('/wrong-size/'))).toEqual([]);
    expect((await readdir(root, { recursive: true })).filter((entry) => entry.includes('wrong-s'))).toEqual([]);
    expect(await stagingEntries(root)).toEqual([]);
  });

  it('retrieve of a missing key: not_found', async () => {
    const done = await run('retrieve', { ref: { driver: 'local', key: `${keyDay(new Date())}/nobody/missing.zip` }, target: { inline: true } });
    expectFailedOnce(done, 'not_found');
  });

  it('retrieve to an existing target path: conflict, the file untouched, no descriptor left open', async () => {
    // Larger than the read-ahead, so the archive is still open when the retrieve is refused.
    const bigFile = path.join(work, 'big.bin');
    await writePatternFile(bigFile, 4 * MiB, 'big');
    const stored = await storeGood({ taskId: 'conflict-src' }, bigFile);
    const target = path.join(work, 'existing.zip');
    await writeFile(target, 'precious bytes\n');
    const past = new Date('2020-01-01T00:00:00Z');
    await utimes(target, past, past);
    const done = await run('retrieve', { ref: stored.ref, target: { path: target } });
    expectFailedOnce(done, 'conflict', 'target.path');
    expect(await readFile(target, 'utf8')).toBe('precious bytes\n');
    expect((await stat(target)).mtime.toISOString()).toBe(past.toISOString());
    expect((await readdir(work)).filter((entry) => entry.includes('depot-part'))).toEqual([]);
    await expectClosed(path.join(root, ...stored.ref.key.split('/')));
  });

  it('retrieve inline of an archive over limits.inlineBytes: invalid_task, no descriptor left open', async () => {
    const stored = await storeGood({ taskId: 'inline-too-big' });
    const done = await run('retrieve', { ref: stored.ref, target: { inline: true } });
    expectFailedOnce(done, 'invalid_task', 'target.inline');
    await expectClosed(path.join(root, ...stored.ref.key.split('/')));
  });

  it('delete under retention: retention, the archive stays', async () => {
    const stored = await storeGood({ taskId: 'retained', retainUntil: '2099-01-01T00:00:00Z' });
    const done = await run('delete', { ref: stored.ref });
    expectFailedOnce(done, 'retention');
    expect(await archiveKeysBelow(root)).toContain(stored.ref.key);
    expect((await readFile(path.join(root, ...stored.ref.key.split('/')))).equals(goodBytes)).toBe(true);
  });
});

describe('after all of that', () => {
  it('the worker keeps serving: a good store completes', async () => {
    const result = await storeGood({ taskId: 'after-bad-input' });
    expect(result).toMatchObject({ size: goodBytes.length, sha256: sha256Hex(goodBytes), attempts: 1, driversTried: ['local'] });
    const inline = patternBytes(INLINE_LIMIT, 'exactly-the-limit');
    const atLimit = await run('store', { source: { base64: inline.toString('base64') }, name: 'limit.bin' });
    expect(atLimit.state).toBe('completed');
    expect(atLimit.result).toMatchObject({ size: INLINE_LIMIT, sha256: sha256Hex(inline) });
    const counts = await client.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    expect(counts).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0 });
  });
});
