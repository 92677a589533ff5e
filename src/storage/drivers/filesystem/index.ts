import type { DriverDefinition } from '../../factory';
import { FilesystemDriver } from './driver';
import { filesystemSettingsSchema, FilesystemSettings } from './types';

export const filesystemDriver: DriverDefinition<FilesystemSettings> = {
  type: 'filesystem',
  settingsSchema: filesystemSettingsSchema,
  secretFields: [],
  create: (name, settings) => new FilesystemDriver(name, settings),
};

export { FilesystemDriver, filesystemSettingsSchema };
export type { FilesystemSettings };
