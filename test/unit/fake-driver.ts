import { Readable } from 'node:stream';
import { z } from 'zod';
import { ArchiveKey, DepotError, Manifest, Space } from '../../src/contract';
import type { DriverCapabilities, ProbeReport, PublishOutcome, StorageDriver } from '../../src/storage/driver';
import type { DriverDefinition } from '../../src/storage/factory';

/**
 * A driver type for unit tests: it has secret settings (the built-in filesystem
 * driver has none) and counts what is done to its instances.
 */
export const fakeSettingsSchema = z.strictObject({
  type: z.literal('fake'),
  endpoint: z.string().optional(),
  user: z.string().optional(),
  password: z.string().optional(),
  token: z.string().optional(),
  failClose: z.boolean().optional(),
});
export type FakeSettings = z.infer<typeof fakeSettingsSchema>;

export class FakeDriver implements StorageDriver {
  readonly type = 'fake';
  readonly capabilities: DriverCapabilities = { retention: false, space: false, list: false };
  closeCalls = 0;

  constructor(
    readonly name: string,
    readonly settings: FakeSettings,
  ) {}

  async store(): Promise<PublishOutcome> {
    throw new DepotError('internal', 'not implemented in the fake');
  }
  async retrieve(key: ArchiveKey): Promise<{ body: Readable; manifest: Manifest }> {
    throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
  }
  async stat(): Promise<Manifest | null> {
    return null;
  }
  async delete(key: ArchiveKey): Promise<void> {
    throw new DepotError('not_found', `no archive ${this.name}:${key.text}`);
  }
  async *list(): AsyncIterable<Manifest> {
    // nothing stored
  }
  async check(): Promise<ProbeReport> {
    return { writeMs: 0, readMs: 0, deleteMs: 0, writeOnce: 'enforced' };
  }
  async space(): Promise<Space> {
    return {};
  }
  async close(): Promise<void> {
    this.closeCalls++;
    if (this.settings.failClose) throw new Error(`${this.name} failed to close`);
  }
}

/** A fresh definition per test, so created instances can be observed. */
export function fakeDriverDefinition(): DriverDefinition<FakeSettings> & { created: FakeDriver[] } {
  const created: FakeDriver[] = [];
  return {
    type: 'fake',
    settingsSchema: fakeSettingsSchema,
    secretFields: ['password', 'token'],
    created,
    create(name, settings) {
      const driver = new FakeDriver(name, settings);
      created.push(driver);
      return driver;
    },
  };
}
