import { z } from 'zod';
import { commonDriverSettings } from '../../driver-settings';

/** S3's own floor for every part but the last, and its ceiling for one part. */
export const MIN_PART_MIB = 5;
export const MAX_PART_MIB = 5 * 1024;

/**
 * A key prefix as operators write it (`archives`, `depot/prod/`), normalised to
 * end with one `/`. Empty segments and `.`/`..` are refused: some stores and
 * every filesystem-backed gateway would treat them as paths.
 */
const prefix = z
  .string()
  // S3 keys are at most 1024 bytes; depot's own part of a key (with `.depot.json`) takes up to 406.
  .refine((p) => Buffer.byteLength(p, 'utf8') <= 512, 'must be at most 512 bytes of UTF-8')
  .refine((p) => !p.startsWith('/'), { message: "must not start with '/'", abort: true })
  // eslint-disable-next-line no-control-regex
  .refine((p) => !/[\u0000-\u001f\u007f\\]/.test(p), 'must not contain control characters or backslashes')
  .refine(
    (p) =>
      p === '' ||
      p
        .replace(/\/$/, '')
        .split('/')
        .every((s) => s !== '' && s !== '.' && s !== '..'),
    "must not contain empty, '.' or '..' segments",
  )
  .transform((p) => (p === '' || p.endsWith('/') ? p : `${p}/`));

export const s3SettingsSchema = z
  .strictObject({
    ...commonDriverSettings,
    type: z.literal('s3'),
    /** Bucket names differ between stores (AWS is strictest); only what no store accepts is refused here. */
    bucket: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/, 'must be 2-255 characters of letters, digits, . _ - (starting with a letter or digit)'),
    region: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a region name such as eu-central-1'),
    /** For S3-compatible stores (MinIO, Ceph RGW, ...); absent: AWS. */
    endpoint: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).optional(),
    prefix: prefix.default(''),
    /** `http://host:port/bucket/key` instead of `http://bucket.host:port/key`; needed by most self-hosted stores. */
    forcePathStyle: z.boolean().default(false),
    /** Secret fields (only from ${ENV} or <field>File); both absent: the SDK's default credential chain. */
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
    /**
     * What a request that carries bytes proves besides its signature (body-checksums.ts). when_supported:
     * `x-amz-checksum-sha256`, the digest that signs it anyway. when_required, for stores that reject or
     * mangle `x-amz-checksum-*`: nothing, or `Content-MD5` with `objectLock` (which demands a checksum);
     * the SDK then adds checksums only where S3 demands them.
     */
    checksums: z.enum(['when_supported', 'when_required']).default('when_supported'),
    /** Bytes per multipart part; a large store holds queueSize part buffers, reused from store to store. */
    partSizeMiB: z.number().int().min(MIN_PART_MIB).max(MAX_PART_MIB).default(16),
    /** Parts uploaded in parallel per store. */
    queueSize: z.number().int().min(1).max(64).default(4),
    /** Per-object Object Lock retention; the bucket must have Object Lock enabled. */
    objectLock: z
      .strictObject({
        mode: z.enum(['GOVERNANCE', 'COMPLIANCE']),
        days: z.number().int().min(1).max(36_500),
      })
      .optional(),
    storageClass: z
      .string()
      .regex(/^[A-Z0-9_-]{1,64}$/, 'must be a storage class name such as STANDARD_IA')
      .optional(),
    sse: z.enum(['AES256', 'aws:kms']).optional(),
    kmsKeyId: z.string().min(1).max(2048).optional(),
    /** The space reports' total: S3 has no free-space figure of its own. */
    quotaBytes: z.number().int().positive().optional(),
  })
  .superRefine((s, ctx) => {
    if ((s.accessKeyId === undefined) !== (s.secretAccessKey === undefined)) {
      const missing = s.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey';
      ctx.addIssue({
        code: 'custom',
        path: [missing],
        message: 'must be given together with the other key (or both left out for the default credential chain)',
      });
    }
    if (s.kmsKeyId !== undefined && s.sse !== 'aws:kms') {
      ctx.addIssue({ code: 'custom', path: ['kmsKeyId'], message: "needs sse: 'aws:kms'" });
    }
  });

export type S3Settings = z.infer<typeof s3SettingsSchema>;
