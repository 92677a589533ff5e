import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DepotError } from '../contract';
import { processAlive } from '../support/process-alive';

/** Every driver stages bytes in this directory under its root, beside the archives (never visible as one). */
export const STAGING_DIR = '.depot-tmp';
/** Connection-check probes go here, under the root. */
export const CHECK_DIR = '.depot-check';
/** Staging files older than this are leftovers whatever their owner: no store runs a day without writing. */
export const STALE_STAGING_MS = 24 * 60 * 60 * 1000;

/** This host in staging names (characters a file name or FTP path could trip on replaced). */
const HOST = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
const NAME = /^(.+)-(\d+)-[0-9a-f]+\.(part|manifest)$/;

/**
 * Staging names `<host>-<pid>-<seed><counter>` (then `.part` / `.manifest`):
 * a random part per driver instance and a counter instead of random bytes per
 * store, and the writer in the name so leftovers of a dead one can be told.
 */
export class StagingNames {
  private readonly seed = randomBytes(6).toString('hex');
  private count = 0;

  next(): string {
    this.count += 1;
    return `${HOST}-${process.pid}-${this.seed}${this.count.toString(16).padStart(8, '0')}`;
  }
}

/** A name depot gives its staging files: the leftover sweep removes nothing else, whatever it finds in the directory. */
export function isStagingName(name: string): boolean {
  return NAME.test(name);
}

/**
 * A driver's own directory under its root (staging, check) that is not a real
 * directory: a symlink planted there would lead its writes, and the leftover
 * sweep's deletions, anywhere. An operator's problem, not retried.
 */
export function notOwnDirectory(driver: string, dir: string): DepotError {
  return new DepotError(
    'misconfigured',
    `${driver}: ${dir} is not a directory inside the root (a symbolic link?); refusing to use it — remove it, depot makes it again`,
  );
}

/** A staging file whose writer was a process of this host that no longer runs. */
export function writerGone(name: string): boolean {
  const match = NAME.exec(name);
  return match !== null && match[1] === HOST && !processAlive(Number(match[2]));
}
