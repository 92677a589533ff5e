import { Redactor } from '../../../src/support/redaction';

describe('Redactor', () => {
  test('masks every occurrence of every secret', () => {
    const r = new Redactor();
    r.add('alpha-secret');
    r.add('beta-secret');
    expect(r.redact('alpha-secret, beta-secret and alpha-secret again')).toBe('***, *** and *** again');
  });

  test('masks the URL-encoded form too', () => {
    const r = new Redactor();
    r.add('a b/c@d');
    expect(r.redact(`https://x:${encodeURIComponent('a b/c@d')}@h/`)).toBe('https://x:***@h/');
  });

  test('masks a secret that contains another one whole', () => {
    const r = new Redactor();
    r.add('abc');
    r.add('xxabcxx');
    expect(r.redact('[xxabcxx] [abc]')).toBe('[***] [***]');
  });

  test('ignores empty and undefined secrets (they would match everywhere)', () => {
    const r = new Redactor();
    r.add('');
    r.add(undefined);
    expect(r.size).toBe(0);
    expect(r.redact('nothing to hide')).toBe('nothing to hide');
  });

  test('adding a secret twice does not duplicate it', () => {
    const r = new Redactor();
    r.add('same-secret');
    const size = r.size;
    r.add('same-secret');
    expect(r.size).toBe(size);
  });

  test('treats secrets literally, not as patterns', () => {
    const r = new Redactor();
    r.add('a.c');
    r.add('$&');
    expect(r.redact('abc a.c $& $')).toBe('abc *** *** $');
  });

  test('redactValue: deep copy with every string masked, input untouched', () => {
    const r = new Redactor();
    r.add('tok-123456');
    const value = { a: 'Bearer tok-123456', list: ['tok-123456', 1, true, null], nested: { b: { c: 'tok-123456' } }, n: 5 };
    const copy = r.redactValue(value);
    expect(copy).toEqual({ a: 'Bearer ***', list: ['***', 1, true, null], nested: { b: { c: '***' } }, n: 5 });
    expect(value.a).toBe('Bearer tok-123456');
  });

  test('redactValue without secrets returns the value as it is', () => {
    const value = { a: 1 };
    expect(new Redactor().redactValue(value)).toBe(value);
  });

  test('redactValue masks strings, never numbers: a secret that reads like a number keeps results valid', () => {
    const r = new Redactor();
    r.add('4096');
    r.add('1234567890123456');
    const result = {
      size: 4096,
      sha256: 'ab'.repeat(32),
      counts: [1234567890123456, 4096.5],
      metadata: { pin: '4096', note: 'code 1234567890123456' },
      ok: true,
      none: null,
    };
    expect(r.redactValue(result)).toEqual({
      size: 4096,
      sha256: 'ab'.repeat(32),
      counts: [1234567890123456, 4096.5],
      metadata: { pin: '***', note: 'code ***' },
      ok: true,
      none: null,
    });
  });

  test('redactValue masks keys too, keeps a __proto__ key a key, and sees what JSON.stringify sees', () => {
    const r = new Redactor();
    r.add('tok-123456');
    const value = JSON.parse('{"__proto__": {"a": "tok-123456"}, "tok-123456": 1}') as Record<string, unknown>;
    const copy = r.redactValue({ value, when: new Date(0), url: new URL('https://u:tok-123456@h.example/') });
    expect(JSON.stringify(copy)).toBe('{"value":{"__proto__":{"a":"***"},"***":1},"when":"1970-01-01T00:00:00.000Z","url":"https://u:***@h.example/"}');
  });
});
