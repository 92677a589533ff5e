import type { DriverDefinition } from '../../factory';
import { FtpDriver } from './driver';
import { ftpSettingsSchema, FtpSettings } from './types';

export const ftpDriver: DriverDefinition<FtpSettings> = {
  type: 'ftp',
  settingsSchema: ftpSettingsSchema,
  secretFields: ['password'],
  fileFields: ['caFile'],
  create: (name, settings, logger) => new FtpDriver(name, settings, logger),
};

export { FtpDriver, ftpSettingsSchema };
export type { FtpSettings };
