import { existsSync } from 'node:fs';
import path from 'node:path';
import { openCatalog } from '../../src/catalog/open';
import { TempDirs } from '../helpers/queue-harness';
import { describeCatalog } from './suite';

/** The catalog suite on SQLite (node:sqlite), each check with a database file of its own. */
const temp = new TempDirs();
let file = '';

afterAll(() => temp.cleanup());

const settings = (at: string) => ({ target: { kind: 'sqlite' as const, file: at }, location: `sqlite:${at}` });

describeCatalog('SQLite', {
  fresh: async () => {
    file = path.join(await temp.make('depot-catalog-'), 'data', 'catalog.sqlite');
    return openCatalog(settings(file), 'write');
  },
  reader: () => openCatalog(settings(file), 'read'),
  missing: async () => {
    const at = path.join(await temp.make('depot-catalog-'), 'data', 'catalog.sqlite');
    return {
      open: () => openCatalog(settings(at), 'read'),
      where: new RegExp(`no catalog at sqlite:${at.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
      exists: async () => existsSync(path.dirname(at)),
    };
  },
});
