/**
 * The moodle driver against the fake Moodle (test/helpers/fake-moodle.ts) where the
 * conformance suite does not look: every failure Moodle can answer with, mapped to the
 * contract's code; a Moodle that stops mid-upload or mid-download; a name clash decided
 * by Moodle's unique path; the connection check's writeOnce; and the token, which must
 * never appear in a URL, an error or a log line.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { once } from 'node:events';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { runnerSettings } from '../../src/archiving/runner-settings';
import { TaskRunner } from '../../src/archiving/task-runner';
import { openCatalog } from '../../src/catalog/open';
import { archiveKey, DepotError, newTaskId, parseArchiveKey, StoreResult } from '../../src/contract';
import { StorageAPI } from '../../src/storage/api';
import { ArchiveStore } from '../../src/storage/archive-store';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { MoodleDriver, moodleSettingsSchema } from '../../src/storage/drivers/moodle';
import { moodleFilename, moodlePath } from '../../src/storage/drivers/moodle/paths';
import { createLogger, silentLogger } from '../../src/support/logging';
import { Redactor } from '../../src/support/redaction';
import { failure } from '../helpers/depot-failure';
import { FakeMoodleOptions, FakeMoodleSite, startFakeMoodle } from '../helpers/fake-moodle';
import { taskContext, testConfig } from '../helpers/queue-harness';
import { digestOf, KiB, MiB, patternBytes, readAll } from '../helpers/streams';

let site: FakeMoodleSite;
const drivers: MoodleDriver[] = [];

async function restart(options: FakeMoodleOptions): Promise<void> {
  await site.moodle.close();
  site = await startFakeMoodle(options);
}

beforeEach(async () => {
  site = await startFakeMoodle();
});

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
  await site?.moodle.close();
});

function driver(overrides: Record<string, unknown> = {}, logger = silentLogger()): MoodleDriver {
  const settings = moodleSettingsSchema.parse({
    type: 'moodle',
    url: site.moodle.url,
    token: site.token,
    courseId: site.courseId,
    timeoutMs: 5000,
    ...overrides,
  });
  const made = new MoodleDriver('moodle', settings, logger);
  drivers.push(made);
  return made;
}

function store(d = driver()): ArchiveStore {
  return new ArchiveStore(d, silentLogger());
}

function ref(name = 'exam.zip') {
  const taskId = newTaskId();
  return { key: archiveKey(new Date(), taskId, name), taskId, name };
}

async function put(s: ArchiveStore, bytes: Buffer, r = ref(), extra: Record<string, unknown> = {}) {
  return s.store({ ...r, body: Readable.from([bytes]), ...extra });
}

/** Nothing of a failed store is left: no archive, no manifest, no draft. */
function expectNothingLeft(): void {
  expect(site.moodle.areaEntries(site.courseId)).toEqual([]);
  expect(site.moodle.draftEntries()).toEqual([]);
}

describe('settings', () => {
  test('the contract defaults (§11), the site URL normalised, registered as type moodle', () => {
    const settings = moodleSettingsSchema.parse({ type: 'moodle', url: 'https://moodle.example.org/lms/', token: 'abc123', courseId: 42 });
    expect(settings).toMatchObject({
      url: 'https://moodle.example.org/lms',
      component: 'local_depot',
      filearea: 'archive',
      functions: {
        store: 'local_depot_store_file',
        retrieve: 'local_depot_get_file',
        delete: 'local_depot_delete_file',
        list: 'local_depot_list_files',
        space: 'local_depot_get_space',
      },
    });
    expect(defaultDriverFactory().types()).toContain('moodle');
    expect(defaultDriverFactory().definition('moodle')?.secretFields).toEqual(['token']);
  });

  test('refused: a URL with a query or credentials, a token Moodle could not read, a bad course, unknown keys; messages never echo the token', () => {
    const bad = [
      { url: 'https://moodle.example.org/?x=1' },
      { url: 'https://user:pw@moodle.example.org' },
      { url: 'ftp://moodle.example.org' },
      { token: 'has-dash-s3cr3t' },
      { courseId: 0 },
      { functions: { store: 'Bad Name' } },
      { extra: true },
    ];
    for (const overrides of bad) {
      const result = moodleSettingsSchema.safeParse({ type: 'moodle', url: 'https://moodle.example.org', token: 'abc', courseId: 1, ...overrides });
      expect(result.success).toBe(false);
      expect(JSON.stringify(result.error?.issues)).not.toContain('s3cr3t');
    }
  });

  test('archive names to Moodle file names follow the table local_depot is tested against', () => {
    const table = JSON.parse(readFileSync(path.join(__dirname, '../../moodle/local_depot/tests/fixtures/filenames.json'), 'utf8')) as {
      name: string;
      filename: string;
    }[];
    for (const row of table) expect(moodleFilename(row.name)).toBe(row.filename);
  });
});

describe('failures, mapped to the contract', () => {
  test('a token Moodle does not know: auth, on stores, reads and the check', async () => {
    const s = store(driver({ token: 'f'.repeat(32) }));
    expect((await failure(put(s, Buffer.from('x')))).code).toBe('auth');
    expect((await failure(s.stat(ref().key))).code).toBe('auth');
    const check = await s.check();
    expect(check).toMatchObject({ ok: false, error: { code: 'auth' } });
    expectNothingLeft();
  });

  test('an expired token: auth, told apart from a misconfigured service without debuginfo (through site info) and with it', async () => {
    site.moodle.tokens.get(site.token)!.validuntil = 1;
    expect((await failure(store().stat(ref().key))).code).toBe('auth');
    await restart({ debug: true });
    site.moodle.tokens.get(site.token)!.validuntil = 1;
    const error = await failure(store().stat(ref().key));
    expect(error.code).toBe('auth');
    expect(error.message).toContain('token expired');
  });

  test('a function the service does not allow: misconfigured, naming the function', async () => {
    site.service.functions.delete('local_depot_get_file');
    const error = await failure(store().stat(ref().key));
    expect(error.code).toBe('misconfigured');
    expect(error.message).toContain('local_depot_get_file');
    const check = await store().check();
    expect(check).toMatchObject({ ok: false, error: { code: 'misconfigured' } });
    expect(check.error?.message).toContain('local_depot_get_file');
  });

  test('a service without uploads or downloads: misconfigured, saying which', async () => {
    site.service.uploadfiles = false;
    const upload = await failure(put(store(), Buffer.from('x')));
    expect(upload.code).toBe('misconfigured');
    expect(upload.message).toContain('uploads');
    expectNothingLeft();
    site.service.uploadfiles = true;
    const s = store();
    const r = ref();
    await put(s, Buffer.from('x'), r);
    site.service.downloadfiles = false;
    const download = await failure(s.retrieve(r.key));
    expect(download.code).toBe('misconfigured');
    expect(download.message).toContain('downloads');
  });

  test('no local/depot:manage in the course, a course that does not exist, REST off: misconfigured', async () => {
    site.user.capabilities.clear();
    expect((await failure(store().stat(ref().key))).code).toBe('misconfigured');
    expect((await failure(store(driver({ courseId: 9999 })).stat(ref().key))).code).toBe('misconfigured');
    await restart({ restProtocol: false });
    expect((await failure(store().stat(ref().key))).code).toBe('misconfigured');
  });

  test("an archive over Moodle's maxbytes, PHP's upload_max_filesize or post_max_size: no_space (another driver may take it), nothing left", async () => {
    for (const options of [{ maxbytes: 100 * KiB }, { uploadMaxFilesize: 100 * KiB }, { postMaxSize: 100 * KiB }]) {
      await restart(options);
      const error = await failure(put(store(), patternBytes(200 * KiB, 'big'), ref(), { size: 200 * KiB }));
      expect(error.code).toBe('no_space');
      expectNothingLeft();
      // Smaller archives still go in.
      expect((await put(store(), patternBytes(10 * KiB, 'small'))).created).toBe(true);
    }
  });

  test('a URL that is no Moodle, a server that is not there: misconfigured, unavailable', async () => {
    expect((await failure(store(driver({ url: `${site.moodle.url}/nowhere` })).stat(ref().key))).code).toBe('misconfigured');
    const gone = site.moodle.url;
    await site.moodle.close();
    const d = new MoodleDriver('moodle', moodleSettingsSchema.parse({ type: 'moodle', url: gone, token: site.token, courseId: 42 }), silentLogger());
    expect((await failure(store(d).stat(ref().key))).code).toBe('unavailable');
    await d.close();
    site = await startFakeMoodle();
  });
});

describe('interrupted transfers', () => {
  test('a Moodle that accepts and never answers: unavailable after timeoutMs', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => void sockets.push(socket));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const started = Date.now();
      const error = await failure(store(driver({ url: `http://127.0.0.1:${port}`, timeoutMs: 300 })).stat(ref().key));
      expect(error.code).toBe('unavailable');
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('a Moodle that stops mid-upload: unavailable, nothing filed, no draft; a retry stores', async () => {
    site.moodle.cutUploadAfter = 256 * KiB;
    const s = store();
    const r = ref();
    const bytes = patternBytes(2 * MiB, 'cut');
    const error = await failure(put(s, bytes, r));
    expect(error.code).toBe('unavailable');
    expectNothingLeft();
    site.moodle.cutUploadAfter = undefined;
    expect((await put(s, bytes, r)).created).toBe(true);
    expect(digestOf(await readAll((await s.retrieve(r.key)).stream))).toEqual(digestOf(bytes));
  });

  test('a download cut short: unavailable, never a short archive', async () => {
    const s = store();
    const r = ref();
    await put(s, patternBytes(MiB, 'download'), r);
    site.moodle.cutDownloadAfter = 100 * KiB;
    const { stream } = await s.retrieve(r.key);
    const error = await failure(readAll(stream));
    expect(error.code).toBe('unavailable');
  });

  test('an upload aborted by depot leaves nothing', async () => {
    const controller = new AbortController();
    const body = new PassThrough();
    body.write(patternBytes(64 * KiB, 'abort'));
    setTimeout(() => controller.abort(), 50);
    const error = await failure(store().store({ ...ref(), body, signal: controller.signal }));
    expect(error.code).toBe('unavailable');
    expectNothingLeft();
  });
});

describe('write-once, decided by Moodle', () => {
  test("a name clash: another writer's archive filed between depot's look and its store wins; depot's store is a conflict and replaces nothing", async () => {
    const r = ref();
    const parsed = parseArchiveKey(r.key);
    if (!parsed.ok) throw new Error(parsed.problem);
    const where = moodlePath(parsed.key);
    const theirs = patternBytes(5 * KiB, 'theirs');
    const theirManifest = JSON.stringify({ ...r, size: theirs.length, sha256: digestOf(theirs).sha256, storedAt: new Date().toISOString(), metadata: {} });
    // Another depot worker files other bytes under the same key after depot's stat found it free, right before depot's transaction.
    site.moodle.beforeStoreTransaction = async () => {
      site.moodle.beforeStoreTransaction = undefined;
      await site.moodle.plant(site.courseId, 'archive', where.filepath, where.filename, theirs, theirManifest);
    };
    const s = store();
    const error = await failure(put(s, patternBytes(6 * KiB, 'ours'), r));
    expect(error.code).toBe('conflict');
    expect(digestOf(await readAll((await s.retrieve(r.key)).stream))).toEqual(digestOf(theirs));
    expect(site.moodle.areaEntries(site.courseId)).toEqual([`0${where.filepath}exam.zip`, `1${where.filepath}exam.zip`]);
    expect(site.moodle.draftEntries()).toEqual([]);
  });

  test('the same archive stored twice at once: one creates it, the other finds it its own (created: false)', async () => {
    const r = ref();
    const bytes = patternBytes(300 * KiB, 'twice');
    const [a, b] = await Promise.all([put(store(), bytes, r), put(store(), bytes, r)]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a.manifest).toEqual(b.manifest);
  });

  test('check: writeOnce enforced with local_depot; best_effort (and a warning) with a store function that replaces', async () => {
    const ok = await store().check();
    expect(ok).toMatchObject({ ok: true, writeOnce: 'enforced' });
    expect(ok.space).toMatchObject({ usedBytes: 0 });
    expect(site.moodle.areaEntries(site.courseId)).toEqual([]);
    site.moodle.storeReplaces = true;
    const lines: string[] = [];
    const logger = createLogger({ stream: new PassThrough().on('data', (c: Buffer) => lines.push(c.toString())), redactor: new Redactor() });
    const replaced = await store(driver({}, logger)).check();
    expect(replaced).toMatchObject({ ok: true, writeOnce: 'best_effort' });
    expect(lines.join('')).toContain('replaced an existing file');
  });
});

describe('listing', () => {
  test('pages through more archives than one page holds, each once, by prefix', async () => {
    const s = store();
    const day = new Date('2026-11-27T12:00:00Z');
    const keys: string[] = [];
    for (let i = 0; i < 205; i++) {
      const taskId = newTaskId();
      const key = archiveKey(day, taskId, `a-${i}.zip`);
      keys.push(key);
      await s.store({ key, taskId, name: `a-${i}.zip`, body: Readable.from([Buffer.from(`archive ${i}`)]) });
    }
    const other = ref();
    await put(s, Buffer.from('elsewhere'), other);
    const listed: string[] = [];
    for await (const manifest of s.list('2026/11/27/')) listed.push(manifest.key);
    expect(listed.sort()).toEqual([...keys].sort());
    const all: string[] = [];
    for await (const manifest of s.list('')) all.push(manifest.key);
    expect(all).toHaveLength(206);
  }, 60_000);
});

describe('the token', () => {
  test('never in a URL, an error, a result or a log line', async () => {
    const lines: string[] = [];
    // A redactor that does not know the token: the driver must keep it out by itself.
    const logger = createLogger({ stream: new PassThrough().on('data', (c: Buffer) => lines.push(c.toString())), redactor: new Redactor() });
    const d = driver({}, logger);
    const s = new ArchiveStore(d, logger);
    const r = ref();
    const stored = await put(s, Buffer.from('secret-free'), r);
    await readAll((await s.retrieve(r.key)).stream);
    const check = await s.check();
    const errors: DepotError[] = [];
    site.service.functions.delete('local_depot_get_file');
    errors.push(await failure(s.stat(r.key)));
    site.service.uploadfiles = false;
    errors.push(await failure(put(s, Buffer.from('y'))));
    site.moodle.cutUploadAfter = 10;
    site.service.uploadfiles = true;
    errors.push(await failure(put(s, Buffer.from('z'.repeat(1000)))));
    site.moodle.tokens.clear();
    errors.push(await failure(s.stat(r.key)));
    const seen = [
      JSON.stringify(stored),
      JSON.stringify(check),
      ...errors.map((e) => `${e.message} ${String(e.stack)}`),
      ...lines,
      ...site.moodle.requests.map((q) => q.url),
    ];
    expect(site.moodle.requests.length).toBeGreaterThan(5);
    for (const text of seen) expect(text).not.toContain(site.token);
    // Every request went to a script path only: no query at all.
    for (const q of site.moodle.requests) expect(q.url).not.toContain('?');
  });
});

describe('uploads carry a Content-Length when the length is known', () => {
  test('a path source without a declared size: upload.php gets the file with its Content-Length; inline bytes too', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'depot-moodle-length-'));
    try {
      const file = path.join(dir, 'exam.zip');
      const bytes = patternBytes(300 * KiB, 'length');
      await writeFile(file, bytes);
      const config = testConfig(
        {
          drivers: { moodle: { type: 'moodle', url: site.moodle.url, token: '${MOODLE_TOKEN}', courseId: site.courseId, timeoutMs: 5000 } },
          paths: { allowed: [dir] },
          catalog: { url: `sqlite:${path.join(dir, 'catalog.sqlite')}` },
        },
        dir,
        { MOODLE_TOKEN: site.token },
      );
      const catalog = await openCatalog(config.catalog, 'write');
      const storage = new StorageAPI(config, defaultDriverFactory(), silentLogger());
      try {
        const runner = new TaskRunner(storage, runnerSettings(config), silentLogger(), catalog);
        const uploads = () => site.moodle.requests.filter((r) => r.script === '/webservice/upload.php');

        const stored = (await runner.processTask('store', { source: { path: file }, name: 'exam.zip' }, taskContext('job-1'))) as StoreResult;
        expect(stored).toMatchObject(digestOf(bytes));
        expect(uploads()).toHaveLength(1);
        // The multipart envelope adds its boundaries and headers to the file's own bytes.
        expect(uploads()[0].contentLength).toBeGreaterThan(bytes.length);

        const inline = Buffer.from('inline archive bytes');
        await runner.processTask('store', { source: { base64: inline.toString('base64') }, name: 'inline.zip' }, taskContext('job-2'));
        expect(uploads()).toHaveLength(2);
        expect(uploads()[1].contentLength).toBeGreaterThan(inline.length);
      } finally {
        await storage.close();
        await catalog.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
