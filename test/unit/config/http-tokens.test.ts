import path from 'node:path';
import { httpTokens } from '../../../src/http/token-scope';
import { fields, FS_DRIVER, loadText, loadTextError, removeTempDirs, shownText, tempDir, writeFile } from './helpers';

/** CONTRACT §9: named, scoped `http.tokens`; their secrets resolved and masked like every secret, their names not. */
afterAll(removeTempDirs);

const SITE = 'moodle-a-token-0123456789';

test('a plain token is token-<index> with every scope; a named one keeps its name and scope, its secret from ${ENV} or tokenFile', () => {
  const text = `${FS_DRIVER}http:\n  tokens:\n    - "\${ADMIN}"\n    - { name: moodle-a, token: "\${SITE}", scope: { operations: [store, list], drivers: [local], metadata: { siteId: moodle-a } } }\n`;
  const { config, redactor } = loadText(text, { ADMIN: 'admin-token-0123456789', SITE });
  const tokens = httpTokens(config.http.tokens);
  expect(tokens.map((t) => [t.name, t.secret])).toEqual([
    ['token-0', 'admin-token-0123456789'],
    ['moodle-a', SITE],
  ]);
  expect(tokens[0].scope.unlimited).toBe(true);
  const scope = tokens[1].scope;
  expect([scope.allowsOperation('store'), scope.allowsOperation('delete'), scope.allowsDriver('local'), scope.allowsDriver('s3')]).toEqual([
    true,
    false,
    true,
    false,
  ]);
  expect(scope.allowsArchive({ siteId: 'moodle-a', courseId: '1' })).toBe(true);
  expect(scope.allowsArchive({ siteId: 'moodle-b' })).toBe(false);
  expect(scope.allowsArchive({ siteId: ['moodle-b', 'moodle-a'] })).toBe(true);
  expect(redactor.redact(`it was ${SITE}`)).not.toContain(SITE);
  expect(redactor.redact('moodle-a')).toBe('moodle-a');
});

test('tokenFile is read relative to the config file; a literal token, an unknown scope driver, a name used twice are refused by field', () => {
  const secrets = tempDir();
  writeFile(secrets, 'b.token', `${SITE}\n`);
  const { config, dir, redactor } = loadText(`${FS_DRIVER}http: { tokens: [ { name: b, tokenFile: ${path.join(secrets, 'b.token')} } ] }\n`, {});
  expect(httpTokens(config.http.tokens).map((t) => [t.name, t.secret])).toEqual([['b', SITE]]);
  expect(redactor.redact(SITE)).not.toContain(SITE);
  expect(config.http.spoolDir).toBe(path.join(dir, 'data', 'spool'));
  const literal = loadTextError(`${FS_DRIVER}http: { tokens: [ { name: a, token: "literal-token-0123456789" } ] }\n`);
  expect(fields(literal.issues)).toEqual(['http.tokens[0].token']);
  expect(shownText(literal)).not.toContain('literal-token-0123456789');
  const driver = loadTextError(`${FS_DRIVER}http: { tokens: [ { name: a, token: "\${T}", scope: { drivers: [nowhere] } } ] }\n`, { T: SITE });
  expect(fields(driver.issues)).toEqual(['http.tokens[0].scope.drivers[0]']);
  const twice = loadTextError(`${FS_DRIVER}http: { tokens: [ "\${T}", { name: token-0, token: "\${T}" } ] }\n`, { T: SITE });
  expect(fields(twice.issues)).toEqual(['http.tokens[1].name']);
  const operation = loadTextError(`${FS_DRIVER}http: { tokens: [ { name: a, token: "\${T}", scope: { operations: [erase] } } ] }\n`, { T: SITE });
  expect(fields(operation.issues)).toEqual(['http.tokens[0].scope.operations[0]']);
});
