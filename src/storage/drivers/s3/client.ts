import { S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_DRIVER_TIMEOUT_MS } from '../../driver-settings';
import type { S3Settings } from './types';

/**
 * The SDK client for one driver instance. Timeouts: `connectionTimeout` bounds
 * connecting and `socketTimeout` every silence of the socket, for each request
 * (and each retry). A bound on the whole request would also cut a part upload
 * that is slow but moving, which is why the idle bound is used, not the SDK's
 * whole-request `requestTimeout`.
 */
export function makeS3Client(settings: S3Settings): S3Client {
  const timeoutMs = settings.timeoutMs ?? DEFAULT_DRIVER_TIMEOUT_MS;
  const checksumMode = settings.checksums === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  // Parallel parts of parallel stores share the connection pool.
  const maxSockets = Math.max(50, (settings.maxConcurrent ?? 0) * settings.queueSize + 8);
  return new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    credentials:
      settings.accessKeyId !== undefined && settings.secretAccessKey !== undefined
        ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey }
        : undefined,
    requestChecksumCalculation: checksumMode,
    responseChecksumValidation: checksumMode,
    requestHandler: {
      connectionTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      httpAgent: { keepAlive: true, maxSockets },
      httpsAgent: { keepAlive: true, maxSockets },
    },
  });
}
