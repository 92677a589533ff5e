import { PassThrough } from 'node:stream';
import { audit, createLogger, LogFormat, Logger, LOG_LEVELS, logSettingsFromEnv, silentLogger } from '../../../src/support/logging';
import { Redactor } from '../../../src/support/redaction';

const SECRETS = ['s3-Secret-Key-0123456789', 'hook-secret-abcdef', 'p@ss word/+&='];

interface Captured {
  logger: Logger;
  text: () => Promise<string>;
}

function capture(format: LogFormat, redactor: Redactor, level: 'error' | 'warn' | 'info' | 'debug' = 'debug'): Captured {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const logger = createLogger({ stream, redactor, format, level });
  return {
    logger,
    text: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return out;
    },
  };
}

function redactorWith(...secrets: string[]): Redactor {
  const redactor = new Redactor();
  for (const s of secrets) redactor.add(s);
  return redactor;
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe.each<LogFormat>(['json', 'pretty'])('createLogger (%s): no secret survives', (format) => {
  const [secret, other, special] = SECRETS;

  test('in the message', async () => {
    const { logger, text } = capture(format, redactorWith(...SECRETS));
    logger.info(`connecting with key ${secret} and ${other}`);
    const out = await text();
    expect(out).toContain('connecting with key *** and ***');
    for (const s of SECRETS) expect(out).not.toContain(s);
  });

  test('in meta fields', async () => {
    const { logger, text } = capture(format, redactorWith(...SECRETS));
    logger.warn('request failed', { authorization: `Bearer ${secret}`, secret: other, plain: 'visible-value' });
    const out = await text();
    expect(out).toContain('visible-value');
    expect(out).toContain('Bearer ***');
    for (const s of SECRETS) expect(out).not.toContain(s);
  });

  test('in nested meta (objects and arrays)', async () => {
    const { logger, text } = capture(format, redactorWith(...SECRETS));
    logger.error('upload failed', { request: { headers: { 'x-api-key': secret }, tokens: [other, 'fine'] }, depth: { a: { b: { c: secret } } } });
    const out = await text();
    expect(out).toContain('fine');
    for (const s of SECRETS) expect(out).not.toContain(s);
  });

  test("in an Error's message, logged as the entry or as meta", async () => {
    const { logger, text } = capture(format, redactorWith(...SECRETS));
    logger.error(new Error(`login refused for key ${secret}`));
    logger.error('store failed', new Error(`backend said: bad secret ${other}`));
    const out = await text();
    expect(out).toContain('login refused for key ***');
    expect(out).toContain('backend said: bad secret ***');
    for (const s of SECRETS) expect(out).not.toContain(s);
  });

  test('the URL-encoded form of a secret', async () => {
    const { logger, text } = capture(format, redactorWith(...SECRETS));
    const encoded = encodeURIComponent(special);
    expect(encoded).not.toBe(special);
    logger.info(`GET https://user:${encoded}@backend.example/x`, { url: `https://h.example/?token=${encoded}` });
    const out = await text();
    expect(out).not.toContain(encoded);
    expect(out).not.toContain(special);
    expect(out).toContain('https://user:***@backend.example/x');
  });

  test('a secret added after the logger was created is redacted too', async () => {
    const redactor = new Redactor();
    const { logger, text } = capture(format, redactor);
    redactor.add('late-secret-value');
    logger.info('late-secret-value');
    expect(await text()).not.toContain('late-secret-value');
  });

  test('lines without secrets are left intact', async () => {
    const { logger, text } = capture(format, redactorWith(...SECRETS));
    logger.info('stored 2024/01/01/t/a.zip', { driver: 'local', size: 42 });
    const out = await text();
    expect(out).toContain('stored 2024/01/01/t/a.zip');
    expect(out).not.toContain('***');
  });
});

describe('createLogger formats and levels', () => {
  test('json: one JSON object per line with level, message, timestamp and meta', async () => {
    const { logger, text } = capture('json', new Redactor());
    logger.info('first', { driver: 'local', size: 3 });
    logger.warn('second');
    const lines = jsonLines(await text());
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'info', message: 'first', driver: 'local', size: 3 });
    expect(lines[1]).toMatchObject({ level: 'warn', message: 'second' });
    for (const line of lines) expect(Number.isNaN(Date.parse(String(line.timestamp)))).toBe(false);
  });

  test('pretty: timestamp, level, message and key=value fields on one line', async () => {
    const { logger, text } = capture('pretty', new Redactor());
    logger.info('stored', { driver: 'local', size: 3, nested: { a: 1 } });
    const out = await text();
    expect(out.trimEnd().split('\n')).toHaveLength(1);
    expect(out).toMatch(/^\d{4}-\d{2}-\d{2}T\S+ info\s+stored /);
    expect(out).toContain('driver=local');
    expect(out).toContain('size=3');
    expect(out).toContain('nested={"a":1}');
    expect(() => JSON.parse(out)).toThrow();
  });

  test.each([
    ['error', ['error']],
    ['warn', ['error', 'warn']],
    ['info', ['error', 'warn', 'info']],
    ['debug', ['error', 'warn', 'info', 'debug']],
  ] as const)('level %s lets through %j', async (level, expected) => {
    const { logger, text } = capture('json', new Redactor(), level);
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    expect(
      jsonLines(await text())
        .map((l) => l.level)
        .sort(),
    ).toEqual([...expected].sort());
  });

  test('silentLogger writes nothing and does not throw', () => {
    const logger = silentLogger();
    expect(() => logger.error('nothing', { a: 1 })).not.toThrow();
  });

  // winston's json format escapes `"` and `\`: a secret containing them must be masked
  // before the line is serialized, or it is written in an escaped form (`pa\"ss\\word`).
  test('json: a secret containing a quote or a backslash is redacted', async () => {
    const secret = 'pa"ss\\word-0123';
    const { logger, text } = capture('json', redactorWith(secret));
    logger.info(`auth with ${secret}`, { password: secret });
    const out = await text();
    expect(out).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(out).not.toContain(secret);
  });
});

describe('a secret that reads like a number (a short password)', () => {
  // Redacting the finished line turned `"size":4096` into `"size":***`: no longer JSON.
  test.each<LogFormat>(['json', 'pretty'])('%s: numbers stay numbers, the secret as a string is masked', async (format) => {
    const { logger, text } = capture(format, redactorWith('4096', '1234567890123456'));
    audit(logger, { action: 'store', driver: 'local', key: '2024/01/01/t/a.zip', size: 4096, outcome: 'created' });
    logger.info('totals', { count: 1234567890123456, list: [4096, '4096'], password: '4096', note: 'pin 1234567890123456' });
    const out = await text();
    if (format === 'json') {
      const [auditLine, totals] = jsonLines(out);
      expect(auditLine).toMatchObject({ audit: true, size: 4096 });
      expect(totals).toMatchObject({ count: 1234567890123456, list: [4096, '***'], password: '***', note: 'pin ***' });
    } else {
      expect(out).toContain('size=4096');
      expect(out).toContain('count=1234567890123456');
      expect(out).toContain('list=[4096,"***"]');
      expect(out).toContain('password=***');
      expect(out).toContain('note=pin ***');
    }
  });
});

describe('audit', () => {
  test('writes one JSON line with audit:true and every field of the entry', async () => {
    const { logger, text } = capture('json', new Redactor(), 'info');
    const entry = {
      action: 'store' as const,
      driver: 'local',
      key: '2024/05/17/task-1/a.zip',
      size: 1234,
      sha256: 'ab'.repeat(32),
      taskId: 'task-1',
      outcome: 'created',
    };
    audit(logger, entry);
    const lines = jsonLines(await text());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ ...entry, audit: true, level: 'info' });
    expect(String(lines[0].message)).toContain(entry.key);
    expect(new Date(String(lines[0].timestamp)).toISOString()).toBe(lines[0].timestamp);
  });

  test.each(['retrieve', 'delete'] as const)('%s entries too', async (action) => {
    const { logger, text } = capture('json', new Redactor(), 'info');
    audit(logger, { action, driver: 'worm', key: '2024/01/01/t/b.zip', outcome: action === 'delete' ? 'deleted' : 'read' });
    const [line] = jsonLines(await text());
    expect(line).toMatchObject({ audit: true, action, driver: 'worm', key: '2024/01/01/t/b.zip' });
  });

  test('is logged at info: hidden at level warn', async () => {
    const { logger, text } = capture('json', new Redactor(), 'warn');
    audit(logger, { action: 'store', driver: 'local', key: '2024/01/01/t/a.zip', outcome: 'created' });
    expect(await text()).toBe('');
  });
});

describe('logSettingsFromEnv', () => {
  const pipe = new PassThrough();
  const tty = Object.assign(new PassThrough(), { isTTY: true });

  test('defaults: info; json when not a terminal, pretty on a terminal', () => {
    expect(logSettingsFromEnv({}, pipe)).toEqual({ level: 'info', format: 'json' });
    expect(logSettingsFromEnv({}, tty)).toEqual({ level: 'info', format: 'pretty' });
  });

  test.each(LOG_LEVELS.map((l) => [l]))('LOG_LEVEL=%s', (level) => {
    expect(logSettingsFromEnv({ LOG_LEVEL: level }, pipe).level).toBe(level);
    expect(logSettingsFromEnv({ LOG_LEVEL: level.toUpperCase() }, pipe).level).toBe(level);
  });

  test('LOG_FORMAT overrides the terminal guess, case-insensitively', () => {
    expect(logSettingsFromEnv({ LOG_FORMAT: 'pretty' }, pipe).format).toBe('pretty');
    expect(logSettingsFromEnv({ LOG_FORMAT: 'JSON' }, tty).format).toBe('json');
  });

  test.each([['verbose'], ['trace'], ['silly'], ['']])('LOG_LEVEL=%j is refused, naming LOG_LEVEL', (level) => {
    expect(() => logSettingsFromEnv({ LOG_LEVEL: level }, pipe)).toThrow(/LOG_LEVEL/);
  });

  test.each([['text'], ['xml'], ['']])('LOG_FORMAT=%j is refused, naming LOG_FORMAT', (format) => {
    expect(() => logSettingsFromEnv({ LOG_FORMAT: format }, pipe)).toThrow(/LOG_FORMAT/);
  });
});
