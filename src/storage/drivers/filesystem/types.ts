import { z } from 'zod';
import { commonDriverSettings } from '../../driver-settings';

const fileMode = z
  .union([z.number().int(), z.string().regex(/^0?o?[0-7]{3,4}$/, 'must be an octal mode such as 0444')])
  .transform((v) => (typeof v === 'number' ? v : parseInt(v.replace(/^0?o?/, ''), 8)))
  .refine((v) => v >= 0 && v <= 0o7777, 'must be a file mode between 0 and 07777');

export const filesystemSettingsSchema = z.strictObject({
  ...commonDriverSettings,
  type: z.literal('filesystem'),
  /** Directory that holds the archives; created when missing. */
  root: z.string().min(1, 'must not be empty'),
  /** fsync files and directories before a store counts as done. */
  fsync: z.boolean().default(true),
  /** Mode of stored archives and manifests: read-only by default. */
  fileMode: fileMode.default(0o444),
});

export type FilesystemSettings = z.infer<typeof filesystemSettingsSchema>;
