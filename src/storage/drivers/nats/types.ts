import path from 'node:path';
import { z } from 'zod';
import { commonDriverSettings } from '../../driver-settings';

/**
 * Bytes per chunk message unless `maxChunkBytes` says otherwise. On loopback
 * here, 128 KiB chunks (the object store clients' own default) were published
 * at ~160 MiB/s and 512 KiB ones at ~450 MiB/s, one acknowledged publish at a
 * time; 512 KiB stays well under the servers' default max_payload (1 MiB).
 */
export const DEFAULT_CHUNK_BYTES = 512 * 1024;
export const MIN_CHUNK_BYTES = 1024;
export const MAX_CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * One server as nats.js takes it: `nats://host:port`, `tls://host:port` or
 * `host[:port]`. Credentials in the URL (`nats://user:pass@host`) are refused:
 * secrets come only from `password(File)`, `token(File)` or `credsFile`, so
 * that they are masked and never sit in a config file.
 */
const server = z
  .string()
  .min(1, 'must not be empty')
  .max(1024)
  .refine((s) => !s.includes('@'), {
    message: 'must not hold credentials (user, password, token go in their own settings, from ${ENV} or a file)',
    abort: true,
  })
  .refine((s) => /^((nats|tls):\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?\/?$/.test(s), 'must be nats://host:port, tls://host:port or host:port');

/**
 * A file named in the tls settings. The config loader resolves the top-level
 * file fields (credsFile) against the config file's folder, but not yet nested
 * ones: an absolute path is required here, so a relative one is never read
 * against whatever the working directory happens to be.
 */
const tlsFile = z
  .string()
  .min(1, 'must not be empty')
  .max(4096)
  .refine((p) => path.isAbsolute(p), 'must be an absolute path');

export const natsSettingsSchema = z
  .strictObject({
    ...commonDriverSettings,
    type: z.literal('nats'),
    /** One server or several (a cluster): the client connects to one and moves to another when it goes away. */
    servers: z.union([server, z.array(server).min(1, 'must name at least one server').max(64)]).transform((s) => (Array.isArray(s) ? s : [s])),
    /**
     * The JetStream object store (stream `OBJ_<bucket>`); created on first use
     * when missing, with `replicas` and `storage`. Object store rules: letters,
     * digits, `_` and `-`.
     */
    bucket: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be 1-128 letters, digits, _ or -'),
    user: z.string().min(1).max(1024).optional(),
    /** Secret field (only from ${ENV} or passwordFile). */
    password: z.string().min(1).optional(),
    /** Secret field (only from ${ENV} or tokenFile). */
    token: z.string().min(1).optional(),
    /** A NATS credentials file (JWT and NKey seed, as `nsc` writes it); read when connecting, never kept in the config. */
    credsFile: z.string().min(1).max(4096).optional(),
    /** TLS to the servers: the CA the servers' certificates chain to, and a client certificate for servers that ask for one. */
    tls: z
      .strictObject({
        caFile: tlsFile.optional(),
        certFile: tlsFile.optional(),
        keyFile: tlsFile.optional(),
      })
      .optional(),
    /** For creating the bucket: copies of each message in a JetStream cluster (1, 3 or 5 as a rule). */
    replicas: z.number().int().min(1).max(5).default(1),
    /** For creating the bucket: `file` (durable) or `memory` (gone when the servers restart; for tests). */
    storage: z.enum(['file', 'memory']).default('file'),
    /** Bytes per chunk message; capped by the server's max_payload (and the stream's max_msg_size). */
    maxChunkBytes: z.number().int().min(MIN_CHUNK_BYTES).max(MAX_CHUNK_BYTES).default(DEFAULT_CHUNK_BYTES),
  })
  .superRefine((s, ctx) => {
    if (s.password !== undefined && s.user === undefined) ctx.addIssue({ code: 'custom', path: ['user'], message: 'is required with password' });
    if (s.user !== undefined && s.password === undefined) ctx.addIssue({ code: 'custom', path: ['password'], message: 'is required with user' });
    const ways = [
      s.user !== undefined ? 'user' : undefined,
      s.token !== undefined ? 'token' : undefined,
      s.credsFile !== undefined ? 'credsFile' : undefined,
    ].filter(Boolean);
    if (ways.length > 1) {
      ctx.addIssue({ code: 'custom', path: [ways[1] as string], message: `give one way to authenticate, not ${ways.join(' and ')}` });
    }
    if (s.tls && (s.tls.certFile === undefined) !== (s.tls.keyFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['tls', s.tls.certFile === undefined ? 'certFile' : 'keyFile'], message: 'certFile and keyFile go together' });
    }
  });

export type NatsSettings = z.infer<typeof natsSettingsSchema>;
