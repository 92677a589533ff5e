import { z } from 'zod';
import { commonDriverSettings } from '../../driver-settings';

/** The web-service functions of Moodle's side (moodle/local_depot), by the contract's defaults (§11). */
export const DEFAULT_FUNCTIONS = {
  store: 'local_depot_store_file',
  retrieve: 'local_depot_get_file',
  delete: 'local_depot_delete_file',
  list: 'local_depot_list_files',
  space: 'local_depot_get_space',
} as const;

/** External function names as Moodle registers them (frankenstyle, lower case). */
const functionName = z.string().regex(/^[a-z][a-z0-9_]{0,199}$/, 'must be a web-service function name (lower-case letters, digits and _)');

/**
 * The site's root as in Moodle's `$CFG->wwwroot` (`https://moodle.example.org`,
 * `https://example.org/moodle`), without a trailing `/`. No credentials, query or
 * fragment: depot adds the script paths itself and sends the token in request bodies only.
 */
const siteUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
  .refine((u) => {
    const url = new URL(u);
    return url.username === '' && url.password === '' && url.search === '' && url.hash === '';
  }, 'must not contain credentials, a query or a fragment')
  .transform((u) => {
    const url = new URL(u);
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  });

export const moodleSettingsSchema = z.strictObject({
  ...commonDriverSettings,
  type: z.literal('moodle'),
  url: siteUrl,
  /**
   * Secret field (only from ${ENV} or tokenFile): a web-service token of depot's service
   * user. Moodle reads it as PARAM_ALPHANUM, so anything else could never authenticate.
   */
  token: z.string().regex(/^[A-Za-z0-9]{1,128}$/, 'must be a Moodle web-service token (letters and digits)'),
  courseId: z.number().int().positive(),
  /** The plugin whose file area keeps the archives (PARAM_COMPONENT). */
  component: z
    .string()
    .regex(/^[a-z]+_[a-z][a-z0-9_]*[a-z0-9]$/, 'must be a Moodle component name such as local_depot')
    .refine((c) => !c.includes('__'), 'must be a Moodle component name such as local_depot')
    .default('local_depot'),
  /** The file area inside the course (PARAM_AREA). */
  filearea: z
    .string()
    .regex(/^[a-z][a-z0-9_]*[a-z0-9]$/, 'must be a Moodle file area name (lower-case letters, digits and _)')
    .refine((a) => !a.includes('__') && a.length <= 50, 'must be a Moodle file area name (lower-case letters, digits and _)')
    .default('archive'),
  functions: z
    .strictObject({
      store: functionName.default(DEFAULT_FUNCTIONS.store),
      retrieve: functionName.default(DEFAULT_FUNCTIONS.retrieve),
      delete: functionName.default(DEFAULT_FUNCTIONS.delete),
      list: functionName.default(DEFAULT_FUNCTIONS.list),
      space: functionName.default(DEFAULT_FUNCTIONS.space),
    })
    .prefault({}),
});

export type MoodleSettings = z.infer<typeof moodleSettingsSchema>;
