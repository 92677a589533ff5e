import { DepotError, ErrorCode } from '../../../contract';
import { handleError } from '../../../support/error-handler';
import { redactor } from '../../../support/redaction';

/**
 * S3 (and S3-compatible) failures → the contract's codes. The store's message
 * is kept except for credential refusals, whose bodies may echo the key id; the
 * SDK error itself is not kept as `cause`, since its fields carry the request's
 * signing details.
 */
const BY_CODE: Record<string, ErrorCode> = {
  InvalidAccessKeyId: 'auth',
  SignatureDoesNotMatch: 'auth',
  AccessDenied: 'auth',
  InvalidToken: 'auth',
  ExpiredToken: 'auth',
  TokenRefreshRequired: 'auth',
  AuthorizationHeaderMalformed: 'auth',
  InvalidSecurity: 'auth',
  AllAccessDisabled: 'auth',
  AccountProblem: 'auth',
  NotSignedUp: 'auth',
  CredentialsProviderError: 'auth',
  NoSuchKey: 'not_found',
  NotFound: 'not_found',
  NoSuchVersion: 'not_found',
  EntityTooLarge: 'no_space',
  QuotaExceeded: 'no_space',
  XMinioStorageFull: 'no_space',
  XMinioAdminBucketQuotaExceeded: 'no_space',
  InsufficientStorage: 'no_space',
  SlowDown: 'unavailable',
  ServiceUnavailable: 'unavailable',
  InternalError: 'unavailable',
  RequestTimeout: 'unavailable',
  Throttling: 'unavailable',
  ThrottlingException: 'unavailable',
  RequestLimitExceeded: 'unavailable',
  TimeoutError: 'unavailable',
  // The bucket vanished or the upload was swept: nothing the task can fix, but a later try or another driver can.
  NoSuchBucket: 'unavailable',
  NoSuchUpload: 'unavailable',
  // An object in a cold storage class must be restored before it can be read.
  InvalidObjectState: 'unavailable',
  // Bytes damaged or cut off on the way: sending them again can succeed.
  BadDigest: 'unavailable',
  XAmzContentSHA256Mismatch: 'unavailable',
  IncompleteBody: 'unavailable',
  OperationAborted: 'unavailable',
  PreconditionFailed: 'conflict',
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The S3 error code (`NoSuchKey`, ...) and HTTP status of an SDK failure, as far as it has them. */
export function s3ErrorInfo(error: unknown): { code?: string; status?: number } {
  if (typeof error !== 'object' || error === null) return {};
  const e = error as SdkErrorShape;
  // A response without a body (HEAD) leaves the SDK only the status: it names the error 'Unknown'.
  const name = e.Code ?? e.name;
  const code = name && !['Error', 'Unknown', 'UnknownError'].includes(name) ? name : undefined;
  return { code, status: e.$metadata?.httpStatusCode };
}

export function isPreconditionFailed(error: unknown): boolean {
  const { code, status } = s3ErrorInfo(error);
  return status === 412 || code === 'PreconditionFailed';
}

export function isNotFound(error: unknown): boolean {
  const { code, status } = s3ErrorInfo(error);
  return status === 404 || code === 'NoSuchKey' || code === 'NotFound';
}

export function isAccessDenied(error: unknown): boolean {
  const { code, status } = s3ErrorInfo(error);
  return code === 'AccessDenied' || (status === 403 && code === undefined);
}

/** What S3 said, as one DepotError; `what` names the operation and object (`${driver}: put 2024/…/x.zip`). */
export function toDepotError(error: unknown, what: string): DepotError {
  if (error instanceof DepotError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as SdkErrorShape;
  if (e.name === 'AbortError') return new DepotError('unavailable', `${what}: aborted`);
  const network = e.code && NETWORK_CODES.has(e.code) ? e.code : networkCodeIn(e.message);
  if (network) return new DepotError('unavailable', `${what}: cannot reach the store (${network})`);
  const { code, status } = s3ErrorInfo(error);
  const mapped = (code ? BY_CODE[code] : undefined) ?? byStatus(status);
  const label = [code, status ? `HTTP ${status}` : undefined].filter(Boolean).join(', ');
  if (!mapped) {
    // Not S3's answer at all (no code, no status): a local failure, classified as any other.
    const generic = handleError(error);
    return new DepotError(generic.code, `${what}: ${label ? `${label}: ` : ''}${generic.message}`);
  }
  if (mapped === 'auth') return new DepotError('auth', `${what}: the store refused the credentials (${label})`);
  const detail = e.message && e.message !== code && e.message !== 'UnknownError' ? `: ${redactor.redact(e.message)}` : '';
  const advice = mapped === 'misconfigured' ? ' (the store refuses this request as configured; an operator must act)' : '';
  return new DepotError(mapped, `${what}: ${label}${detail}${advice}`);
}

/**
 * The SDK re-wraps an error that is not an `Error` of its own realm (as Node's
 * socket errors are under jest's VM contexts) into one whose message alone
 * still names the code.
 */
function networkCodeIn(message: string | undefined): string | undefined {
  return message?.match(/\b(E[A-Z]+|ERR_[A-Z_]+|UND_ERR_[A-Z_]+)\b/g)?.find((code) => NETWORK_CODES.has(code));
}

function byStatus(status: number | undefined): ErrorCode | undefined {
  if (status === undefined) return undefined;
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  if (status === 412) return 'conflict';
  if (status === 507) return 'no_space';
  if (status === 408 || status === 429 || status >= 500) return 'unavailable';
  // Any other 4xx (a bucket without Object Lock asked for retention answers 400 InvalidRequest)
  // will be refused again: not retried, and never silently failed over to a store without WORM.
  if (status >= 400) return 'misconfigured';
  return undefined;
}
