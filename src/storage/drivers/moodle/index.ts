import type { DriverDefinition } from '../../factory';
import { MoodleDriver } from './driver';
import { moodleSettingsSchema, MoodleSettings } from './types';

export const moodleDriver: DriverDefinition<MoodleSettings> = {
  type: 'moodle',
  settingsSchema: moodleSettingsSchema,
  secretFields: ['token'],
  create: (name, settings, logger) => new MoodleDriver(name, settings, logger),
};

export { MoodleDriver, moodleSettingsSchema };
export type { MoodleSettings };
