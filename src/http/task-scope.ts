import type { Job } from 'bullmq';
import { DepotError, Metadata, Operation, TaskByOperation } from '../contract';
import { provenanceOf } from '../queue/bullmq-internals';
import type { StorageAPI } from '../storage/api';
import type { HttpToken } from './token-scope';
import { within } from './within';

/** A task the token's scope does not allow: 403 `auth`, or 404 `not_found` for an archive it may not see (its existence is not told). */
export class ScopeRefusal extends Error {
  constructor(
    readonly status: 403 | 404,
    readonly error: DepotError,
  ) {
    super(error.message);
  }
}

/**
 * CONTRACT §9 for tasks: a token's `operations` and `drivers` limit what it
 * may queue; its `metadata` is forced onto every store and must match the
 * archive of every retrieve and delete (read from the archive's manifest,
 * the source of truth; a key is write-once, so what was checked stays so).
 */
export class TaskScopes {
  constructor(
    private readonly storage: StorageAPI,
    private readonly defaultDriver: string,
    private readonly failover: Readonly<Record<string, string[]>>,
    private readonly answerMs: number,
  ) {}

  /**
   * The task as it may be queued for this token (`raw`, changed where the scope
   * says: forced metadata, fallbacks limited to its drivers); throws ScopeRefusal.
   */
  async apply<O extends Operation>(
    token: HttpToken | undefined,
    operation: O,
    parsed: TaskByOperation[O],
    raw: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    if (!token || token.scope.unlimited) return raw;
    const { scope } = token;
    if (!scope.allowsOperation(operation)) throw forbidden(`the token '${token.name}' may not ${operation} (its scope.operations)`);
    const driver = (field: string, name: string) => {
      if (!scope.allowsDriver(name)) throw forbidden(`the token '${token.name}' may not use the driver '${name}' (its scope.drivers)`, field);
    };
    if (operation === 'store') {
      const task = parsed as TaskByOperation['store'];
      const primary = task.driver ?? this.defaultDriver;
      driver(task.driver ? 'driver' : 'driver (the default)', primary);
      task.fallbacks?.forEach((name, i) => driver(`fallbacks[${i}]`, name));
      const contradicted = scope.contradiction(task.metadata);
      if (contradicted !== undefined)
        throw forbidden(`the token '${token.name}' stores only with ${contradicted} '${scope.metadata[contradicted]}'`, `metadata.${contradicted}`);
      const metadata: Metadata = { ...(task.metadata ?? {}), ...scope.metadata };
      const out: Record<string, unknown> = { ...raw, metadata };
      // The configured failover may lead out of the scope: only its drivers stay.
      if (!task.fallbacks && scope.drivers) out.fallbacks = (this.failover[primary] ?? []).filter((name) => scope.allowsDriver(name));
      return out;
    }
    if (operation === 'check') {
      driver('driver', (parsed as TaskByOperation['check']).driver);
      return raw;
    }
    const { ref } = parsed as TaskByOperation['retrieve' | 'delete'];
    driver('ref.driver', ref.driver);
    await this.mustSee(token, ref.driver, ref.key);
    return raw;
  }

  /** The archive exists and the token may see it (its metadata holds the scope's); else 404, whichever it is. */
  async mustSee(token: HttpToken | undefined, driver: string, key: string): Promise<void> {
    if (!token?.scope.restrictsArchives) return;
    const manifest = await within(this.storage.getArchiveStore(driver).stat(key), this.answerMs, 'the archive manifest');
    if (!manifest || !token.scope.allowsArchive(manifest.metadata)) throw new ScopeRefusal(404, new DepotError('not_found', `no archive ${driver}:${key}`));
  }
}

/**
 * Whether a token may see a task (`GET /v1/tasks/:taskId`, the task in a 409):
 * a token limited to some archives or drivers sees the tasks it queued itself,
 * and stores whose metadata and driver are in its scope; nothing else, so one
 * site's tasks never show to another.
 */
export function seesTask(token: HttpToken | undefined, job: Job, defaultDriver: string): boolean {
  if (!token) return false;
  const { scope } = token;
  if (!scope.restrictsArchives && !scope.drivers) return true;
  if (provenanceOf(job).actor === `http:${token.name}`) return true;
  if (job.name !== 'store') return false;
  const data = (typeof job.data === 'object' && job.data !== null ? job.data : {}) as { metadata?: unknown; driver?: unknown };
  const metadata = typeof data.metadata === 'object' && data.metadata !== null && !Array.isArray(data.metadata) ? (data.metadata as Metadata) : {};
  return scope.allowsArchive(metadata) && scope.allowsDriver(typeof data.driver === 'string' ? data.driver : defaultDriver);
}

function forbidden(message: string, field?: string): ScopeRefusal {
  return new ScopeRefusal(403, new DepotError('auth', message, field ? { field } : {}));
}
