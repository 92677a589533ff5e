import type { StorageDriver } from '../../src/storage/driver';
import { defaultDriverFactory } from '../../src/storage/drivers';
import { StorageDriverFactory } from '../../src/storage/factory';

/** Calls each driver received, by method: what an operation asked of the backends. */
export type BackendCalls = Record<string, number>;

const COUNTED = ['store', 'retrieve', 'stat', 'delete', 'list', 'check', 'space'] as const;

/**
 * The built-in drivers, each wrapped so that every call it receives is
 * counted in `calls` (`list` once per listing). Tests assert what an
 * operation read from the backends.
 */
export function countingFactory(calls: BackendCalls): StorageDriverFactory {
  const real = defaultDriverFactory();
  const factory = defaultDriverFactory();
  factory.create = (name, settings, logger): StorageDriver => {
    const driver = real.create(name, settings, logger);
    return new Proxy(driver, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function' || !(COUNTED as readonly (string | symbol)[]).includes(property)) return value;
        return (...args: unknown[]): unknown => {
          calls[String(property)] = (calls[String(property)] ?? 0) + 1;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  };
  return factory;
}

export function resetCalls(calls: BackendCalls): void {
  for (const key of Object.keys(calls)) delete calls[key];
}
