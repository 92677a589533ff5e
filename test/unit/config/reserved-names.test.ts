import { fields, FS_DRIVER, issueFor, loadText, loadTextError, removeTempDirs } from './helpers';

afterAll(removeTempDirs);

/**
 * Driver names that every JavaScript object already has as a property are
 * refused at start, naming the field: looked up on a plain object they would
 * find Object's own (`constructor`), and zod drops a `__proto__` key without a word.
 */
const RESERVED = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];

describe('driver names every object has', () => {
  test.each(RESERVED)('drivers.%s is refused, also beside a valid driver (YAML)', (name) => {
    const error = loadTextError(`${FS_DRIVER}  ${name}: { type: filesystem, root: /srv/other }\ndefaultDriver: local\n`);
    expect(issueFor(error, `drivers.${name}`).message).toContain(name);
    expect(error.message).toContain(`drivers.${name}: `);
  });

  test.each(RESERVED)('drivers.%s is refused as the only driver (JSON)', (name) => {
    const error = loadTextError(`{ "drivers": { ${JSON.stringify(name)}: { "type": "filesystem", "root": "/srv/archive" } } }`, {}, 'depot.json');
    expect(fields(error.issues)).toEqual([`drivers.${name}`]);
  });

  test.each(RESERVED)('failover.%s, as key or as target, is refused', (name) => {
    const asKey = loadTextError(`${FS_DRIVER}failover: { ${name}: [local] }\n`);
    expect(fields(asKey.issues)).toContain(`failover.${name}`);
    const asTarget = loadTextError(
      `${FS_DRIVER}  spare: { type: filesystem, root: /srv/spare }\ndefaultDriver: local\nfailover: { local: [spare, ${name}] }\n`,
    );
    expect(fields(asTarget.issues)).toContain('failover.local[1]');
  });

  test.each(RESERVED)('defaultDriver %s is refused', (name) => {
    const error = loadTextError(`${FS_DRIVER}defaultDriver: ${name}\n`);
    expect(fields(error.issues)).toContain('defaultDriver');
  });

  test('names that merely resemble them are drivers like any', () => {
    const { config } = loadText(
      `drivers:\n  Constructor: { type: filesystem, root: /a }\n  proto: { type: filesystem, root: /b }\n  to-string: { type: filesystem, root: /c }\ndefaultDriver: proto\nfailover: { proto: [Constructor, to-string] }\n`,
    );
    expect(Object.keys(config.drivers)).toEqual(['Constructor', 'proto', 'to-string']);
    expect(config.failover).toEqual({ proto: ['Constructor', 'to-string'] });
  });
});
