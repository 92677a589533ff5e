import type { DriverDefinition } from '../../factory';
import type { NatsDriver } from './driver';
import { natsSettingsSchema, NatsSettings } from './types';

export const natsDriver: DriverDefinition<NatsSettings> = {
  type: 'nats',
  settingsSchema: natsSettingsSchema,
  secretFields: ['password', 'token'],
  // tls.* are named too, for a loader that resolves nested file fields; until then the schema wants them absolute.
  fileFields: ['credsFile', 'tls.caFile', 'tls.certFile', 'tls.keyFile'],
  create: (name, settings, logger) => {
    // The NATS client is loaded only by workers that configure a nats driver.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const driver = require('./driver') as { NatsDriver: typeof NatsDriver };
    return new driver.NatsDriver(name, settings, logger);
  },
};

export { natsSettingsSchema };
export type { NatsSettings };
