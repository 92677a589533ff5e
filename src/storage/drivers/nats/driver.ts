import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ArchiveKey, DepotError, Manifest, parseArchiveKey, Space, WriteOnce } from '../../../contract';
import { ignoreFailure } from '../../../support/ignore';
import type { Logger } from '../../../support/logging';
import type { ArchiveBody, DriverCapabilities, ProbeReport, PublishOutcome, StorageDriver } from '../../driver';
import { foreignObject } from '../../manifest';
import { probeName, runProbe } from '../../probe';
import { CHECK_DIR, STALE_STAGING_MS } from '../../staging';
import { NatsSession, Session } from './connection';
import { isWrongLastSequence, toDepotError } from './errors';
import { chunkSubject, digestOf, MANIFEST_ENTRY, manifestOf, metaSubject, newUploadId, ObjectInfo, StoredInfo } from './layout';
import { allInfos, chunksStored, firstLiveDescription, purgeSubject, readChunks, readInfo, uploadChunks, Uploaded } from './object-io';
import { publishRetried } from './publish';
import { spaceOf } from './space';
import type { NatsSettings } from './types';
import { sweepStaleUploads } from './upload-sweep';

/** How long a store waits for a writer admitted after it on the same key to withdraw (see confirmFirst). */
const LATER_WRITER_WAIT_MS = 5000;
/** How often a store tries to publish its description when the key's state keeps moving under it (a delete marker, a purge). */
const COMMIT_ROUNDS = 5;

/** A put either published its description, or found the key taken by another one (whose revision it read). */
type PutOutcome = { status: 'created'; info: ObjectInfo } | { status: 'taken'; current: StoredInfo };

/**
 * Write-once archives in a JetStream object store (`bucket`): the object's
 * name is the archive key; its bytes are chunk messages, its description
 * (ObjectInfo, with depot's manifest in its metadata) one message on the
 * key's meta subject. See docs/drivers/nats.md.
 *
 * Write-once, in this order: the chunks go to a subject of their own (a fresh
 * upload id per attempt), invisible while no description names them; the
 * store checks what it published against the shared layer's hash; then the
 * description is published with `Nats-Expected-Last-Subject-Sequence: 0` on
 * the key's meta subject. The server checks that condition within the
 * stream's one order of messages and refuses the publish when any message is
 * on the subject: of two writers only one can publish the description,
 * whatever their timing, and an existing archive is never replaced. The loser
 * removes its chunks and reports `exists` with the description it found;
 * the shared layer decides from the stored bytes whether that is its own
 * archive (idempotent) or not (`conflict`). After writing, the store looks
 * whether the server really let only its description through
 * (confirmFirst), since some releases did not on clusters.
 *
 * Crash ordering: a store that dies before its description leaves chunks no
 * description names (swept: `sweepStaleUploads`); delete removes the
 * description first (the archive is gone at once) and the chunks after.
 */
export class NatsDriver implements StorageDriver {
  readonly type = 'nats';
  /** Retention is depot's (ArchiveStore): JetStream has no per-message lock. Space: the server's own figures. */
  readonly capabilities: DriverCapabilities = { retention: false, space: true, list: true };
  private readonly session: NatsSession;
  private readonly timeoutMs: number;
  private readonly closing = new AbortController();
  private sweep?: Promise<void>;

  constructor(
    readonly name: string,
    private readonly settings: NatsSettings,
    private readonly logger: Logger,
  ) {
    this.session = new NatsSession(name, settings, logger);
    this.timeoutMs = this.session.timeoutMs;
  }

  private get bucket(): string {
    return this.settings.bucket;
  }

  private async open(what: string): Promise<Session> {
    try {
      return await this.session.get();
    } catch (error) {
      throw toDepotError(error, what);
    }
  }

  /** On first store: remove, in the background, the chunks that dead writers left (see sweepStaleUploads). */
  private startSweep(): void {
    this.sweep ??= this.sweepStaleUploads().then(
      (count) => {
        if (count > 0) this.logger.info(`removed the chunks of ${count} abandoned upload(s) in ${this.bucket}`, { driver: this.name });
      },
      (error: unknown) => {
        if (!this.closing.signal.aborted)
          this.logger.warn('could not sweep abandoned uploads', { driver: this.name, error: toDepotError(error, this.name).message });
      },
    );
  }

  /** Removes the chunks no description names whose writer is gone (see upload-sweep.ts); returns how many uploads. */
  async sweepStaleUploads(options: { olderThanMs?: number } = {}): Promise<number> {
    const what = `${this.name}: sweep ${this.bucket}`;
    const session = await this.open(what);
    try {
      return await sweepStaleUploads(session, this.bucket, { olderThanMs: options.olderThanMs ?? STALE_STAGING_MS, timeoutMs: this.timeoutMs, what });
    } catch (error) {
      throw toDepotError(error, what);
    }
  }

  async store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome> {
    const what = `${this.name}: store ${key.text}`;
    // The body is destroyed with a DepotError, so the shared layer reports this code rather than a stream's.
    const onAbort = () => body.stream.destroy(new DepotError('unavailable', `${what}: aborted`));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      signal.throwIfAborted();
      const session = await this.open(what);
      this.startSweep();
      let manifest: Manifest | undefined;
      const outcome = await this.put(
        session,
        key.text,
        // Read without destroying it on an early exit: the catch below destroys it, with the failure that ended the store.
        body.stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>,
        (uploaded) => {
          manifest = this.manifestFor(uploaded, body, what);
          return { [MANIFEST_ENTRY]: JSON.stringify(manifest) };
        },
        signal,
        what,
      );
      if (outcome.status === 'created') {
        if (!manifest) throw new DepotError('internal', `${what}: published without a manifest`);
        return { status: 'created', manifest };
      }
      const existing = manifestOf(outcome.current.info, key.text, `${this.name}:${key.text}`);
      if (!existing) throw foreignObject(this.name, key.text);
      return { status: 'exists', existing };
    } catch (error) {
      const failure = signal.aborted ? new DepotError('unavailable', `${what}: aborted`) : toDepotError(error, what);
      // Destroyed with this failure, which the shared layer then reports, unless the body failed first (its source).
      body.stream.destroy(failure);
      throw failure;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * The manifest a store's description carries (taken once: each call of
   * body.manifest() stamps a new storedAt), once the bytes published are
   * known to be the bytes the shared layer hashed — a second hash, of what
   * went out, so that no slip between reading and publishing goes unseen.
   */
  private manifestFor(uploaded: Uploaded, body: ArchiveBody, what: string): Manifest {
    const manifest = body.manifest();
    if (uploaded.sha256 !== manifest.sha256 || uploaded.size !== manifest.size) {
      throw new DepotError(
        'internal',
        `${what}: the chunks published (${uploaded.size} bytes, sha256 ${uploaded.sha256}) are not the bytes read (${manifest.size} bytes, sha256 ${manifest.sha256}); nothing was published`,
      );
    }
    return manifest;
  }

  /**
   * Chunks, then the conditional description (see the class comment). A
   * failure before the description removes the chunks; one while publishing
   * it first reads what the key holds, since the description may have landed
   * although its answer was lost (then the chunks are the archive's).
   */
  private async put(
    session: Session,
    name: string,
    body: AsyncIterable<Buffer>,
    describe: (uploaded: Uploaded) => Record<string, string>,
    signal: AbortSignal,
    what: string,
  ): Promise<PutOutcome> {
    const uploadId = newUploadId();
    const chunks = chunkSubject(this.bucket, uploadId);
    let committing = false;
    try {
      const uploaded = await uploadChunks(session, this.bucket, uploadId, body, this.timeoutMs, signal);
      const metadata = describe(uploaded);
      if (uploaded.chunks > 0) {
        const stored = await chunksStored(session, chunks);
        if (stored !== uploaded.chunks) {
          throw new DepotError('unavailable', `${what}: the stream holds ${stored} chunks of this upload, ${uploaded.chunks} were published; try again`);
        }
      }
      const info: ObjectInfo = {
        name,
        description: '',
        bucket: this.bucket,
        nuid: uploadId,
        size: uploaded.size,
        chunks: uploaded.chunks,
        mtime: new Date().toISOString(),
        digest: digestOf(uploaded.sha256),
        deleted: false,
        options: { max_chunk_size: session.chunkBytes },
        metadata,
      };
      committing = true;
      return await this.commit(session, info, signal, what);
    } catch (error) {
      if (committing) {
        const current = await readInfo(session, this.bucket, name).catch(() => undefined);
        // Cannot tell whether the description landed: the chunks stay, for the sweep if nothing names them.
        if (current === undefined) throw error;
        if (current?.info.nuid === uploadId) return await this.confirmFirst(session, current.info, current.revision, what);
        // Ours owns the key although another description hides it (confirmFirst's conflict): the chunks are its bytes.
        const owner = await firstLiveDescription(session, metaSubject(this.bucket, name), 1).catch(() => undefined);
        if (owner === undefined || owner?.info?.nuid === uploadId) throw error;
      }
      await this.removeChunks(session, chunks, what);
      throw error;
    }
  }

  /**
   * Publishes the description on the key's meta subject, on condition that
   * the subject holds no message (or, when another client left a `deleted`
   * marker there, that it still holds that marker). Refused: the key is
   * taken; this upload's chunks are removed and the description found is
   * returned.
   */
  private async commit(session: Session, info: ObjectInfo, signal: AbortSignal, what: string): Promise<PutOutcome> {
    const subject = metaSubject(this.bucket, info.name);
    let expected = 0;
    for (let round = 1; round <= COMMIT_ROUNDS; round++) {
      try {
        const ack = await publishRetried(
          session,
          subject,
          JSON.stringify(info),
          { msgID: `${info.nuid}.meta`, expect: { lastSubjectSequence: expected } },
          this.timeoutMs,
          signal,
        );
        return await this.confirmFirst(session, info, ack.seq, what);
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
      const current = await readInfo(session, this.bucket, info.name);
      // Our own earlier try landed and its answer was lost (outside the duplicate window).
      if (current?.info.nuid === info.nuid) return await this.confirmFirst(session, info, current.revision, what);
      if (current && !current.info.deleted) {
        await this.removeChunks(session, chunkSubject(this.bucket, info.nuid), what);
        return { status: 'taken', current };
      }
      // A deleted marker may be replaced, still conditionally (on its revision); nothing there: purged meanwhile,
      // or (newer servers) another conditional write still in flight, whose outcome the next round reads.
      expected = current?.revision ?? 0;
      if (!current) await sleep(Math.min(1000, 50 * 2 ** round));
    }
    throw new DepotError('unavailable', `${what}: the key's description kept changing while depot published its own; try again`);
  }

  /**
   * After writing: the description just published (at `seq`) must be the
   * key's first live description (the one that owns the key) and the one
   * readers see (the last). The server's condition is what makes it so; this
   * looks, because nats-server releases have let two conditional writes to one
   * subject through on clustered streams (nats-server#4320, fixed in 2.9.21,
   * for expected sequences above 0; #5794, fixed in August 2024, for 0; a
   * leader change still can, #8469). Nothing is deleted message by message: on a
   * file store of 2.9.10, deleting a subject's last message while an earlier
   * one stays makes the subject look empty to last-message lookups and to the
   * condition itself (measured), which would open the key to anyone.
   * - Another description came first: it owns the key. Ours must not hide it:
   *   its description is published again on top of ours (on condition that
   *   ours is still the last), our chunks are removed, and the key is
   *   reported taken, as if the server had refused us.
   * - Ours came first but another is on top: its writer, if it is depot,
   *   puts ours back on top when it looks, which is waited for; one that stays
   *   is another writer's replacement: `conflict`.
   */
  private async confirmFirst(session: Session, info: ObjectInfo, seq: number, what: string): Promise<PutOutcome> {
    const subject = metaSubject(this.bucket, info.name);
    const first = await firstLiveDescription(session, subject, 1);
    if (!first) throw new DepotError('unavailable', `${what}: the description just published is not there (removed meanwhile?); try again`);
    if (first.info?.nuid !== info.nuid) {
      this.logger.error(`the server admitted depot's description on ${info.name} after another one: depot puts the first back on top and steps back`, {
        driver: this.name,
        key: info.name,
      });
      await this.putOnTop(session, info.name, first, seq);
      await this.removeChunks(session, chunkSubject(this.bucket, info.nuid), what);
      if (!first.info) throw foreignObject(this.name, info.name);
      return { status: 'taken', current: { info: first.info, revision: first.revision } };
    }
    const until = Date.now() + Math.min(this.timeoutMs, LATER_WRITER_WAIT_MS);
    for (let attempt = 1; ; attempt++) {
      if ((await readInfo(session, this.bucket, info.name))?.info.nuid === info.nuid) return { status: 'created', info };
      if (Date.now() >= until) {
        this.logger.error(`another description was admitted on ${info.name} after depot's and stays on top`, { driver: this.name, key: info.name });
        throw new DepotError('conflict', `${what}: another writer put a description on the key right after depot's; it hides depot's archive`);
      }
      await sleep(Math.min(500, 50 * 2 ** attempt));
    }
  }

  /** Publishes the key's owner's description again on top of the subject, on condition that nothing came since `last`. */
  private async putOnTop(session: Session, name: string, owner: { revision: number; data: Uint8Array; info?: ObjectInfo }, last: number): Promise<void> {
    const subject = metaSubject(this.bucket, name);
    let expected = last;
    for (let round = 1; round <= COMMIT_ROUNDS; round++) {
      try {
        await session.js.publish(subject, owner.data, { expect: { lastSubjectSequence: expected }, timeout: this.timeoutMs });
        return;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
      const top = await readInfo(session, this.bucket, name);
      if (!top || (owner.info && top.info.nuid === owner.info.nuid)) return;
      expected = top.revision;
    }
  }

  private async removeChunks(session: Session, subject: string, what: string): Promise<void> {
    try {
      await purgeSubject(session, subject);
    } catch (error) {
      // Nothing names them: invisible, and the sweep of a later store removes them.
      this.logger.warn(`could not remove the chunks of an unfinished upload (${subject})`, { driver: this.name, error: toDepotError(error, what).message });
    }
  }

  /** The description under `key` that is an archive, with its manifest; null when there is none; `conflict` for another writer's object. */
  private async archiveAt(session: Session, key: ArchiveKey): Promise<{ stored: StoredInfo; manifest: Manifest } | null> {
    const stored = await readInfo(session, this.bucket, key.text);
    if (!stored || stored.info.deleted) return null;
    const manifest = stored.info.options?.link ? null : manifestOf(stored.info, key.text, `${this.name}:${key.text}`);
    if (!manifest) throw foreignObject(this.name, key.text);
    return { stored, manifest };
  }

  async stat(key: ArchiveKey): Promise<Manifest | null> {
    const what = `${this.name}: stat ${key.text}`;
    try {
      const found = await this.archiveAt(await this.open(what), key);
      return found?.manifest ?? null;
    } catch (error) {
      throw toDepotError(error, what);
    }
  }

  async retrieve(key: ArchiveKey, signal: AbortSignal): Promise<{ body: Readable; manifest: Manifest }> {
    const what = `${this.name}: retrieve ${key.text}`;
    try {
      signal.throwIfAborted();
      const session = await this.open(what);
      const found = await this.archiveAt(session, key);
      if (!found) throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
      const body = readChunks(session, this.bucket, found.stored.info, this.timeoutMs, what);
      const onAbort = () => body.destroy(new DepotError('unavailable', `${what}: aborted`));
      signal.addEventListener('abort', onAbort, { once: true });
      body.once('close', () => signal.removeEventListener('abort', onAbort));
      return { body, manifest: found.manifest };
    } catch (error) {
      throw signal.aborted ? new DepotError('unavailable', `${what}: aborted`) : toDepotError(error, what);
    }
  }

  /**
   * The description first (the archive is gone at once), then the chunks; a
   * crash in between leaves chunks nothing names, which the sweep removes.
   * The description's subject is purged rather than marked deleted, so the
   * key reads as never used.
   */
  async delete(key: ArchiveKey): Promise<void> {
    const what = `${this.name}: delete ${key.text}`;
    try {
      const session = await this.open(what);
      const found = await this.archiveAt(session, key);
      if (!found) throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
      await purgeSubject(session, metaSubject(this.bucket, key.text));
      await this.removeChunks(session, chunkSubject(this.bucket, found.stored.info.nuid), what);
    } catch (error) {
      throw toDepotError(error, what);
    }
  }

  async *list(prefix: string): AsyncIterable<Manifest> {
    const what = `${this.name}: list ${prefix}`;
    try {
      const session = await this.open(what);
      for await (const { info } of allInfos(session, this.bucket, this.timeoutMs, what)) {
        if (info.deleted || !info.name.startsWith(prefix)) continue;
        const parsed = parseArchiveKey(info.name);
        if (!parsed.ok) continue; // probes and other writers' objects are no archives
        let manifest: Manifest | null;
        try {
          manifest = manifestOf(info, info.name, `${this.name}:${info.name}`);
        } catch {
          manifest = null; // not one of depot's manifests
        }
        if (manifest && manifest.name === parsed.key.name) yield manifest;
      }
    } catch (error) {
      throw toDepotError(error, what);
    }
  }

  /**
   * A probe object under `.depot-check/` written, read back and removed the
   * way archives are; then a second conditional publish on its description's
   * subject, which the server must refuse for `writeOnce: enforced`.
   */
  async check(signal: AbortSignal): Promise<ProbeReport> {
    const what = `${this.name}: check`;
    const name = `${CHECK_DIR}/${probeName()}`;
    try {
      const session = await this.open(what);
      let writeOnce: WriteOnce = 'best_effort';
      let probe: ObjectInfo | undefined;
      const timings = await runProbe({
        write: async (bytes) => {
          const outcome = await this.put(session, name, Readable.from([bytes]), () => ({}), signal, what);
          if (outcome.status !== 'created') throw new DepotError('internal', `${what}: the probe's name ${name} is taken`);
          probe = outcome.info;
          writeOnce = (await this.refusesSecondDescription(session, outcome.info)) ? 'enforced' : 'best_effort';
        },
        read: async () => {
          const stored = await readInfo(session, this.bucket, name);
          if (!stored) throw new DepotError('unavailable', `${what}: the probe written is not there`);
          const parts: Buffer[] = [];
          for await (const part of readChunks(session, this.bucket, stored.info, this.timeoutMs, what)) parts.push(part as Buffer);
          return Buffer.concat(parts);
        },
        remove: async () => {
          await purgeSubject(session, metaSubject(this.bucket, name));
          if (probe) await purgeSubject(session, chunkSubject(this.bucket, probe.nuid));
        },
      });
      return { ...timings, writeOnce };
    } catch (error) {
      throw toDepotError(error, what);
    }
  }

  /** Whether the server refuses a second description on a taken subject, as every store relies on. */
  private async refusesSecondDescription(session: Session, info: ObjectInfo): Promise<boolean> {
    try {
      await session.js.publish(metaSubject(this.bucket, info.name), JSON.stringify(info), { expect: { lastSubjectSequence: 0 }, timeout: this.timeoutMs });
    } catch (error) {
      if (isWrongLastSequence(error)) return true;
      throw error;
    }
    this.logger.error('the NATS server accepted a second description on a taken subject: write-once rests on depot alone there', { driver: this.name });
    return false;
  }

  async space(): Promise<Space> {
    const what = `${this.name}: space`;
    try {
      return await spaceOf(await this.open(what), this.settings);
    } catch (error) {
      throw toDepotError(error, what);
    }
  }

  async close(): Promise<void> {
    this.closing.abort();
    // Closed first: a sweep still running then fails at once instead of holding the close up.
    await this.session.close();
    await ignoreFailure(this.sweep ?? Promise.resolve(), 'the sweep reports its own failures, and none once closing');
  }
}
