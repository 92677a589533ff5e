import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';

const BODY_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);

export function md5Base64(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('base64');
}

/**
 * Every request of the driver that carries bytes (PutObject, and UploadPart sent
 * by lib-storage) gets Content-MD5. Object Lock refuses uploads without
 * Content-MD5 or an x-amz-checksum-* header, also under a bucket's default
 * retention; with `checksums: when_required` the SDK sends neither, and some
 * stores accept only Content-MD5. The driver's bodies are always buffers (one
 * part or a whole small archive), so the digest costs one pass over memory.
 */
export function addContentMd5(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Body?: unknown; ContentMD5?: unknown };
      if (!BODY_COMMANDS.has(context.commandName ?? '') || input.ContentMD5 !== undefined || !(input.Body instanceof Uint8Array)) return next(args);
      return next({ ...args, input: { ...args.input, ContentMD5: md5Base64(input.Body) } });
    },
    { step: 'initialize', name: 'depotContentMd5' },
  );
}
