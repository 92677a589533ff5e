import { isInsideRoot } from '../../../src/support/path-inside';

describe('isInsideRoot', () => {
  test.each([
    ['/srv/a', '/srv/a', true],
    ['/srv/a/b/c', '/srv/a', true],
    ['/srv/a/', '/srv/a/', true],
    ['/srv/a/b', '/srv/a/', true],
    ['/srv/ab', '/srv/a', false],
    ['/srv', '/srv/a', false],
    ['/anything', '/', true],
    ['/', '/', true],
  ])('%s inside %s: %s', (candidate, root, inside) => {
    expect(isInsideRoot(candidate, root)).toBe(inside);
  });

  test('with another separator (FTP paths are POSIX whatever the host)', () => {
    expect(isInsideRoot('C:\\srv\\a\\b', 'C:\\srv\\a', '\\')).toBe(true);
    expect(isInsideRoot('C:\\srv\\ab', 'C:\\srv\\a', '\\')).toBe(false);
  });
});
