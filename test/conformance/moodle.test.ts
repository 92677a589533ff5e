import { parseArchiveKey } from '../../src/contract';
import type { StorageDriver } from '../../src/storage/driver';
import { MoodleDriver, moodleSettingsSchema } from '../../src/storage/drivers/moodle';
import { moodlePath } from '../../src/storage/drivers/moodle/paths';
import { silentLogger } from '../../src/support/logging';
import { FakeMoodleSite, startFakeMoodle } from '../helpers/fake-moodle';
import { ConformanceHarness, describeConformance } from './suite';

/**
 * The conformance suite through the moodle driver against the fake Moodle
 * (test/helpers/fake-moodle.ts: Moodle core's web-service scripts and local_depot's
 * functions, built from their source). Each driver gets a course of its own and a
 * token of its own; the harness looks behind the web services into the fake's files table.
 */
let site: FakeMoodleSite;
let courses = 1000;

beforeAll(async () => {
  site = await startFakeMoodle();
});

afterAll(async () => {
  await site?.moodle.close();
});

function moodleHarness(): ConformanceHarness {
  const made = new Map<StorageDriver, { courseId: number; token: string }>();
  const of = (driver: StorageDriver) => {
    const entry = made.get(driver);
    if (!entry) throw new Error('driver was not made by this harness');
    return entry;
  };
  const fileAt = (driver: StorageDriver, key: string) => {
    const parsed = parseArchiveKey(key);
    if (!parsed.ok) throw new Error(parsed.problem);
    const { filepath, filename } = moodlePath(parsed.key);
    const contextid = site.moodle.courses.get(of(driver).courseId)!;
    return { filepath, filename, contextid };
  };

  return {
    name: 'moodle',

    makeDriver() {
      courses += 1;
      site.moodle.addCourse(courses);
      site.moodle.grant(site.user, courses);
      const token = site.moodle.addToken(site.user, site.service);
      const settings = moodleSettingsSchema.parse({ type: 'moodle', url: site.moodle.url, token, courseId: courses, timeoutMs: 10_000 });
      const driver = new MoodleDriver('conformance', settings, silentLogger());
      made.set(driver, { courseId: courses, token });
      return Promise.resolve(driver);
    },

    async tamper(driver, key) {
      const { filepath, filename, contextid } = fileAt(driver, key);
      const file = site.moodle.findFile(contextid, 'local_depot', 'archive', 0, filepath, filename);
      if (!file) throw new Error(`no file at ${key}`);
      await site.moodle.tamper(file);
    },

    async plant(driver, key, bytes) {
      const { filepath, filename } = fileAt(driver, key);
      await site.moodle.plant(of(driver).courseId, 'archive', filepath, filename, bytes);
    },

    visibleEntries: (driver) => Promise.resolve(site.moodle.areaEntries(of(driver).courseId)),
    stagingEntries: () => Promise.resolve(site.moodle.draftEntries()),
    breakBackend: (driver) => {
      site.moodle.tokens.delete(of(driver).token);
      return Promise.resolve();
    },

    cleanup() {
      made.clear();
      return Promise.resolve();
    },
  };
}

describe('moodle driver (fake Moodle built from Moodle source, local_depot functions): conformance', () => {
  describeConformance(() => moodleHarness());
});
