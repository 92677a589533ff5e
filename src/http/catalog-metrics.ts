import type { Catalog, CatalogStats, CounterName } from '../catalog/catalog';
import { Exposition, Labels } from './exposition';
import { within } from './within';

/** How old the catalog's figures on /metrics may be: counting every archive costs a scan of an index, not worth it per scrape. */
export const CATALOG_FIGURES_MAX_AGE_MS = 30_000;

/**
 * The catalog's figures for /metrics (CONTRACT §8): read at most every 30 s
 * (one read at a time, however many scrapes wait), so a scrape never costs
 * more than a lookup; a catalog that does not answer shows as
 * `depot_catalog_up 0` with no other catalog figures.
 */
export class CatalogFigures {
  private last?: { at: number; stats: CatalogStats };
  private reading?: Promise<CatalogStats | undefined>;

  constructor(
    private readonly catalog: Catalog,
    private readonly answerMs: number,
  ) {}

  async current(): Promise<CatalogStats | undefined> {
    if (this.last && Date.now() - this.last.at < CATALOG_FIGURES_MAX_AGE_MS) return this.last.stats;
    this.reading ??= within(this.catalog.stats(), this.answerMs, 'the catalog')
      .then(
        (stats) => ((this.last = { at: Date.now(), stats }), stats),
        () => undefined,
      )
      .finally(() => (this.reading = undefined));
    return this.reading;
  }
}

const STATUSES = ['ok', 'corrupt', 'missing'] as const;
const DELETIONS: Array<[CounterName, string]> = [
  ['deleted', 'delete'],
  ['expired', 'expire'],
  ['erased', 'erase'],
];

/** The catalog's families; every configured driver (and label value) from 0. */
export function writeCatalog(out: Exposition, drivers: readonly string[], stats: CatalogStats | undefined): void {
  out.family('depot_catalog_up', 'gauge', 'Whether the catalog answered for the figures below (1) or not (0).', [[{}, stats ? 1 : 0]]);
  if (!stats) return;
  const all = [...new Set([...drivers, ...stats.archives.map((a) => a.driver), ...stats.counters.map((c) => c.driver)])];
  const archives = new Map(stats.archives.map((a) => [a.driver, a]));
  out.family(
    'depot_catalog_archives',
    'gauge',
    'Archives in the catalog, not deleted, by driver.',
    all.map((driver): [Labels, number] => [{ driver }, archives.get(driver)?.archives ?? 0]),
  );
  out.family(
    'depot_catalog_archive_bytes',
    'gauge',
    'Bytes of those archives, by driver.',
    all.map((driver): [Labels, number] => [{ driver }, archives.get(driver)?.bytes ?? 0]),
  );
  const verified = (driver: string, status: string) => stats.verified.find((v) => v.driver === driver && v.status === status)?.archives ?? 0;
  out.family(
    'depot_catalog_verified_archives',
    'gauge',
    'Archives still there by the result of their last fixity check (ok, corrupt, missing); never verified ones are not counted.',
    all.flatMap((driver) => STATUSES.map((status): [Labels, number] => [{ driver, status }, verified(driver, status)])),
  );
  const counter = (name: CounterName, driver: string) => stats.counters.find((c) => c.name === name && c.driver === driver)?.value ?? 0;
  out.family(
    'depot_catalog_verifications_total',
    'counter',
    'Fixity checks recorded since the catalog was created, by driver and outcome (ok, corrupt, missing).',
    all.flatMap((driver) => STATUSES.map((outcome): [Labels, number] => [{ driver, outcome }, counter(`verified_${outcome}`, driver)])),
  );
  out.family(
    'depot_catalog_deletions_total',
    'counter',
    'Archives deleted since the catalog was created, by driver and reason (delete: a delete task; expire: automatic deletion; erase: an erasure request).',
    all.flatMap((driver) => DELETIONS.map(([name, reason]): [Labels, number] => [{ driver, reason }, counter(name, driver)])),
  );
}
