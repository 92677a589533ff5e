/**
 * How a batch of catalog writes becomes statements (PostgreSQL): the rows of
 * consecutive stores go together, one statement per kind, but never an
 * archive twice in one statement (ON CONFLICT DO UPDATE cannot touch a row
 * twice) and never across another write (nothing may change order with it).
 * The database suite cannot see this: a batch that fails is retried write by
 * write, which hides a wrong grouping.
 */
import type { SqlSession, SqlValue } from '../../../src/catalog/sql';
import { InputRow, PendingWrite, statementsOf } from '../../../src/catalog/sql-catalog';

const row = (statement: string, key: string): InputRow => ({ statement, ref: JSON.stringify(['local', key]), input: { key } });

function write(what: InputRow | string): PendingWrite {
  const noop = () => undefined;
  if (typeof what === 'string') return { work: (tx) => tx.run(what).then(noop), resolve: noop, reject: noop };
  return { work: async () => undefined, row: what, resolve: noop, reject: noop };
}

/** The statements the batch runs, in order: each as its text and the keys of its rows. */
async function run(batch: PendingWrite[]): Promise<string[]> {
  const ran: string[] = [];
  const session: SqlSession = {
    all: async () => [],
    run: async (sql: string, params: readonly SqlValue[] = []) => {
      const rows = params.length ? (JSON.parse(String(params[0])) as Array<{ key: string }>).map((r) => r.key) : [];
      ran.push(rows.length ? `${sql}(${rows.join(',')})` : sql);
      return 1;
    },
  };
  for (const statement of statementsOf(batch)) await statement(session);
  return ran;
}

test('consecutive stores: one statement per kind, with every row', async () => {
  expect(await run([write(row('pending', 'a')), write(row('stored', 'b')), write(row('pending', 'c'))])).toEqual(['pending(a,c)', 'stored(b)']);
});

test('an archive a second time starts new statements after the ones it was in', async () => {
  expect(await run([write(row('stored', 'a')), write(row('stored', 'b')), write(row('stored', 'a')), write(row('pending', 'c'))])).toEqual([
    'stored(a,b)',
    'stored(a)',
    'pending(c)',
  ]);
});

test('another write closes the statements so far: a store after a deletion stays after it', async () => {
  expect(await run([write(row('stored', 'a')), write('delete b'), write(row('stored', 'b')), write(row('stored', 'c'))])).toEqual([
    'stored(a)',
    'delete b',
    'stored(b,c)',
  ]);
});
