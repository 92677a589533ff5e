import { DepotError, isOperation, namedDrivers, Operation, OPERATIONS, parseTask } from '../../../src/contract';

const KEY = '2024/05/17/0190a3e4-5b6c-7d8e-9f01-23456789abcd/course-12.mbz';
const SHA = 'a'.repeat(64);

/** The DepotError parseTask throws for `data`; fails the test when it does not throw one. */
function rejection(operation: string, data: unknown): DepotError {
  try {
    parseTask(operation as Operation, data);
  } catch (error) {
    expect(error).toBeInstanceOf(DepotError);
    return error as DepotError;
  }
  throw new Error(`parseTask(${operation}) accepted ${JSON.stringify(data)}`);
}

function expectInvalid(operation: string, data: unknown, field: string): DepotError {
  const error = rejection(operation, data);
  expect(error.code).toBe('invalid_task');
  expect(error.field).toBe(field);
  // The message names the field (CONTRACT §2).
  expect(error.message.startsWith(`${field}: `)).toBe(true);
  expect(error.retryable).toBe(false);
  return error;
}

const validStore = { source: { path: '/srv/depot/staging/course-12.mbz' }, name: 'course-12.mbz' };

describe('parseTask: valid tasks from the contract pass', () => {
  test.each([
    ['minimal path source', validStore],
    [
      'url source with headers',
      { source: { url: 'https://moodle.example.org/pluginfile.php/1/x.mbz', headers: { Authorization: 'Bearer x' } }, name: 'x.mbz' },
    ],
    ['url source without headers', { source: { url: 'http://moodle.example.org/x.mbz' }, name: 'x.mbz' }],
    ['inline base64', { source: { base64: Buffer.from('hello archive').toString('base64') }, name: 'hello.txt' }],
    ['empty base64', { source: { base64: '' }, name: 'empty.bin' }],
    [
      'every field',
      {
        taskId: 'moodle-12-34',
        driver: 'worm',
        fallbacks: ['local', 'ftp'],
        source: { path: '/srv/depot/staging/a.zip' },
        name: 'a.zip',
        sha256: SHA,
        size: 0,
        metadata: { courseId: '12', userId: '34' },
        retainUntil: '2036-01-31T00:00:00Z',
        deleteAfter: '2040-01-31',
        callbackUrl: 'https://moodle.example.org/depot-hook',
      },
    ],
    ['retainUntil with offset and fraction', { ...validStore, retainUntil: '2036-01-31T00:00:00.123+01:00' }],
    ['retainUntil with compact offset', { ...validStore, retainUntil: '2036-01-31T00:00+0100' }],
    ['255-byte multi-byte name', { ...validStore, name: '€'.repeat(85) }],
  ])('store: %s', (_label, task) => {
    const parsed = parseTask('store', task);
    expect(parsed).toEqual(task);
  });

  test('store: sha256 is lowercased', () => {
    const upper = 'ABCDEF0123456789'.repeat(4);
    const parsed = parseTask('store', { ...validStore, sha256: upper });
    expect(parsed.sha256).toBe(upper.toLowerCase());
  });

  test('store: an absent taskId stays absent (the worker generates it)', () => {
    expect(parseTask('store', validStore).taskId).toBeUndefined();
  });

  test('does not modify the data it was given', () => {
    const task = { ...validStore, sha256: 'F'.repeat(64) };
    const copy = structuredClone(task);
    parseTask('store', task);
    expect(task).toEqual(copy);
  });

  test.each([
    ['path target', { ref: { driver: 'local', key: KEY }, target: { path: '/srv/depot/out/x.mbz' } }],
    ['inline target', { taskId: 'r-1', ref: { driver: 'local', key: KEY }, target: { inline: true }, callbackUrl: 'https://h.example/x' }],
  ])('retrieve: %s', (_label, task) => {
    expect(parseTask('retrieve', task)).toEqual(task);
  });

  test.each([
    ['minimal', { ref: { driver: 'local', key: KEY } }],
    ['with taskId and callback', { taskId: 'd-1', ref: { driver: 'worm', key: KEY }, callbackUrl: 'http://h.example/x' }],
  ])('delete: %s', (_label, task) => {
    expect(parseTask('delete', task)).toEqual(task);
  });

  test.each([
    ['minimal', { driver: 'local' }],
    ['with taskId', { taskId: 'c-1', driver: 'worm' }],
  ])('check: %s', (_label, task) => {
    expect(parseTask('check', task)).toEqual(task);
  });
});

describe('parseTask store: each bad input is invalid_task naming the field', () => {
  test.each([
    ['name missing', { source: validStore.source }, 'name'],
    ['name not a string', { ...validStore, name: 42 }, 'name'],
    ['name with /', { ...validStore, name: 'a/b.zip' }, 'name'],
    ['name ../', { ...validStore, name: '../../etc/passwd' }, 'name'],
    ['name with \\', { ...validStore, name: 'a\\b.zip' }, 'name'],
    ['name with NUL', { ...validStore, name: 'a\u0000.zip' }, 'name'],
    ['name with DEL', { ...validStore, name: 'a\u007f.zip' }, 'name'],
    ['name with C1', { ...validStore, name: 'a\u009b.zip' }, 'name'],
    ['name .', { ...validStore, name: '.' }, 'name'],
    ['name ..', { ...validStore, name: '..' }, 'name'],
    ['name empty', { ...validStore, name: '' }, 'name'],
    ['name 256 bytes', { ...validStore, name: '€'.repeat(85) + 'a' }, 'name'],
    ['name lone surrogate', { ...validStore, name: 'a\ud800.zip' }, 'name'],
    ['source missing', { name: 'a.zip' }, 'source'],
    ['source empty object', { ...validStore, source: {} }, 'source'],
    ['source with path and url', { ...validStore, source: { path: '/x', url: 'https://h.example/x' } }, 'source'],
    ['source a string', { ...validStore, source: '/srv/x.zip' }, 'source'],
    ['source with unknown key', { ...validStore, source: { file: '/x' } }, 'source'],
    ['sha256 too short', { ...validStore, sha256: 'abc' }, 'sha256'],
    ['sha256 not hex', { ...validStore, sha256: 'g'.repeat(64) }, 'sha256'],
    ['sha256 too long', { ...validStore, sha256: 'a'.repeat(65) }, 'sha256'],
    ['sha256 a number', { ...validStore, sha256: 12 }, 'sha256'],
    ['size negative', { ...validStore, size: -1 }, 'size'],
    ['size fractional', { ...validStore, size: 1.5 }, 'size'],
    ['size a string', { ...validStore, size: '12' }, 'size'],
    ['size NaN', { ...validStore, size: Number.NaN }, 'size'],
    // Numbers and booleans are taken (PHP sends them, see below), and lists of them (CONTRACT §8, which
    // changed this case: a list was refused before); null and objects are not, nor are they inside a list.
    ['metadata value null', { ...validStore, metadata: { courseId: null } }, 'metadata.courseId'],
    ['metadata value an object', { ...validStore, metadata: { course: { id: 12 } } }, 'metadata.course'],
    ['metadata value a list holding null', { ...validStore, metadata: { courseIds: [12, null] } }, 'metadata.courseIds[1]'],
    ['metadata value a list holding a list', { ...validStore, metadata: { courseIds: [['12']] } }, 'metadata.courseIds[0]'],
    ['metadata value a list of 1001', { ...validStore, metadata: { userIds: Array.from({ length: 1001 }, (_, i) => String(i)) } }, 'metadata.userIds'],
    ['metadata a list', { ...validStore, metadata: ['a'] }, 'metadata'],
    ['retainUntil free text', { ...validStore, retainUntil: 'next year' }, 'retainUntil'],
    ['retainUntil without zone', { ...validStore, retainUntil: '2036-01-31T00:00:00' }, 'retainUntil'],
    ['retainUntil month 13', { ...validStore, retainUntil: '2036-13-01' }, 'retainUntil'],
    ['retainUntil epoch number', { ...validStore, retainUntil: 2085000000 }, 'retainUntil'],
    ['deleteAfter free text', { ...validStore, deleteAfter: 'soon' }, 'deleteAfter'],
    ['callbackUrl ftp', { ...validStore, callbackUrl: 'ftp://h.example/x' }, 'callbackUrl'],
    ['callbackUrl not a URL', { ...validStore, callbackUrl: 'not a url' }, 'callbackUrl'],
    ['callbackUrl javascript:', { ...validStore, callbackUrl: 'javascript:alert(1)' }, 'callbackUrl'],
    // Where webhook delivery would refuse to send (the address guard), the task is refused when queued.
    ['callbackUrl to cloud metadata', { ...validStore, callbackUrl: 'http://169.254.169.254/latest/meta-data/' }, 'callbackUrl'],
    ['callbackUrl to IPv6 link-local', { ...validStore, callbackUrl: 'http://[fe80::1]:8080/hook' }, 'callbackUrl'],
    ['callbackUrl to the unspecified address', { ...validStore, callbackUrl: 'http://0.0.0.0/hook' }, 'callbackUrl'],
    ['taskId ..', { ...validStore, taskId: '..' }, 'taskId'],
    ['taskId with /', { ...validStore, taskId: 'a/b' }, 'taskId'],
    ['taskId 129 chars', { ...validStore, taskId: 'x'.repeat(129) }, 'taskId'],
    ['taskId empty', { ...validStore, taskId: '' }, 'taskId'],
    ['driver empty', { ...validStore, driver: '' }, 'driver'],
    ['driver 65 chars', { ...validStore, driver: 'd'.repeat(65) }, 'driver'],
    ['fallbacks not a list', { ...validStore, fallbacks: 'local' }, 'fallbacks'],
    ['fallbacks entry empty', { ...validStore, fallbacks: ['local', ''] }, 'fallbacks[1]'],
    ['unknown extra field', { ...validStore, key: '2024/01/01/t/a.zip' }, 'key'],
    ['unknown extra field (typo)', { ...validStore, retain_until: '2036-01-31' }, 'retain_until'],
    // Node refuses these when it sends the request; they must fail here, named, not later as internal.
    ['header value with CR/LF', { ...validStore, source: { url: 'https://h.example/x', headers: { 'X-Token': 'a\r\nX-Evil: 1' } } }, 'source.headers.X-Token'],
    [
      'header value with LF',
      { ...validStore, source: { url: 'https://h.example/x', headers: { Authorization: 'Bearer x\n' } } },
      'source.headers.Authorization',
    ],
    ['header value with NUL', { ...validStore, source: { url: 'https://h.example/x', headers: { 'X-A': 'a\u0000b' } } }, 'source.headers.X-A'],
    ['header value beyond Latin-1', { ...validStore, source: { url: 'https://h.example/x', headers: { 'X-A': 'Łódź' } } }, 'source.headers.X-A'],
    ['header name with CR/LF', { ...validStore, source: { url: 'https://h.example/x', headers: { 'X-A\r\nX-B': 'v' } } }, 'source.headers'],
    ['header name with a space', { ...validStore, source: { url: 'https://h.example/x', headers: { 'X A': 'v' } } }, 'source.headers'],
    ['header name with a colon', { ...validStore, source: { url: 'https://h.example/x', headers: { 'X-A:': 'v' } } }, 'source.headers'],
    ['header name empty', { ...validStore, source: { url: 'https://h.example/x', headers: { '': 'v' } } }, 'source.headers'],
    // JSON can carry an own `__proto__` key, which zod would drop without a word.
    [
      'header named __proto__',
      { ...validStore, source: { url: 'https://h.example/x', headers: JSON.parse('{"__proto__": "v"}') as unknown } },
      'source.headers',
    ],
    ['metadata key __proto__', { ...validStore, metadata: JSON.parse('{"courseId": "1", "__proto__": "x"}') as unknown }, 'metadata'],
    ['taskId a UUIDv7 of the year 10889', { ...validStore, taskId: 'ffffffff-ffff-7fff-bfff-ffffffffffff' }, 'taskId'],
    ['taskId a UUIDv7 of 10000-01-01', { ...validStore, taskId: 'e677d21f-dc00-7000-8000-000000000000' }, 'taskId'],
  ])('%s', (_label, data, field) => {
    expectInvalid('store', data, field);
  });

  test('a header name with CR/LF is shown escaped: the failedReason stays one line', () => {
    const error = expectInvalid('store', { ...validStore, source: { url: 'https://h.example/x', headers: { 'X-A\r\nX-B': 'v' } } }, 'source.headers');
    expect(error.message).not.toMatch(/[\r\n]/);
    expect(error.message).toContain('X-A\\r\\nX-B');
  });

  test('the last day a key can name, 9999-12-31, and every legal header character pass', () => {
    const lastDay = 'e677d21f-dbff-7fff-bfff-ffffffffffff'; // 9999-12-31T23:59:59.999Z
    const headers = { "!#$%&'*+-.^_`|~Az09": ' tab\tvisible ~ and Latin-1 \u00e9 ' };
    expect(parseTask('store', { ...validStore, taskId: lastDay, source: { url: 'https://h.example/x', headers } })).toMatchObject({
      taskId: lastDay,
      source: { headers },
    });
  });

  test.each([
    ['url scheme file:', { url: 'file:///etc/passwd' }],
    ['url scheme ftp:', { url: 'ftp://h.example/x' }],
    ['url not a URL', { url: 'moodle/x.mbz' }],
    ['empty path', { path: '' }],
    ['base64 with bad length', { base64: 'abc' }],
    ['base64 with bad characters', { base64: 'ab$d' }],
    ['header value not a string', { url: 'https://h.example/x', headers: { 'X-N': 1 } }],
  ])('source %s: invalid_task on source or a field below it', (_label, source) => {
    const error = rejection('store', { ...validStore, source });
    expect(error.code).toBe('invalid_task');
    expect(error.field).toMatch(/^source(\.|$)/);
    expect(error.message.startsWith(`${error.field}: `)).toBe(true);
  });

  test('a non-object task is invalid_task', () => {
    for (const data of [null, undefined, 'store', 42, [validStore]]) {
      expect(rejection('store', data).code).toBe('invalid_task');
    }
  });

  // A plain BullMQ producer may add any JSON: the failedReason must still say which part is wrong.
  test.each(OPERATIONS.map((operation) => [operation]))('%s: job data that is not an object is invalid_task on data', (operation) => {
    for (const data of [null, undefined, 'store', 42, [validStore]]) expectInvalid(operation, data, 'data');
  });

  // 2023 is not a leap year: 2023-02-29 does not exist. Date.parse rolls it over to
  // 2023-03-01, so retention would silently run to another day than the producer wrote.
  test('retainUntil that is not a calendar date (2023-02-29) is refused', () => {
    expectInvalid('store', { ...validStore, retainUntil: '2023-02-29T00:00:00Z' }, 'retainUntil');
  });
});

describe('parseTask: what PHP producers send (CONTRACT §6, second round)', () => {
  // json_encode writes an empty PHP array as [] whether it was meant as a map or a list,
  // numbers as numbers and booleans as booleans.
  const php = (task: string) => JSON.parse(task) as unknown;

  test('metadata [] and headers [] are empty maps', () => {
    expect(parseTask('store', php('{"source":{"path":"\\/srv\\/x.zip"},"name":"x.zip","metadata":[]}'))).toEqual({
      source: { path: '/srv/x.zip' },
      name: 'x.zip',
      metadata: {},
    });
    expect(parseTask('store', php('{"source":{"url":"https:\\/\\/moodle.example.org\\/x.mbz","headers":[]},"name":"x.mbz"}'))).toEqual({
      source: { url: 'https://moodle.example.org/x.mbz', headers: {} },
      name: 'x.mbz',
    });
  });

  test('metadata numbers and booleans are stored as their string form', () => {
    const task = php(
      '{"source":{"path":"/srv/x.zip"},"name":"x.zip","metadata":{"courseId":12,"userId":34,"ratio":0.5,"final":true,"draft":false,"label":"exam"}}',
    );
    expect(parseTask('store', task).metadata).toEqual({ courseId: '12', userId: '34', ratio: '0.5', final: 'true', draft: 'false', label: 'exam' });
  });

  test('metadata lists (CONTRACT §8): strings kept, numbers and booleans as their string form, up to 1000', () => {
    const task = php('{"source":{"path":"/srv/x.zip"},"name":"x.zip","metadata":{"courseId":12,"userIds":[34,"35",true],"none":[]}}');
    expect(parseTask('store', task).metadata).toEqual({ courseId: '12', userIds: ['34', '35', 'true'], none: [] });
    const many = Array.from({ length: 1000 }, (_, i) => String(i));
    expect(parseTask('store', { ...validStore, metadata: { userIds: many } }).metadata).toEqual({ userIds: many });
    expect(expectInvalid('store', { ...validStore, metadata: { userIds: [...many, '1000'] } }, 'metadata.userIds').message).toBe(
      'metadata.userIds: must be a list of at most 1000 values',
    );
  });

  test('a list where a map belongs is refused naming the field, with a message that says what is wanted', () => {
    const metadata = expectInvalid('store', { ...validStore, metadata: ['12'] }, 'metadata');
    expect(metadata.message).toBe('metadata: must be an object of names to values (PHP: an associative array)');
    const headers = expectInvalid('store', { ...validStore, source: { url: 'https://h.example/x', headers: ['Authorization: Bearer x'] } }, 'source.headers');
    expect(headers.message).toBe('source.headers: must be an object of names to values (PHP: an associative array)');
  });

  test('a bad field inside a source is named, not reported as "none of the three sources"', () => {
    expectInvalid('store', { ...validStore, source: { url: 'https://h.example/x', headers: { 'X-N': 1 } } }, 'source.headers.X-N');
    expectInvalid('store', { ...validStore, source: { url: 'https://h.example/x', header: {} } }, 'source.header');
    expectInvalid('store', { ...validStore, source: { base64: 'abc' } }, 'source.base64');
  });
});

describe('parseTask: callbackUrl pointing to a forbidden address, in every spelling of a literal IP', () => {
  test.each([
    'http://169.254.169.254/',
    'http://169.254.169.254./',
    'http://0xA9FEA9FE/',
    'http://2852039166/',
    'http://0251.0376.0251.0376/',
    'http://169.254.43518/',
    'http://[::ffff:169.254.169.254]/',
    'http://[0:0:0:0:0:ffff:a9fe:a9fe]/',
    'http://[FE80::1]/',
    'https://user:pw@169.254.1.1:8443/x?y=1',
    'http://100.100.100.200/',
    'http://[fd00:ec2::254]/',
    'http://[::]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://[::169.254.169.254]/',
  ])('%s', (url) => {
    for (const [operation, task] of [
      ['store', validStore],
      ['retrieve', { ref: { driver: 'local', key: KEY }, target: { inline: true } }],
      ['delete', { ref: { driver: 'local', key: KEY } }],
    ] as const) {
      expectInvalid(operation, { ...task, callbackUrl: url }, 'callbackUrl');
    }
  });

  test('host names and ordinary addresses pass (delivery checks what names resolve to)', () => {
    for (const url of [
      'https://moodle.example.org/hook',
      'http://127.0.0.1:8080/hook',
      'http://10.0.0.5/hook',
      'http://[::1]/hook',
      'http://metadata.example/hook',
    ]) {
      expect(parseTask('store', { ...validStore, callbackUrl: url }).callbackUrl).toBe(url);
    }
  });
});

describe('namedDrivers: the fields of a task that name a driver', () => {
  test('store, retrieve, delete, check', () => {
    expect(namedDrivers('store', parseTask('store', { ...validStore, driver: 'worm', fallbacks: ['local', 'ftp'] }))).toEqual([
      { field: 'driver', driver: 'worm' },
      { field: 'fallbacks[0]', driver: 'local' },
      { field: 'fallbacks[1]', driver: 'ftp' },
    ]);
    expect(namedDrivers('store', parseTask('store', validStore))).toEqual([]);
    expect(namedDrivers('retrieve', parseTask('retrieve', { ref: { driver: 'ftp', key: KEY }, target: { inline: true } }))).toEqual([
      { field: 'ref.driver', driver: 'ftp' },
    ]);
    expect(namedDrivers('delete', parseTask('delete', { ref: { driver: 's3', key: KEY } }))).toEqual([{ field: 'ref.driver', driver: 's3' }]);
    expect(namedDrivers('check', parseTask('check', { driver: 'local' }))).toEqual([{ field: 'driver', driver: 'local' }]);
  });
});

describe('parseTask retrieve / delete / check: each bad input names the field', () => {
  const ref = { driver: 'local', key: KEY };
  test.each([
    ['retrieve', 'ref missing', { target: { inline: true } }, 'ref'],
    ['retrieve', 'ref.key traversal', { ref: { driver: 'local', key: '../../etc/passwd' }, target: { inline: true } }, 'ref.key'],
    ['retrieve', 'ref.key absolute', { ref: { driver: 'local', key: `/${KEY}` }, target: { inline: true } }, 'ref.key'],
    ['retrieve', 'ref.key extra segment', { ref: { driver: 'local', key: `${KEY}/x` }, target: { inline: true } }, 'ref.key'],
    ['retrieve', 'ref.key bad date', { ref: { driver: 'local', key: KEY.replace('/05/', '/13/') }, target: { inline: true } }, 'ref.key'],
    ['retrieve', 'ref.key not a string', { ref: { driver: 'local', key: 7 }, target: { inline: true } }, 'ref.key'],
    ['retrieve', 'ref.driver empty', { ref: { driver: '', key: KEY }, target: { inline: true } }, 'ref.driver'],
    ['retrieve', 'ref extra field', { ref: { ...ref, bucket: 'b' }, target: { inline: true } }, 'ref.bucket'],
    ['retrieve', 'target missing', { ref }, 'target'],
    ['retrieve', 'target inline false', { ref, target: { inline: false } }, 'target'],
    ['retrieve', 'target path and inline', { ref, target: { path: '/x', inline: true } }, 'target'],
    ['retrieve', 'target empty path', { ref, target: { path: '' } }, 'target.path'],
    ['retrieve', 'callbackUrl not http', { ref, target: { inline: true }, callbackUrl: 'mailto:x@h.example' }, 'callbackUrl'],
    ['retrieve', 'unknown extra field', { ref, target: { inline: true }, overwrite: true }, 'overwrite'],
    ['delete', 'ref missing', {}, 'ref'],
    ['delete', 'ref.key traversal', { ref: { driver: 'local', key: '2024/05/17/../../x' } }, 'ref.key'],
    ['delete', 'ref.key with ..', { ref: { driver: 'local', key: '2024/05/17/t/..' } }, 'ref.key'],
    ['delete', 'taskId bad', { taskId: 'a b', ref }, 'taskId'],
    ['delete', 'unknown extra field', { ref, force: true }, 'force'],
    ['check', 'driver missing', {}, 'driver'],
    ['check', 'driver empty', { driver: '' }, 'driver'],
    ['check', 'driver not a string', { driver: ['local'] }, 'driver'],
    ['check', 'unknown extra field', { driver: 'local', ref }, 'ref'],
  ])('%s: %s', (operation, _label, data, field) => {
    expectInvalid(operation, data, field);
  });
});

describe('parseTask: the operation', () => {
  test.each([['bogus'], ['Store'], [''], ['list']])('unknown operation %j is invalid_task on the job name', (operation) => {
    const error = expectInvalid(operation, { driver: 'local' }, 'name');
    expect(error.message).toContain(operation);
  });

  // A job name that happens to be an Object.prototype property is looked up on the
  // plain `schemas` object in tasks.ts and passes the `!schema` guard, so a TypeError
  // (code `internal`, retried) escapes instead of `invalid_task`.
  test.each([['toString'], ['constructor'], ['__proto__'], ['hasOwnProperty']])('job name %j is invalid_task, not a TypeError', (operation) => {
    expectInvalid(operation, { driver: 'local' }, 'name');
  });

  test('isOperation knows exactly the four operations', () => {
    expect([...OPERATIONS].sort()).toEqual(['check', 'delete', 'retrieve', 'store']);
    for (const op of OPERATIONS) expect(isOperation(op)).toBe(true);
    for (const op of ['toString', 'constructor', '__proto__', 'STORE', '', 1, null]) expect(isOperation(op)).toBe(false);
  });
});
