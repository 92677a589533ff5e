import type { Readable } from 'node:stream';
import type { ArchiveKey, Manifest, Space, WriteOnce } from '../contract';

/** What a backend can do beyond the basics; callers ask instead of guessing. */
export interface DriverCapabilities {
  /**
   * The backend itself enforces retainUntil (WORM); depot enforces it in any
   * case. Only such a driver is asked to `ensureRetention`.
   */
  retention: boolean;
  /** space() reports figures of the backend's own; without, the shared layer reports none and does not ask. */
  space: boolean;
  /** list() finds the archives; without, the automatic deletion run passes the driver by. */
  list: boolean;
}

/**
 * The bytes to store. `stream` is already hashed and size-checked by the shared
 * layer: it errors at its end (code `integrity`) when the bytes are not what the
 * task expected, so a driver that publishes only after the stream ended cleanly
 * can never publish bad bytes. `manifest()` is complete once the stream ended.
 */
export interface ArchiveBody {
  stream: Readable;
  manifest(): Manifest;
  /**
   * What is known before the first byte: backends that must decide early
   * (S3's part size, a multipart upload's Object Lock date, Moodle's
   * Content-Length) use it. `size` is the task's, or else the source's own
   * length when it has one (a file); the shared layer checks only the task's.
   */
  declared: { size?: number; retainUntil?: string };
}

/** A store's source when it is a file on this host (a path or spool source), opened and checked by the shared layer. */
export interface LocalFile {
  /** A path that opens the very file that was checked (its /proc/<pid>/fd link), whatever its own path names now. */
  path: string;
  /** Its length when it was opened (it may change: the bytes copied are hashed, not this). */
  size: number;
  /** The device it is on (st_dev): a copy inside the kernel needs the same filesystem. */
  dev: number;
}

/**
 * A local source file to store without reading it through a stream (storeFile).
 * The driver hashes the bytes it wrote and hands their digest to `manifest`,
 * which checks it against the task (code `integrity` when they are not what
 * the task expected: nothing may then be published) and describes them.
 */
export interface FileBody {
  file: LocalFile;
  declared: ArchiveBody['declared'];
  manifest(written: { sha256: string; size: number }): Manifest;
  onBytes?: (bytes: number) => void;
}

/**
 * A retrieve's target when it is a file on this host: empty, created by the
 * shared layer and open for reading and writing (retrieveFile).
 */
export interface FileTarget {
  /** A path that opens this very file (its /proc/<pid>/fd link), whatever its own name names now. */
  path: string;
  fd: number;
  /** The device it is on (st_dev): a copy inside the kernel needs the same filesystem. */
  dev: number;
  /** Bytes written so far, of the manifest's size. */
  onBytes?: (bytes: number, totalBytes: number) => void;
}

/** How a listing resumes (`depot reindex` after an interruption). */
export interface ListOptions {
  after?: string;
}

/** A write-once store either created the key or found it taken (by the manifest there). */
export type PublishOutcome = { status: 'created'; manifest: Manifest } | { status: 'exists'; existing: Manifest };

/**
 * A connection check: timings of writing a probe, reading it back and deleting
 * it, and whether the backend itself refuses to replace an existing object
 * (`enforced`) or write-once rests on depot's checks before and after writing
 * (`best_effort`, CONTRACT §11).
 */
export interface ProbeReport {
  writeMs: number;
  readMs: number;
  deleteMs: number;
  writeOnce: WriteOnce;
}

/**
 * The one interface every backend implements. A driver moves bytes to one backend
 * and keeps the manifest beside them; it knows nothing of queues, retries, other
 * drivers, hashing or key rules, and reports failures as DepotError with the
 * contract's codes. Keys come parsed (ArchiveKey): the shared layer checks
 * each once, and a driver derives its paths from the parts, never by parsing.
 */
export interface StorageDriver {
  /** Instance name from the config, e.g. `local`. */
  readonly name: string;
  /** Driver type, e.g. `filesystem`. */
  readonly type: string;
  readonly capabilities: DriverCapabilities;

  /** Write-once: nothing is visible under `key` until the body ended cleanly; an existing key is never replaced. */
  store(key: ArchiveKey, body: ArchiveBody, signal: AbortSignal): Promise<PublishOutcome>;
  /**
   * Optional: stores a local source file more cheaply than by reading it (the
   * filesystem driver copies it inside the kernel, on its own filesystem).
   * Resolves null when it cannot for this file, having written nothing; the
   * shared layer then streams it to store().
   */
  storeFile?(key: ArchiveKey, body: FileBody, signal: AbortSignal): Promise<PublishOutcome | null>;
  /** The stored bytes as they are (the shared layer verifies them) and their manifest; `not_found` when absent. */
  retrieve(key: ArchiveKey, signal: AbortSignal): Promise<{ body: Readable; manifest: Manifest }>;
  /**
   * Optional: writes the archive into a local file more cheaply than through
   * retrieve()'s stream (the filesystem driver copies it inside the kernel,
   * on its own filesystem), and returns its manifest with the sha256 and
   * size of the bytes written, read back from the target (the shared layer
   * compares them with the manifest). Resolves null when it cannot for this
   * archive, having written nothing; the shared layer then streams it.
   */
  retrieveFile?(key: ArchiveKey, target: FileTarget, signal: AbortSignal): Promise<{ manifest: Manifest; written: { sha256: string; size: number } } | null>;
  /** The manifest, or null when nothing is published under `key`. */
  stat(key: ArchiveKey): Promise<Manifest | null>;
  /** Removes archive and manifest; `not_found` when absent. Retention is checked by the caller (and by the backend where it can). */
  delete(key: ArchiveKey): Promise<void>;
  /**
   * Manifests of the archives whose key starts with `prefix`, in an order of
   * the driver's own that is the same on every listing. `options.after` (a
   * key this listing yielded before) resumes it after that key; a driver may
   * ignore it and list from the start (its callers then skip what they have).
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<Manifest>;
  /** Writes, reads back, verifies and deletes a probe outside the archive keys. */
  check(signal: AbortSignal): Promise<ProbeReport>;
  /** Only the figures the backend reports. */
  space(): Promise<Space>;
  /**
   * For backends that enforce retention themselves (S3 Object Lock; called
   * only when `capabilities.retention` says so): makes the retention of an
   * archive already in place what its manifest asks for. A store that finds
   * its key taken by its own earlier attempt calls it, since that attempt may
   * have ended between publishing and locking.
   */
  ensureRetention?(key: ArchiveKey, manifest: Manifest, signal: AbortSignal): Promise<void>;
  /** Releases connections and handles; the driver is not used afterwards. */
  close(): Promise<void>;
}
