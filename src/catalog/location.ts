import path from 'node:path';

/** Where the catalog is (config `catalog.url`, CONTRACT §8). */
export type CatalogTarget = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

/** The embedded default's catalog, beside `./data/archive` (§8). */
export const DEFAULT_CATALOG_URL = 'sqlite:./data/catalog.sqlite';

/**
 * `sqlite:<path>` or `postgres://…` (`postgresql://` too); a relative SQLite
 * path is resolved against `baseDir` — the config file's folder, never the
 * current directory. Null when the text is neither.
 */
export function parseCatalogUrl(url: string, baseDir: string): CatalogTarget | null {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file === '' || file.includes('\u0000') || file.startsWith('//')) return null;
    return { kind: 'sqlite', file: path.resolve(baseDir, file) };
  }
  if (/^postgres(ql)?:\/\//.test(url) && URL.canParse(url)) return { kind: 'postgres', url };
  return null;
}

/** The catalog's URL as messages show it: the password as `***`, and `sqlite:` with its absolute path. */
export function catalogLocation(target: CatalogTarget): string {
  if (target.kind === 'sqlite') return `sqlite:${target.file}`;
  const url = new URL(target.url);
  if (url.password) url.password = '***';
  return url.href;
}

/** The embedded default's catalog: beside the archive root (`./data/catalog.sqlite` beside `./data/archive`; `$DEPOT_DATA/../catalog.sqlite`). */
export function embeddedCatalogUrl(archiveRoot: string): string {
  return `sqlite:${path.join(path.dirname(archiveRoot), 'catalog.sqlite')}`;
}
