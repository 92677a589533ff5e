import { DepotError } from '../contract';
import type { Logger } from '../support/logging';
import { Semaphore } from '../support/semaphore';
import { ArchiveStore } from './archive-store';
import type { StorageDriver } from './driver';
import type { StorageDriverFactory } from './factory';

export interface StorageConfig {
  defaultDriver: string;
  drivers: Record<string, { type: string; maxConcurrent?: unknown }>;
}

/**
 * StorageAPI: the one entry to the configured drivers. Instances are made on
 * first use by the factory and kept, so connections are reused across tasks.
 */
export class StorageAPI {
  private readonly drivers = new Map<string, StorageDriver>();
  private readonly stores = new Map<string, ArchiveStore>();
  private readonly slots = new Map<string, Semaphore>();

  constructor(
    private readonly config: StorageConfig,
    private readonly factory: StorageDriverFactory,
    private readonly logger: Logger,
  ) {}

  get defaultDriver(): string {
    return this.config.defaultDriver;
  }

  driverNames(): string[] {
    return Object.keys(this.config.drivers);
  }

  /** The driver instance `name`; `unknown_driver` when the config has none. */
  getStorageDriver(name: string): StorageDriver {
    let driver = this.drivers.get(name);
    if (driver) return driver;
    const settings = this.settingsOf(name);
    if (!settings) {
      throw new DepotError('unknown_driver', `no driver named '${name}' (configured: ${this.driverNames().join(', ')})`, { field: 'driver' });
    }
    driver = this.factory.create(name, settings, this.logger);
    this.logger.debug(`driver ${name} (${settings.type}) ready`, { driver: name, type: settings.type });
    this.drivers.set(name, driver);
    return driver;
  }

  /** The driver behind the shared layer that hashes, verifies and audits. */
  getArchiveStore(name: string): ArchiveStore {
    let store = this.stores.get(name);
    if (!store) {
      store = new ArchiveStore(this.getStorageDriver(name), this.logger);
      this.stores.set(name, store);
    }
    return store;
  }

  /**
   * A transfer slot on driver `name` (its `maxConcurrent`, per process); call
   * the returned function when the transfer is over. Unlimited when not set.
   */
  async transferSlot(name: string, signal?: AbortSignal): Promise<() => void> {
    const limit = this.settingsOf(name)?.maxConcurrent;
    if (typeof limit !== 'number') return () => undefined;
    let slots = this.slots.get(name);
    if (!slots) {
      slots = new Semaphore(limit);
      this.slots.set(name, slots);
    }
    return slots.acquire(signal);
  }

  /** Own entries only: a driver named `constructor` or `__proto__` in a task must not find Object's. */
  private settingsOf(name: string): StorageConfig['drivers'][string] | undefined {
    return Object.hasOwn(this.config.drivers, name) ? this.config.drivers[name] : undefined;
  }

  async close(): Promise<void> {
    const drivers = [...this.drivers.values()];
    this.drivers.clear();
    this.stores.clear();
    await Promise.allSettled(drivers.map((d) => d.close()));
  }
}
