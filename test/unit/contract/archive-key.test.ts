import { archiveKey, parseArchiveKey, KeyParts, newTaskId } from '../../../src/contract';

/** The parts of a key that must parse. */
function parsed(key: string): KeyParts {
  const result = parseArchiveKey(key);
  if (!result.ok) throw new Error(`expected ${key} to parse, got: ${result.problem}`);
  expect(result.key.text).toBe(key);
  const { year, month, day, taskId, name } = result.key;
  return { year, month, day, taskId, name };
}

/** Why a key is refused (undefined when it parses). */
function problem(key: string): string | undefined {
  const result = parseArchiveKey(key);
  return result.ok ? undefined : result.problem;
}

describe('archiveKey', () => {
  test('is YYYY/MM/DD/<taskId>/<name> with zero-padded UTC date', () => {
    expect(archiveKey(new Date(Date.UTC(2024, 0, 5, 12, 0, 0)), 'task-1', 'a.zip')).toBe('2024/01/05/task-1/a.zip');
    expect(archiveKey(new Date(Date.UTC(2031, 11, 31, 0, 0, 0)), 'T', 'b.tar')).toBe('2031/12/31/T/b.tar');
  });

  test('uses the UTC day, not the local one, at both edges of the day', () => {
    expect(archiveKey(new Date('2024-03-09T23:59:59.999Z'), 't', 'n')).toBe('2024/03/09/t/n');
    expect(archiveKey(new Date('2024-03-10T00:00:00.000Z'), 't', 'n')).toBe('2024/03/10/t/n');
    // An instant given with an offset is still filed under its UTC day.
    expect(archiveKey(new Date('2024-03-10T01:30:00+02:00'), 't', 'n')).toBe('2024/03/09/t/n');
  });

  test('pads years below 1000 to four digits', () => {
    const day = new Date(Date.UTC(2000, 0, 1));
    day.setUTCFullYear(987);
    expect(archiveKey(day, 't', 'n')).toBe('0987/01/01/t/n');
  });
});

describe('parseArchiveKey', () => {
  test.each([
    [new Date(Date.UTC(2024, 1, 29)), 'task-1', 'a.zip'],
    [new Date(Date.UTC(1999, 11, 31, 23, 59)), 'x', 'Kurs Übersicht 😀.mbz'],
    [new Date(Date.UTC(2030, 6, 1)), 'x'.repeat(128), 'é'.repeat(127) + 'a'],
    [new Date(Date.UTC(2025, 9, 10)), '...', '.hidden'],
  ])('round-trips archiveKey(%p, %j, %j)', (day, taskId, name) => {
    const key = archiveKey(day, taskId, name);
    expect(parsed(key)).toEqual({
      year: String(day.getUTCFullYear()).padStart(4, '0'),
      month: String(day.getUTCMonth() + 1).padStart(2, '0'),
      day: String(day.getUTCDate()).padStart(2, '0'),
      taskId,
      name,
    });
  });

  test('round-trips a key built from a generated taskId', () => {
    const now = Date.UTC(2026, 4, 17, 8, 30);
    const taskId = newTaskId(now);
    const key = archiveKey(new Date(now), taskId, 'course.mbz');
    expect(parsed(key)).toMatchObject({ year: '2026', month: '05', day: '17', taskId, name: 'course.mbz' });
  });

  test.each([
    ['leading ../', '../2024/01/01/t/a.zip'],
    ['../ in the middle', '2024/01/../t/a.zip'],
    ['.. as taskId', '2024/01/01/../a.zip'],
    ['. as taskId', '2024/01/01/./a.zip'],
    ['.. as name', '2024/01/01/t/..'],
    ['. as name', '2024/01/01/t/.'],
    ['absolute', '/2024/01/01/t/a.zip'],
    ['absolute path outside', '/etc/passwd'],
    ['extra segment', '2024/01/01/t/sub/a.zip'],
    ['traversal in extra segments', '2024/01/01/t/../../../../etc/passwd'],
    ['too few segments', '2024/01/01/a.zip'],
    ['trailing slash', '2024/01/01/t/a.zip/'],
    ['double slash (empty taskId)', '2024/01/01//a.zip'],
    ['empty name', '2024/01/01/t/'],
    ['empty string', ''],
    ['backslash traversal in name', '2024/01/01/t/..\\..\\x'],
    ['NUL in name', '2024/01/01/t/a\u0000.zip'],
    ['control char in name', '2024/01/01/t/a\u0085.zip'],
    ['bad taskId char', '2024/01/01/t t/a.zip'],
    ['taskId too long', `2024/01/01/${'x'.repeat(129)}/a.zip`],
    ['name too long', `2024/01/01/t/${'é'.repeat(128)}`],
    ['month 00', '2024/00/01/t/a.zip'],
    ['month 13', '2024/13/01/t/a.zip'],
    ['day 00', '2024/01/00/t/a.zip'],
    ['day 32', '2024/01/32/t/a.zip'],
    ['one-digit month', '2024/1/01/t/a.zip'],
    ['one-digit day', '2024/01/1/t/a.zip'],
    ['two-digit year', '24/01/01/t/a.zip'],
    ['five-digit year', '20240/01/01/t/a.zip'],
    ['letters as year', 'abcd/01/01/t/a.zip'],
    ['ISO date as first segment', '2024-01-01/x/y/t/a.zip'],
    ['probe-like name in date position', 'probe-1/01/01/t/a.zip'],
  ])('refuses %s', (_label, key) => {
    expect(problem(key)).toEqual(expect.any(String));
  });

  test('says which part is wrong', () => {
    expect(problem('2024/13/01/t/a.zip')).toMatch(/date/);
    expect(problem('2024/01/01/../a.zip')).toMatch(/taskId/);
    expect(problem('2024/01/01/t/..')).toMatch(/name/);
    expect(problem('a/b')).toMatch(/YYYY\/MM\/DD/);
  });
});
