import { z } from 'archive-depot/driver-api';

/**
 * The plugin's own settings. depot checks the keys every driver shares
 * (`timeoutMs`, `maxConcurrent`, `breaker`) and `module` itself and never hands
 * them to this schema, so it can be strict about everything else.
 */
export const flatdirSettingsSchema = z.strictObject({
  type: z.literal('flatdir'),
  /** An existing directory; relative to the config file's folder (a file field). */
  root: z.string().min(1),
  /** When set, every manifest is sealed with an HMAC-SHA256 under this key (a secret field). */
  sealKey: z.string().min(16, 'must be at least 16 characters').optional(),
});

export type FlatdirSettings = z.infer<typeof flatdirSettingsSchema>;
