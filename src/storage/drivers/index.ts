import { StorageDriverFactory } from '../factory';
import { filesystemDriver } from './filesystem';
import { ftpDriver } from './ftp';
import { moodleDriver } from './moodle';
import { natsDriver } from './nats';
import { s3Driver } from './s3';

/** The factory with every driver type this build has. */
export function defaultDriverFactory(): StorageDriverFactory {
  return new StorageDriverFactory().register(filesystemDriver).register(s3Driver).register(ftpDriver).register(moodleDriver).register(natsDriver);
}
