/* eslint-disable @typescript-eslint/no-require-imports -- each type's module is required on first use, see below */
import { StorageDriverFactory } from '../factory';

/**
 * The factory with every driver type this build has. A type's module — its
 * settings schema, its driver, and the client package that driver uses
 * (basic-ftp, the AWS SDK, the NATS client) — is loaded only when a
 * configuration names that type: a worker does not load, nor hold in memory,
 * the drivers it is not configured for.
 */
export function defaultDriverFactory(): StorageDriverFactory {
  return new StorageDriverFactory()
    .registerLazy('filesystem', () => (require('./filesystem') as typeof import('./filesystem')).filesystemDriver)
    .registerLazy('s3', () => (require('./s3') as typeof import('./s3')).s3Driver)
    .registerLazy('ftp', () => (require('./ftp') as typeof import('./ftp')).ftpDriver)
    .registerLazy('moodle', () => (require('./moodle') as typeof import('./moodle')).moodleDriver)
    .registerLazy('nats', () => (require('./nats') as typeof import('./nats')).natsDriver);
}
