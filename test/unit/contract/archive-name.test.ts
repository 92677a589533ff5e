import { archiveNameProblem, MAX_NAME_BYTES, parseArchiveKey, taskIdProblem, toArchiveKey } from '../../../src/contract';

/** A name of exactly `bytes` UTF-8 bytes built from `char` plus ASCII padding. */
function nameOfBytes(bytes: number, char: string): string {
  const width = Buffer.byteLength(char, 'utf8');
  const count = Math.floor(bytes / width);
  return char.repeat(count) + 'a'.repeat(bytes - count * width);
}

describe('archiveNameProblem (CONTRACT §2: a plain name)', () => {
  test.each([
    ['archive.zip'],
    ['backup-course-12-2024.mbz'],
    ['...'],
    ['.hidden'],
    ['..zip'],
    ['name with spaces.tar.gz'],
    ['Kurs Übersicht – 2024 ✓.zip'],
    ['日本語のアーカイブ.zip'],
    ['emoji 😀 archive.zip'],
    ['nbsp\u00a0name'],
  ])('accepts %j', (name) => {
    expect(archiveNameProblem(name)).toBeNull();
  });

  test.each([
    ['empty', ''],
    ['dot', '.'],
    ['dot-dot', '..'],
    ['slash', 'a/b'],
    ['leading slash', '/etc/passwd'],
    ['traversal', '../x.zip'],
    ['trailing slash', 'dir/'],
    ['backslash', 'a\\b'],
    ['windows traversal', '..\\x.zip'],
    ['NUL', 'a\u0000b'],
    ['trailing NUL', 'x.zip\u0000'],
    ['SOH (C0)', 'a\u0001b'],
    ['unit separator (C0 last)', 'a\u001fb'],
    ['newline', 'a\nb'],
    ['carriage return', 'a\rb'],
    ['tab', 'a\tb'],
    ['escape', '\u001b[31mred.zip'],
    ['DEL', 'a\u007fb'],
    ['C1 first', 'a\u0080b'],
    ['C1 NEL', 'a\u0085b'],
    ['C1 last', 'a\u009fb'],
    ['lone high surrogate', 'a\ud800b'],
    ['lone low surrogate', 'a\udc00b'],
    ['lone surrogate at the end', 'archive\ud83d'],
  ])('refuses %s', (_label, name) => {
    const problem = archiveNameProblem(name);
    expect(typeof problem).toBe('string');
    expect(problem).not.toHaveLength(0);
  });

  test('limit is 255 bytes', () => {
    expect(MAX_NAME_BYTES).toBe(255);
  });

  test.each([
    ['ASCII (1 byte)', 'a'],
    ['Latin-1 é (2 bytes)', 'é'],
    ['euro sign (3 bytes)', '€'],
    ['emoji (4 bytes, surrogate pair)', '😀'],
  ])('counts %s in UTF-8 bytes: 255 accepted, 256 refused', (_label, char) => {
    const ok = nameOfBytes(255, char);
    const tooLong = nameOfBytes(256, char);
    expect(Buffer.byteLength(ok, 'utf8')).toBe(255);
    expect(Buffer.byteLength(tooLong, 'utf8')).toBe(256);
    expect(archiveNameProblem(ok)).toBeNull();
    expect(archiveNameProblem(tooLong)).toMatch(/255 bytes/);
  });

  test('a name short in UTF-16 units but long in bytes is refused', () => {
    const name = 'é'.repeat(128); // 128 characters, 256 bytes
    expect(name.length).toBeLessThan(255);
    expect(archiveNameProblem(name)).toMatch(/bytes/);
  });

  test('the reason names what is wrong', () => {
    expect(archiveNameProblem('a/b')).toContain('/');
    expect(archiveNameProblem('a\\b')).toContain('\\');
    expect(archiveNameProblem('a\u0000b')).toMatch(/NUL/);
    expect(archiveNameProblem('a\u007fb')).toMatch(/control/);
    expect(archiveNameProblem('a\ud800b')).toMatch(/surrogate|Unicode/);
  });
});

describe("archive names stay out of the manifests' name space (<name>.depot.json sidecars)", () => {
  test.each([
    ['a sidecar name', 'exam.zip.depot.json'],
    ['the sidecar of a plain name', 'x.depot.json'],
    ['a hashed sidecar name', '.0123456789abcdef0123456789abcdef.depot.json'],
    ['the bare suffix', '.depot.json'],
    ['upper case', 'x.DEPOT.JSON'],
    ['mixed case', 'x.Depot.Json'],
    ['a long s (U+017F) for s', 'x.depot.j\u017fon'],
    ['full-width letters', 'x.\uff44\uff45\uff50\uff4f\uff54.json'],
    ['a trailing dot (Windows drops it)', 'x.depot.json.'],
    ['trailing spaces and dots', 'x.depot.json . '],
  ])('refuses %s', (_label, name) => {
    expect(archiveNameProblem(name)).toMatch(/\.depot\.json/);
  });

  test.each([['depot.json'], ['x.depot.json.zip'], ['x.depot-json'], ['x.depot.jsonl'], ['x depot.json'], ['x.json']])('accepts %j', (name) => {
    expect(archiveNameProblem(name)).toBeNull();
  });

  test('a key whose name ends like a manifest is not a key', () => {
    const refused = parseArchiveKey('2026/01/02/task-1/x.depot.json');
    expect(refused.ok ? undefined : refused.problem).toMatch(/name segment .*\.depot\.json/);
    expect(toArchiveKey('2026/01/02/task-1/x.zip')).toMatchObject({ name: 'x.zip' });
  });
});

describe('taskIdProblem (CONTRACT §2: 1-128 chars of A-Z a-z 0-9 . _ -)', () => {
  test.each([['a'], ['ABC-def_012.3'], ['...'], ['.x'], ['x'.repeat(128)], ['0190a3e4-5b6c-7d8e-9f01-23456789abcd']])('accepts %j', (taskId) => {
    expect(taskIdProblem(taskId)).toBeNull();
  });

  test.each([
    ['empty', ''],
    ['dot', '.'],
    ['dot-dot', '..'],
    ['129 chars', 'x'.repeat(129)],
    ['slash', 'a/b'],
    ['backslash', 'a\\b'],
    ['space', 'a b'],
    ['non-ASCII letter', 'täsk'],
    ['trailing newline', 'abc\n'],
    ['leading newline', '\nabc'],
    ['NUL', 'a\u0000'],
    ['colon', 'a:b'],
    ['plus', 'a+b'],
  ])('refuses %s', (_label, taskId) => {
    expect(taskIdProblem(taskId)).toEqual(expect.any(String));
  });
});
