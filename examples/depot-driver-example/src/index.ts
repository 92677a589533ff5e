import type { DriverDefinition } from 'archive-depot/driver-api';
import { FlatdirDriver } from './driver';
import { FlatdirSettings, flatdirSettingsSchema } from './settings';

/**
 * What depot loads from this package (`module: depot-driver-example`): the
 * definition as the default export. depot validates the settings with the
 * schema, resolves `sealKey` as a secret (`${ENV}` or `sealKeyFile`, masked
 * everywhere) and `root` as a file field (against the config file's folder).
 */
const flatdir: DriverDefinition<FlatdirSettings> = {
  type: 'flatdir',
  settingsSchema: flatdirSettingsSchema,
  secretFields: ['sealKey'],
  fileFields: ['root'],
  create: (name, settings) => new FlatdirDriver(name, settings),
};

export default flatdir;
export { FlatdirDriver, flatdirSettingsSchema };
export type { FlatdirSettings };
export { keyFiles, ARCHIVES_DIR, STAGING_DIR } from './layout';
