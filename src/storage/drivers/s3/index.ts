import type { DriverDefinition } from '../../factory';
import type { S3Driver } from './driver';
import { s3SettingsSchema, S3Settings } from './types';

export const s3Driver: DriverDefinition<S3Settings> = {
  type: 's3',
  settingsSchema: s3SettingsSchema,
  secretFields: ['accessKeyId', 'secretAccessKey'],
  create: (name, settings, logger) => {
    // The AWS SDK (≈ 11 MiB resident) is loaded only by workers that configure an s3 driver.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const driver = require('./driver') as { S3Driver: typeof S3Driver };
    return new driver.S3Driver(name, settings, logger);
  },
};

export { s3SettingsSchema };
export type { S3Settings };
