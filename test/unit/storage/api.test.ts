import { DepotError } from '../../../src/contract';
import { StorageAPI } from '../../../src/storage/api';
import { ArchiveStore } from '../../../src/storage/archive-store';
import { defaultDriverFactory } from '../../../src/storage/drivers';
import { FilesystemDriver } from '../../../src/storage/drivers/filesystem';
import { SettingsError, StorageDriverFactory } from '../../../src/storage/factory';
import { silentLogger } from '../../../src/support/logging';
import { fakeDriverDefinition } from '../fake-driver';

function setup(drivers: Record<string, { type: string; [k: string]: unknown }> = { a: { type: 'fake' }, b: { type: 'fake' } }) {
  const definition = fakeDriverDefinition();
  const factory = new StorageDriverFactory().register(definition);
  const api = new StorageAPI({ defaultDriver: Object.keys(drivers)[0], drivers }, factory, silentLogger());
  return { api, definition };
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('StorageAPI', () => {
  test('knows the configured driver names and the default', () => {
    const { api } = setup();
    expect(api.driverNames()).toEqual(['a', 'b']);
    expect(api.defaultDriver).toBe('a');
  });

  test.each([['nope'], [''], ['toString'], ['__proto__'], ['constructor']])('unknown driver %j → DepotError unknown_driver on field driver', (name) => {
    const { api, definition } = setup();
    const error = thrown(() => api.getStorageDriver(name));
    expect(error).toBeInstanceOf(DepotError);
    expect((error as DepotError).code).toBe('unknown_driver');
    expect((error as DepotError).field).toBe('driver');
    expect((error as DepotError).retryable).toBe(false);
    expect(definition.created).toHaveLength(0);
  });

  test('getArchiveStore of an unknown driver is unknown_driver too', () => {
    const { api } = setup();
    expect(() => api.getArchiveStore('nope')).toThrow(expect.objectContaining({ code: 'unknown_driver' }));
  });

  test('the same instance is returned twice; the factory creates it once', () => {
    const { api, definition } = setup();
    const first = api.getStorageDriver('a');
    expect(api.getStorageDriver('a')).toBe(first);
    expect(definition.created).toEqual([first]);
    expect(first.name).toBe('a');
  });

  test('each name gets its own instance with its own settings', () => {
    const { api, definition } = setup({ a: { type: 'fake', endpoint: 'https://a' }, b: { type: 'fake', endpoint: 'https://b' } });
    const a = api.getStorageDriver('a');
    const b = api.getStorageDriver('b');
    expect(a).not.toBe(b);
    expect(definition.created.map((d) => [d.name, d.settings.endpoint])).toEqual([
      ['a', 'https://a'],
      ['b', 'https://b'],
    ]);
  });

  test('getArchiveStore wraps the same driver and is itself kept', () => {
    const { api } = setup();
    const store = api.getArchiveStore('b');
    expect(store).toBeInstanceOf(ArchiveStore);
    expect(store.driver).toBe(api.getStorageDriver('b'));
    expect(api.getArchiveStore('b')).toBe(store);
    expect(store.name).toBe('b');
  });

  test('close() closes every created driver once, and only those', async () => {
    const { api, definition } = setup({ a: { type: 'fake' }, b: { type: 'fake' }, c: { type: 'fake' } });
    api.getStorageDriver('a');
    api.getArchiveStore('c');
    await api.close();
    expect(definition.created.map((d) => [d.name, d.closeCalls])).toEqual([
      ['a', 1],
      ['c', 1],
    ]);
    await api.close();
    expect(definition.created.map((d) => d.closeCalls)).toEqual([1, 1]);
  });

  test('close() closes the others when one fails to close', async () => {
    const { api, definition } = setup({ bad: { type: 'fake', failClose: true }, good: { type: 'fake' } });
    api.getStorageDriver('bad');
    api.getStorageDriver('good');
    await expect(api.close()).resolves.toBeUndefined();
    expect(definition.created.map((d) => d.closeCalls)).toEqual([1, 1]);
  });

  test('after close() a driver is created anew', async () => {
    const { api, definition } = setup();
    const before = api.getStorageDriver('a');
    await api.close();
    const after = api.getStorageDriver('a');
    expect(after).not.toBe(before);
    expect(definition.created).toHaveLength(2);
  });

  test('the built-in factory makes filesystem drivers', () => {
    const factory = defaultDriverFactory();
    const local = factory.parseSettings('local', { type: 'filesystem', root: '/nonexistent/depot-test' });
    const api = new StorageAPI({ defaultDriver: 'local', drivers: { local } }, factory, silentLogger());
    const driver = api.getStorageDriver('local');
    expect(driver).toBeInstanceOf(FilesystemDriver);
    expect(driver.type).toBe('filesystem');
  });
});

describe('StorageDriverFactory', () => {
  test('types lists the registered types; the default factory has filesystem', () => {
    expect(defaultDriverFactory().types()).toContain('filesystem');
    expect(new StorageDriverFactory().register(fakeDriverDefinition()).types()).toEqual(['fake']);
  });

  test('parseSettings applies the type schema', () => {
    const factory = defaultDriverFactory();
    expect(factory.parseSettings('local', { type: 'filesystem', root: '/x' })).toEqual({ type: 'filesystem', root: '/x', fsync: true, fileMode: 0o444 });
  });

  test.each([
    ['unknown type', { type: 'dropbox' }, 'drivers.x.type'],
    ['missing type', { root: '/x' }, 'drivers.x.type'],
    ['null settings', null, 'drivers.x.type'],
    ['bad setting', { type: 'filesystem', root: '/x', fsync: 'no' }, 'drivers.x.fsync'],
    ['unknown setting', { type: 'filesystem', root: '/x', colour: 'red' }, 'drivers.x.colour'],
  ])('parseSettings: %s → SettingsError on %s', (_label, raw, field) => {
    const error = thrown(() => defaultDriverFactory().parseSettings('x', raw));
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).issues.map((i) => i.field)).toContain(field);
  });

  test('create of an unregistered type is unknown_driver', () => {
    expect(() => new StorageDriverFactory().create('x', { type: 'fake' }, silentLogger())).toThrow(expect.objectContaining({ code: 'unknown_driver' }));
  });
});
