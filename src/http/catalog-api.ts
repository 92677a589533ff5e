import type { Catalog } from '../catalog/catalog';
import { listedArchive } from '../catalog/views';
import { DepotError } from '../contract';
import { errorBody } from '../support/error-handler';
import { sendError, sendJson } from './reply';
import type { Exchange } from './router';
import { within } from './within';
import { mayDo, refuseScope } from './bearer-auth';
import type { HttpToken } from './token-scope';
import type { AuditEntry, CatalogEntry } from '../catalog/catalog';
import type { IncomingMessage } from 'node:http';

/**
 * CONTRACT §8 over HTTP (bearer token): `GET /v1/archives?driver=&meta.<k>=<v>&limit=&cursor=`
 * (the shape of `depot list --json`; `deleted=true` lists deleted archives)
 * and `GET /v1/audit?taskId=&driver=&key=&since=&limit=&cursor=` (that of
 * `depot audit --json`). A query parameter that is not one of these, or a bad
 * value, is 400 `invalid_task` naming it; a catalog that cannot be reached
 * (or is not there yet) is 503 with its code.
 */
export class CatalogApi {
  constructor(
    private readonly catalog: Catalog,
    private readonly answerMs: number,
    /** The request's bearer token: its scope limits what it lists (CONTRACT §9). */
    private readonly tokenOf: (request: IncomingMessage) => HttpToken | undefined = () => undefined,
  ) {}

  /** A token's scope (CONTRACT §9): `list` in its operations, only its drivers, only archives with its metadata (added to the query). */
  async archives({ request, response }: Exchange): Promise<void> {
    const token = this.tokenOf(request);
    if (!mayDo(token, 'list', response)) return;
    const scope = token?.scope;
    const asked = new URL(request.url ?? '/', 'http://depot').searchParams.get('driver');
    if (token && asked !== null && !token.scope.allowsDriver(asked))
      return refuseScope(response, `the token '${token.name}' may not use the driver '${asked}' (its scope.drivers)`, 'driver');
    await this.answer(response, async () => {
      const query = parameters(request.url, ['driver', 'limit', 'cursor', 'deleted'], 'meta.');
      const metadata = query.prefixed.map(([name, value]): [string, string] => [name.slice('meta.'.length), value]);
      metadata.push(...Object.entries(scope?.metadata ?? {}));
      const only = scope?.drivers && scope.drivers.size === 1 ? [...scope.drivers][0] : undefined;
      if (metadata.some(([k]) => k === '')) throw new DepotError('invalid_task', 'must name a metadata key: meta.<key>=<value>', { field: 'meta.' });
      const deleted = query.single('deleted');
      if (deleted !== undefined && deleted !== 'true' && deleted !== 'false')
        throw new DepotError('invalid_task', 'must be true or false', { field: 'deleted' });
      const page = await within(
        this.catalog.findArchives({
          driver: query.single('driver') ?? only,
          metadata,
          deleted: deleted === 'true',
          limit: limitOf(query.single('limit')),
          cursor: query.single('cursor'),
        }),
        this.answerMs,
        'the catalog',
      );
      // Several drivers in the scope: a page may come out short, its cursor still leads on.
      const items = page.items.filter((entry: CatalogEntry) => !scope || scope.allowsDriver(entry.ref.driver));
      return { archives: items.map(listedArchive), next: page.next };
    });
  }

  /**
   * A scoped token sees the entries of its drivers, and, when limited to some
   * archives, those it caused itself (actor `http:<name>`) or whose archive's
   * metadata is in its scope.
   */
  async audit({ request, response }: Exchange): Promise<void> {
    const token = this.tokenOf(request);
    if (!mayDo(token, 'audit', response)) return;
    const asked = new URL(request.url ?? '/', 'http://depot').searchParams.get('driver');
    if (token && asked !== null && !token.scope.allowsDriver(asked))
      return refuseScope(response, `the token '${token.name}' may not use the driver '${asked}' (its scope.drivers)`, 'driver');
    await this.answer(response, async () => {
      const query = parameters(request.url, ['taskId', 'driver', 'key', 'since', 'limit', 'cursor']);
      const page = await within(
        this.catalog.findAudit({
          taskId: query.single('taskId'),
          driver: query.single('driver'),
          key: query.single('key'),
          since: query.single('since'),
          limit: limitOf(query.single('limit')),
          cursor: query.single('cursor'),
        }),
        this.answerMs,
        'the catalog',
      );
      return { entries: token ? await this.visible(token, page.items) : page.items, next: page.next };
    });
  }

  private async visible(token: HttpToken, entries: AuditEntry[]): Promise<AuditEntry[]> {
    const { scope } = token;
    const archives = new Map<string, Promise<boolean>>();
    const seen = (entry: AuditEntry) => {
      const ref = `${entry.ref.driver}\n${entry.ref.key}`;
      let allowed = archives.get(ref);
      if (!allowed) {
        allowed = within(this.catalog.get(entry.ref), this.answerMs, 'the catalog').then((found) => found !== null && scope.allowsArchive(found.metadata));
        archives.set(ref, allowed);
      }
      return allowed;
    };
    const out: AuditEntry[] = [];
    for (const entry of entries) {
      if (!scope.allowsDriver(entry.ref.driver)) continue;
      if (scope.restrictsArchives && entry.actor !== `http:${token.name}` && !(await seen(entry))) continue;
      out.push(entry);
    }
    return out;
  }

  private async answer(response: Exchange['response'], work: () => Promise<unknown>): Promise<void> {
    try {
      sendJson(response, 200, await work());
    } catch (error) {
      const body = errorBody(error);
      const field = error instanceof DepotError ? error.field : undefined;
      sendError(response, body.code === 'invalid_task' ? 400 : 503, { ...body, field });
    }
  }
}

/** The query's parameters: each known name at most once, `prefix`ed names any number of times, nothing else. */
function parameters(target: string | undefined, known: readonly string[], prefix?: string) {
  const search = new URL(target ?? '/', 'http://depot').searchParams;
  const seen = new Map<string, string>();
  const prefixed: Array<[string, string]> = [];
  for (const [name, value] of search) {
    if (prefix !== undefined && name.startsWith(prefix)) prefixed.push([name, value]);
    else if (!known.includes(name))
      throw new DepotError('invalid_task', `unknown query parameter (known: ${[...known, ...(prefix ? [`${prefix}<key>`] : [])].join(', ')})`, { field: name });
    else if (seen.has(name)) throw new DepotError('invalid_task', 'given more than once', { field: name });
    else seen.set(name, value);
  }
  return { single: (name: string) => seen.get(name), prefixed };
}

function limitOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,4}$/.test(text)) throw new DepotError('invalid_task', 'must be a whole number from 1 to 1000', { field: 'limit' });
  return Number(text);
}
