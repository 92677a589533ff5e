import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ArchiveKey, DepotError, Manifest, parseArchiveKey, Space } from '../../../contract';
import { ignoreFailure } from '../../../support/ignore';
import type { Logger } from '../../../support/logging';
import type { ArchiveBody, DriverCapabilities, ProbeReport, PublishOutcome, StorageDriver } from '../../driver';
import { DEFAULT_DRIVER_TIMEOUT_MS } from '../../driver-settings';
import { foreignObject, parseManifest, serializeManifest } from '../../manifest';
import { probeName, runProbe } from '../../probe';
import { FileLocation, MoodleClient, MoodleRefusal, SiteInfo } from './client';
import { codeFor, moodleError, scrub } from './errors';
import { characters, MAX_MOODLE_NAME, MoodlePath, moodlePath, pathPrefix } from './paths';
import type { MoodleSettings } from './types';

/** local_depot_store_file's answer (moodle/local_depot/classes/external/store_file.php). */
interface StoreAnswer {
  status: string;
  manifest: string;
  file: FileLocation;
}

/** local_depot_get_file's answer. */
interface GetAnswer {
  found: boolean;
  manifest: string;
  file?: FileLocation;
}

/** local_depot_list_files's answer: a page, and where the next starts (0: none). */
interface ListAnswer {
  files: { filepath: string; filename: string; filesize: number; manifest: string }[];
  next: number;
}

/** local_depot_get_space's answer. */
interface SpaceAnswer {
  usedbytes: number;
  freebytes?: number;
  totalbytes?: number;
}

/** Archives per list page. */
const LIST_PAGE = 200;
/** A probe or manifest read into memory is never larger. */
const SMALL_FILE_LIMIT = 1024 * 1024;
/** See client.ts: the store function reads the whole archive for its sha256 before it answers. */
const SERVER_BYTES_PER_MS = 20 * 1024;
/** Connection-check probes lie on a day no archive key can have (keys need a real date: year 0000 is none). */
const PROBE_DAY = { year: '0000', month: '01', day: '01' };

/**
 * Write-once archives in a Moodle course's file area, through Moodle's web services and the
 * local_depot plugin (moodle/local_depot).
 *
 * A store streams the archive into a draft area (webservice/upload.php), then asks the store
 * function to file it at `/YYYY/MM/DD/<taskId>/<name>` with its manifest. Moodle decides in
 * one transaction: a path holds one file (the files table's unique pathnamehash), so a taken
 * path is never replaced, whoever took it and however close the race; the plugin answers
 * `exists` with the manifest found there and the shared layer settles retry or conflict. The
 * draft never becomes visible in the course, and the plugin files nothing whose size and
 * sha256 differ from what depot sent.
 */
export class MoodleDriver implements StorageDriver {
  readonly type = 'moodle';
  readonly capabilities: DriverCapabilities = { retention: false, space: true, list: true };
  private readonly client: MoodleClient;

  constructor(
    readonly name: string,
    private readonly settings: MoodleSettings,
    private readonly logger: Logger,
  ) {
    this.client = new MoodleClient(settings, name, settings.timeoutMs ?? DEFAULT_DRIVER_TIMEOUT_MS);
  }

  async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const where = this.locate(key);
    try {
      return await this.file(key, where, body, signal);
    } catch (error) {
      body.stream.destroy();
      throw signal.aborted ? new DepotError('unavailable', `${this.name}: store aborted`, { cause: error }) : error;
    }
  }

  private async file(key: ArchiveKey, where: MoodlePath, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const draftitemid = await this.upload(body.stream, body.declared.size, 'store: upload', signal);
    // The body ended cleanly (the shared layer's checks passed), so the manifest is complete.
    const manifest = body.manifest();
    const answer = await this.call<StoreAnswer>(
      'store',
      { draftitemid, ...where, sha256: manifest.sha256, manifest: serializeManifest(manifest).toString('utf8') },
      'store',
      { signal, extraMs: manifest.size / SERVER_BYTES_PER_MS },
    );
    this.assertLocation(answer.file, where, 'store');
    if (answer.status === 'created') return { status: 'created', manifest };
    if (answer.status !== 'exists') throw new DepotError('internal', `${this.name}: store: the store function answered status '${answer.status}'`);
    // A file at depot's key without a manifest: another writer's; never replaced, adopted or deleted.
    if (answer.manifest === '') throw foreignObject(this.name, key.text);
    return { status: 'exists', existing: parseManifest(answer.manifest, key.text) };
  }

  async retrieve(key: ArchiveKey, signal: AbortSignal): Promise<{ body: Readable; manifest: Manifest }> {
    const found = await this.lookup(key, 'retrieve');
    if (!found) throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
    return { body: await this.download(found.location, 'retrieve', signal), manifest: found.manifest };
  }

  async stat(key: ArchiveKey): Promise<Manifest | null> {
    return (await this.lookup(key, 'stat'))?.manifest ?? null;
  }

  async delete(key: ArchiveKey): Promise<void> {
    const answer = await this.call<{ deleted: boolean }>('delete', this.locate(key), 'delete');
    if (!answer.deleted) throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
  }

  async *list(prefix: string): AsyncIterable<Manifest> {
    const pathprefix = pathPrefix(prefix);
    if (pathprefix === null) return;
    let after = 0;
    do {
      const page = await this.call<ListAnswer>('list', { pathprefix, after, limit: LIST_PAGE }, 'list');
      for (const entry of page.files) {
        const manifest = this.listed(entry);
        if (manifest?.key.startsWith(prefix)) yield manifest;
      }
      after = page.next;
    } while (after > 0);
  }

  /**
   * The check: the token works, its service has every configured function and allows
   * uploads and downloads (core_webservice_get_site_info); then a probe is stored,
   * read back, compared and deleted; and a second probe tells whether the store
   * function really refuses to replace a file (`writeOnce: enforced`).
   */
  async check(signal: AbortSignal): Promise<ProbeReport> {
    const info = await this.siteInfo(signal);
    const names = new Set(info.functions.map((f) => f.name));
    const missing = Object.values(this.settings.functions).filter((fn) => !names.has(fn));
    if (missing.length > 0) {
      throw new DepotError('misconfigured', `${this.name}: check: the token's service lacks ${missing.join(', ')} (Site administration > Server > Web services > External services)`);
    }
    if (info.uploadfiles !== 1 || info.downloadfiles !== 1) {
      throw new DepotError('misconfigured', `${this.name}: check: the token's service must allow file uploads and downloads ("Can upload files", "Can download files")`);
    }
    const probe = probeKey();
    const timings = await runProbe({
      write: async (bytes) => {
        const answer = await this.storeProbe(probe, bytes, signal);
        if (answer.status !== 'created') throw new DepotError('internal', `${this.name}: check: the probe's path was taken`);
      },
      read: () => this.readProbe(probe, signal),
      remove: () => this.deleteProbe(probe),
    });
    const enforced = await this.storeRefusesReplacing(signal).catch((error: unknown) => {
      this.logger.warn(`${this.name}: check: could not try whether the store function replaces files: ${error instanceof Error ? error.message : String(error)}`, { driver: this.name });
      return false;
    });
    return { ...timings, writeOnce: enforced ? 'enforced' : 'best_effort' };
  }

  /** The area's used bytes and, where Moodle knows them, the file pool's free and total bytes. */
  async space(): Promise<Space> {
    const answer = await this.call<SpaceAnswer>('space', {}, 'space');
    const space: Space = { usedBytes: answer.usedbytes };
    if (typeof answer.freebytes === 'number') space.freeBytes = answer.freebytes;
    if (typeof answer.totalbytes === 'number') space.totalBytes = answer.totalbytes;
    return space;
  }

  async close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }

  /** Path and file name of a key; a name longer than Moodle keeps once escaped is refused before any byte moves. */
  private locate(key: ArchiveKey): MoodlePath {
    const where = moodlePath(key);
    if (characters(where.filename) > MAX_MOODLE_NAME) {
      throw new DepotError('invalid_task', `as a Moodle file name (& < > " \` | ' : % written %XX) it has more than ${MAX_MOODLE_NAME} characters`, {
        field: 'name',
      });
    }
    return where;
  }

  /** The archive at a key with its manifest, or null; a file without manifest is another writer's. */
  private async lookup(key: ArchiveKey, action: string): Promise<{ location: FileLocation; manifest: Manifest } | null> {
    const where = this.locate(key);
    const answer = await this.call<GetAnswer>('retrieve', where, action);
    if (!answer.found || !answer.file) return null;
    this.assertLocation(answer.file, where, action);
    if (answer.manifest === '') throw foreignObject(this.name, key.text);
    const manifest = parseManifest(answer.manifest, key.text);
    if (answer.file.filesize !== manifest.size) {
      throw new DepotError('integrity', `${this.name}:${key.text} has ${answer.file.filesize} bytes, its manifest says ${manifest.size}`);
    }
    return { location: answer.file, manifest };
  }

  /** A listed archive's manifest, when it is one of depot's at the path its key names; others are passed by. */
  private listed(entry: ListAnswer['files'][number]): Manifest | null {
    if (entry.manifest === '') return null;
    let key: unknown;
    try {
      key = (JSON.parse(entry.manifest) as { key?: unknown }).key;
    } catch {
      return null;
    }
    if (typeof key !== 'string') return null;
    const parsed = parseArchiveKey(key);
    if (!parsed.ok) return null;
    const where = moodlePath(parsed.key);
    if (where.filepath !== entry.filepath || where.filename !== entry.filename) return null;
    try {
      return parseManifest(entry.manifest, key);
    } catch {
      return null;
    }
  }

  private assertLocation(file: FileLocation, where: MoodlePath, action: string): void {
    if (file.component !== this.settings.component || file.filearea !== this.settings.filearea) {
      throw new DepotError(
        'misconfigured',
        `${this.name}: ${action}: the functions file into ${file.component}/${file.filearea}, the driver is set up for ${this.settings.component}/${this.settings.filearea}`,
      );
    }
    if (file.filepath !== where.filepath || file.filename !== where.filename) {
      throw new DepotError('internal', `${this.name}: ${action}: the function answered for another file than asked`);
    }
  }

  /** One of the configured functions, with the area's parameters. */
  private async call<T>(
    fn: keyof MoodleSettings['functions'],
    params: Record<string, string | number>,
    action: string,
    options: { signal?: AbortSignal; extraMs?: number } = {},
  ): Promise<T> {
    const name = this.settings.functions[fn];
    try {
      return await this.client.call<T>(name, { courseid: this.settings.courseId, filearea: this.settings.filearea, ...params }, action, options);
    } catch (error) {
      throw await this.explain(error, action, { function: name });
    }
  }

  private async upload(source: Readable, size: number | undefined, action: string, signal: AbortSignal): Promise<number> {
    try {
      return await this.client.upload(source, size, action, signal);
    } catch (error) {
      // PHP drops a body over post_max_size whole, token included: upload.php then misses its token.
      if (error instanceof MoodleRefusal && error.failure.errorcode === 'missingparam') {
        throw new DepotError('no_space', `${this.name}: ${action}: the archive is larger than PHP's post_max_size on the Moodle server (PHP dropped the request)`);
      }
      throw await this.explain(error, action, { upload: true });
    }
  }

  private async download(location: FileLocation, action: string, signal: AbortSignal): Promise<Readable> {
    try {
      return await this.client.download(location, action, signal);
    } catch (error) {
      throw await this.explain(error, action, { download: true });
    }
  }

  private async siteInfo(signal?: AbortSignal): Promise<SiteInfo> {
    try {
      const info = await this.client.call<Omit<SiteInfo, 'functions'> & { functions?: unknown }>('core_webservice_get_site_info', {}, 'check: site info', { signal });
      const functions = Array.isArray(info.functions) ? (info.functions as { name?: unknown }[]).filter((f): f is { name: string } => typeof f?.name === 'string') : [];
      return { ...info, functions };
    } catch (error) {
      throw await this.explain(error, 'check: site info', { function: 'core_webservice_get_site_info' });
    }
  }

  /**
   * A Moodle error answer as the contract's code. webservice_access_exception says only
   * "Access control exception" (the reason is in debuginfo, which Moodle shows only when
   * debugging): whether the token as a whole is refused (`auth`) or the service lacks
   * something (`misconfigured`) is then asked of core_webservice_get_site_info.
   */
  private async explain(error: unknown, action: string, what: { function?: string; upload?: boolean; download?: boolean }): Promise<DepotError> {
    if (!(error instanceof MoodleRefusal)) {
      return error instanceof DepotError ? error : new DepotError('internal', scrub(`${this.name}: ${action}: ${String(error)}`, this.settings.token));
    }
    const failure = error.failure;
    if (failure.errorcode !== 'accessexception' || codeFor(failure) === 'auth' || failure.debuginfo) {
      return moodleError(this.name, action, failure, this.settings.token);
    }
    const misconfigured = (why: string) => new DepotError('misconfigured', `${this.name}: ${action}: Moodle refused access: ${why}`);
    let info: { functions?: unknown; uploadfiles?: unknown; downloadfiles?: unknown };
    try {
      info = await this.client.call('core_webservice_get_site_info', {}, 'check: site info');
    } catch (inner) {
      if (inner instanceof MoodleRefusal && (inner.failure.errorcode === 'accessexception' || codeFor(inner.failure) === 'auth')) {
        return new DepotError(
          'auth',
          `${this.name}: ${action}: Moodle refuses the token itself (expired, limited to other IP addresses, its user suspended or not authorised for the service, the service disabled, or core_webservice_get_site_info not in it)`,
        );
      }
      return moodleError(this.name, action, failure, this.settings.token);
    }
    const names = Array.isArray(info.functions) ? (info.functions as { name?: unknown }[]).map((f) => f?.name) : [];
    if (what.function && !names.includes(what.function)) {
      return misconfigured(`the token's service does not include ${what.function} (Site administration > Server > Web services > External services)`);
    }
    if (what.upload && info.uploadfiles !== 1) return misconfigured('the token\'s service does not allow file uploads ("Can upload files")');
    if (what.download && info.downloadfiles !== 1) return misconfigured('the token\'s service does not allow file downloads ("Can download files")');
    return moodleError(this.name, action, failure, this.settings.token);
  }

  private async storeProbe(key: ArchiveKey, bytes: Buffer, signal: AbortSignal): Promise<StoreAnswer> {
    const where = moodlePath(key);
    const draftitemid = await this.upload(Readable.from([bytes]), bytes.length, 'check: upload', signal);
    const manifest = probeManifest(key, bytes);
    return this.call<StoreAnswer>('store', { draftitemid, ...where, sha256: manifest.sha256, manifest: serializeManifest(manifest).toString('utf8') }, 'check: store', {
      signal,
    });
  }

  private async readProbe(key: ArchiveKey, signal: AbortSignal): Promise<Buffer> {
    const found = await this.lookup(key, 'check: read');
    if (!found) throw new DepotError('not_found', `${this.name}: check: the probe is not there after storing it`);
    const stream = await this.download(found.location, 'check: read', signal);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > SMALL_FILE_LIMIT) throw new DepotError('integrity', `${this.name}: check: the probe came back larger than it was`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  private async deleteProbe(key: ArchiveKey): Promise<void> {
    await this.call<{ deleted: boolean }>('delete', moodlePath(key), 'check: delete');
  }

  /**
   * Stores two probes of different bytes at one path: a store function that refuses to
   * replace answers `exists` with the first's manifest, and the first's bytes stay.
   */
  private async storeRefusesReplacing(signal: AbortSignal): Promise<boolean> {
    const key = probeKey();
    const first = randomBytes(64);
    const second = randomBytes(64);
    try {
      if ((await this.storeProbe(key, first, signal)).status !== 'created') return false;
      const again = await this.storeProbe(key, second, signal);
      const kept = again.status === 'exists' && again.manifest !== '' && parseManifest(again.manifest, key.text).sha256 === probeManifest(key, first).sha256;
      const refused = kept && (await this.readProbe(key, signal)).equals(first);
      if (!refused) {
        this.logger.warn(`${this.name}: the store function replaced an existing file: write-once then rests on depot's own check before each store`, {
          driver: this.name,
        });
      }
      return refused;
    } finally {
      await ignoreFailure(this.deleteProbe(key), 'a probe left behind is harmless: its day (0000/01/01) is no archive key');
    }
  }
}

function probeKey(): ArchiveKey {
  const taskId = probeName();
  return { ...PROBE_DAY, taskId, name: 'probe', text: `${PROBE_DAY.year}/${PROBE_DAY.month}/${PROBE_DAY.day}/${taskId}/probe` };
}

function probeManifest(key: ArchiveKey, bytes: Buffer): Manifest {
  return {
    name: key.name,
    key: key.text,
    size: bytes.length,
    sha256: createSha256(bytes),
    storedAt: new Date().toISOString(),
    taskId: key.taskId,
    metadata: {},
  };
}

function createSha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
