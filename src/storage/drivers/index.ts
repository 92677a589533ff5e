import { StorageDriverFactory } from '../factory';
import { filesystemDriver } from './filesystem';

/** The factory with every driver type this build has. */
export function defaultDriverFactory(): StorageDriverFactory {
  return new StorageDriverFactory().register(filesystemDriver);
}
