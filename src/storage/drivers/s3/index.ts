import type { DriverDefinition } from '../../factory';
import { S3Driver } from './driver';
import { s3SettingsSchema, S3Settings } from './types';

export const s3Driver: DriverDefinition<S3Settings> = {
  type: 's3',
  settingsSchema: s3SettingsSchema,
  secretFields: ['accessKeyId', 'secretAccessKey'],
  create: (name, settings, logger) => new S3Driver(name, settings, logger),
};

export { S3Driver, s3SettingsSchema };
export type { S3Settings };
