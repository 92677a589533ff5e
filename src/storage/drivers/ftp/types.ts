import { z } from 'zod';
import { commonDriverSettings } from '../../driver-settings';

/** An absolute FTP path (`/`, `/archive/exams`), normalised without a trailing `/`. */
const root = z
  .string()
  .refine((p) => p.startsWith('/'), { message: "must be an absolute path starting with '/'", abort: true })
  // eslint-disable-next-line no-control-regex
  .refine((p) => !/[\u0000-\u001f\u007f\\*]/.test(p), 'must not contain control characters, backslashes or *')
  .refine((p) => p.split('/').every((s) => s !== '.' && s !== '..'), "must not contain '.' or '..' segments")
  .refine((p) => Buffer.byteLength(p, 'utf8') <= 512, 'must be at most 512 bytes of UTF-8')
  .transform((p) => '/' + p.split('/').filter(Boolean).join('/'));

export const ftpSettingsSchema = z.strictObject({
  ...commonDriverSettings,
  type: z.literal('ftp'),
  host: z.string().regex(/^[A-Za-z0-9.:[\]-]{1,253}$/, 'must be a host name or IP address'),
  port: z.number().int().min(1).max(65_535).default(21),
  user: z.string().min(1).max(256),
  /** Secret field (only from ${ENV} or passwordFile). */
  password: z.string().min(1).optional(),
  /** true: explicit FTPS (AUTH TLS, data connections protected too); 'implicit': TLS from the first byte (port 990 usually). */
  secure: z.union([z.boolean(), z.literal('implicit')]).default(false),
  /** Verify the server's certificate (against caFile when given, else the system's CAs). */
  rejectUnauthorized: z.boolean().default(true),
  /** PEM file of the CA (or the self-signed certificate) the server's certificate must chain to. */
  caFile: z.string().min(1).optional(),
  root: root.default('/'),
  /** The space reports' total: FTP has no free-space figure of its own. */
  quotaBytes: z.number().int().positive().optional(),
});

export type FtpSettings = z.infer<typeof ftpSettingsSchema>;
