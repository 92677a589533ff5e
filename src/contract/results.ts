import type { ErrorCode } from './error-codes';
import type { Metadata, StorageRef } from './tasks';

/** `Space`: each figure present only where the backend reports it. */
export interface Space {
  totalBytes?: number;
  freeBytes?: number;
  usedBytes?: number;
}

/**
 * The manifest every stored archive carries (CONTRACT §2, "Keys and write-once").
 * Filesystem and FTP keep it in a sidecar `<key>.depot.json`.
 */
export interface Manifest {
  name: string;
  key: string;
  size: number;
  sha256: string;
  storedAt: string;
  taskId: string;
  metadata: Metadata;
  retainUntil?: string;
  deleteAfter?: string;
}

export interface StoreResult {
  taskId: string;
  ref: StorageRef;
  name: string;
  size: number;
  sha256: string;
  storedAt: string;
  metadata: Metadata;
  driversTried: string[];
  failedOver: boolean;
  attempts: number;
}

export interface RetrieveResult {
  taskId: string;
  ref: StorageRef;
  size: number;
  sha256: string;
  path?: string;
  base64?: string;
}

export interface DeleteResult {
  taskId: string;
  ref: StorageRef;
  deleted: true;
}

/** Whether the backend refuses to replace an object itself, or depot's checks around each write are all there is (CONTRACT §11). */
export type WriteOnce = 'enforced' | 'best_effort';

export interface CheckResult {
  taskId?: string;
  driver: string;
  ok: boolean;
  writeMs?: number;
  readMs?: number;
  deleteMs?: number;
  writeOnce?: WriteOnce;
  space?: Space;
  error?: { code: ErrorCode; message: string };
}
