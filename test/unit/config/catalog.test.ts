import path from 'node:path';
import { configError, FS_DRIVER, issueFor, load, loadText, loadTextError, removeTempDirs, shownText, tempDir, writeFile } from './helpers';

/** CONTRACT §8: config `catalog.url` / `catalog.urlFile`, where a relative SQLite path leads, and credentials masked. */
afterAll(removeTempDirs);

describe('where the catalog is', () => {
  test('embedded default: beside ./data/archive, the same folder whatever the archive root is called', () => {
    const cwd = tempDir();
    const { config } = load({}, cwd);
    expect(config.catalog.target).toEqual({ kind: 'sqlite', file: path.join(cwd, 'data', 'catalog.sqlite') });
    expect(config.catalog.location).toBe(`sqlite:${path.join(cwd, 'data', 'catalog.sqlite')}`);
  });

  test("embedded default with DEPOT_DATA: in $DEPOT_DATA's parent, never in the current directory", () => {
    const cwd = tempDir();
    const data = path.join(tempDir(), 'depot', 'archive');
    expect(load({ DEPOT_DATA: data }, cwd).config.catalog.target).toEqual({ kind: 'sqlite', file: path.join(path.dirname(data), 'catalog.sqlite') });
  });

  test("a config file without catalog: sqlite:./data/catalog.sqlite against the file's folder, not the current directory", () => {
    const { config, dir } = loadText(FS_DRIVER);
    expect(config.catalog.url).toBe('sqlite:./data/catalog.sqlite');
    expect(config.catalog.target).toEqual({ kind: 'sqlite', file: path.join(dir, 'data', 'catalog.sqlite') });
  });

  test("relative and absolute SQLite paths; the relative one against the file's folder", () => {
    const relative = loadText(`${FS_DRIVER}catalog: { url: "sqlite:db/catalog.sqlite" }\n`);
    expect(relative.config.catalog.target).toEqual({ kind: 'sqlite', file: path.join(relative.dir, 'db', 'catalog.sqlite') });
    expect(loadText(`${FS_DRIVER}catalog: { url: "sqlite:/srv/depot/catalog.sqlite" }\n`).config.catalog.target).toEqual({
      kind: 'sqlite',
      file: '/srv/depot/catalog.sqlite',
    });
  });

  test('anything but sqlite: or postgres:// is a configuration error naming catalog.url', () => {
    for (const url of ['mysql://db/depot', 'sqlite:', '/srv/catalog.sqlite', 'postgres:/nohost']) {
      const error = loadTextError(`${FS_DRIVER}catalog: { url: "${url}" }\n`);
      expect(issueFor(error, 'catalog.url').message).toBe('must be sqlite:<path> or a postgres:// URL');
    }
  });
});

describe('credentials in the catalog URL', () => {
  test('${ENV} anywhere in the URL; the password masked in every form, the location shown with ***', () => {
    // As in redis.url, a '/' in the password must be written %2F (else the URL ends its host there).
    const { config, redactor } = loadText(`${FS_DRIVER}catalog: { url: "postgres://depot:\${PGPASS}@db.example.org:5432/depot" }\n`, {
      PGPASS: 'p%40ss%2Fw0rd!',
    });
    expect(config.catalog.target).toEqual({ kind: 'postgres', url: 'postgres://depot:p%40ss%2Fw0rd!@db.example.org:5432/depot' });
    expect(config.catalog.location).toBe('postgres://depot:***@db.example.org:5432/depot');
    for (const form of ['p@ss/w0rd!', 'p%40ss%2Fw0rd!']) expect(redactor.redact(`x ${form} y`)).toBe('x *** y');
  });

  test('catalog.urlFile: the whole URL from a file, as a secret; url and urlFile together are refused', () => {
    const dir = tempDir();
    writeFile(dir, 'secrets/catalog-url', 'postgresql://depot:s3cret-Pass@db:5432/depot\n');
    const { config, redactor } = loadText(`${FS_DRIVER}catalog: { urlFile: ${path.join(dir, 'secrets/catalog-url')} }\n`);
    expect(config.catalog.target).toEqual({ kind: 'postgres', url: 'postgresql://depot:s3cret-Pass@db:5432/depot' });
    expect(config.catalog.location).toBe('postgresql://depot:***@db:5432/depot');
    expect(redactor.redact('s3cret-Pass')).toBe('***');
    const both = loadTextError(`${FS_DRIVER}catalog: { url: "sqlite:x", urlFile: ${path.join(dir, 'secrets/catalog-url')} }\n`);
    expect(issueFor(both, 'catalog.url').message).toBe('give either url or urlFile, not both');
    expect(shownText(both)).not.toContain('s3cret-Pass');
  });

  test('an unreadable urlFile names the field, without the URL', () => {
    const error = configError(() => loadText(`${FS_DRIVER}catalog: { urlFile: /no/such/file }\n`));
    expect(issueFor(error, 'catalog.urlFile').message).toMatch(/cannot read \/no\/such\/file/);
  });
});
