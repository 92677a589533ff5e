import { openCatalog } from '../../src/catalog/open';
import { createTestDatabase, queryDatabase, TestDatabase } from '../helpers/postgres';
import { describeCatalog } from './suite';

/** The catalog suite on PostgreSQL: each check with a database of its own on the machine's server, dropped afterwards. */
jest.setTimeout(30_000);
const databases: TestDatabase[] = [];
let current: TestDatabase | undefined;

afterAll(async () => {
  await Promise.all(databases.map((db) => db.drop()));
});

const settings = (db: TestDatabase) => {
  const location = new URL(db.url);
  return { target: { kind: 'postgres' as const, url: db.url }, location: location.href };
};

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  databases.push(db);
  return db;
}

describeCatalog('PostgreSQL', {
  fresh: async () => {
    current = await database();
    return openCatalog(settings(current), 'write');
  },
  reader: () => openCatalog(settings(current!), 'read'),
  missing: async () => {
    const db = await database();
    return {
      open: () => openCatalog(settings(db), 'read'),
      where: new RegExp(`no catalog at postgres://postgres@127\\.0\\.0\\.1:5432/${db.name}`),
      exists: async () => (await queryDatabase(db.url, `SELECT 1 FROM information_schema.tables WHERE table_name LIKE 'depot_%'`)).length > 0,
    };
  },
});
