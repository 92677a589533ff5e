import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DepotError, Manifest } from '../../../contract';
import { processAlive } from '../../../support/process-alive';
import { parseManifest } from '../../manifest';

/**
 * The JetStream object store's layout (ADR-20, as nats.go and the `nats`
 * command line write it), so that operators' tools read depot's archives:
 * - stream `OBJ_<bucket>` with the subjects `$O.<bucket>.C.>` and `$O.<bucket>.M.>`;
 * - an object's bytes: messages on `$O.<bucket>.C.<nuid>`, in order;
 * - its description (ObjectInfo, JSON): the last message on
 *   `$O.<bucket>.M.<base64url of the name's UTF-8, padded>`, which names the
 *   nuid, size, chunk count and `SHA-256=<base64url>` digest.
 * depot's manifest travels in the description's `metadata` (MANIFEST_ENTRY),
 * every field as the shared layer wrote it.
 */
export const MANIFEST_ENTRY = 'depot-manifest';
const DIGEST_PREFIX = 'SHA-256=';

export function streamName(bucket: string): string {
  return `OBJ_${bucket}`;
}

export function chunkSubject(bucket: string, nuid: string): string {
  return `$O.${bucket}.C.${nuid}`;
}

export function chunkSubjects(bucket: string): string {
  return `$O.${bucket}.C.>`;
}

export function metaSubjects(bucket: string): string {
  return `$O.${bucket}.M.>`;
}

/** Object names are encoded as the store's clients do: base64url of the UTF-8 bytes, with padding. */
export function metaSubject(bucket: string, name: string): string {
  return `$O.${bucket}.M.${padded(Buffer.from(name, 'utf8').toString('base64url'))}`;
}

/** The nuid a chunk subject names. */
export function nuidOfChunkSubject(bucket: string, subject: string): string | undefined {
  const prefix = `$O.${bucket}.C.`;
  return subject.startsWith(prefix) ? subject.slice(prefix.length) : undefined;
}

function padded(base64url: string): string {
  return base64url + '='.repeat((4 - (base64url.length % 4)) % 4);
}

/** The object store's digest of a sha256 (hex): `SHA-256=<base64url, padded>`. */
export function digestOf(sha256Hex: string): string {
  return DIGEST_PREFIX + padded(Buffer.from(sha256Hex, 'hex').toString('base64url'));
}

/** The sha256 (hex) an object store digest names, or undefined for another kind of digest. */
export function sha256OfDigest(digest: string | undefined): string | undefined {
  if (!digest?.startsWith(DIGEST_PREFIX)) return undefined;
  const bytes = Buffer.from(digest.slice(DIGEST_PREFIX.length).replace(/=+$/, ''), 'base64url');
  return bytes.length === 32 ? bytes.toString('hex') : undefined;
}

/** An object's description as the store keeps it (ObjectInfo without `revision`, which is the message's sequence). */
export interface ObjectInfo {
  name: string;
  description?: string;
  bucket: string;
  nuid: string;
  size: number;
  chunks: number;
  mtime: string;
  digest: string;
  deleted?: boolean;
  options?: { max_chunk_size?: number; link?: unknown };
  metadata?: Record<string, string>;
  headers?: Record<string, string[]>;
}

/** A description as read: the stream sequence of its message is its revision. */
export interface StoredInfo {
  info: ObjectInfo;
  revision: number;
}

/** Parses a description message; something else on a meta subject is nobody's object but is in the way. */
export function parseObjectInfo(bytes: Uint8Array, where: string): ObjectInfo {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new DepotError('integrity', `${where}: the object's description is not JSON`);
  }
  const info = parsed as Partial<ObjectInfo> | null;
  if (
    typeof info !== 'object' ||
    info === null ||
    typeof info.name !== 'string' ||
    typeof info.nuid !== 'string' ||
    typeof info.size !== 'number' ||
    typeof info.chunks !== 'number'
  ) {
    throw new DepotError('integrity', `${where}: the object's description is malformed`);
  }
  return info as ObjectInfo;
}

/**
 * The manifest an object carries, checked against the object's own figures:
 * its size and the store's digest must be the manifest's, or either was
 * changed behind depot's back. `null`: the object carries no manifest (not
 * one depot wrote).
 */
export function manifestOf(info: ObjectInfo, key: string, where: string): Manifest | null {
  const text = info.metadata?.[MANIFEST_ENTRY];
  if (typeof text !== 'string') return null;
  const manifest = parseManifest(text, key);
  if (manifest.size !== info.size) throw new DepotError('integrity', `${where} holds ${info.size} bytes, its manifest says ${manifest.size}`);
  if (sha256OfDigest(info.digest) !== manifest.sha256) {
    throw new DepotError('integrity', `${where}: the object store's digest (${info.digest}) is not the manifest's sha256`);
  }
  return manifest;
}

/**
 * Upload ids (the chunk subject's last token, the object store's "nuid"):
 * `depot_<host>_<pid>_<random>`, so that the sweep can tell the leftovers of
 * a dead process of this host from an upload in progress. Letters, digits,
 * `_` and `-` only, as subject tokens allow.
 */
const HOST =
  hostname()
    .replace(/[^A-Za-z0-9-]/g, '-')
    .slice(0, 64) || 'host';
const UPLOAD_ID = /^depot_(.+)_(\d+)_[0-9a-f]{24}$/;

export function newUploadId(): string {
  return `depot_${HOST}_${process.pid}_${randomBytes(12).toString('hex')}`;
}

/** An upload id of depot's whose writer was a process of this host that no longer runs. */
export function uploadWriterGone(nuid: string): boolean {
  const match = UPLOAD_ID.exec(nuid);
  return match !== null && match[1] === HOST && !processAlive(Number(match[2]));
}
