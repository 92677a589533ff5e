import { DepotError, ErrorCode } from '../../../contract';
import { handleError } from '../../../support/error-handler';
import { redactor } from '../../../support/redaction';

/**
 * NATS and JetStream failures → the contract's codes. nats.js names its
 * errors (`name`), and JetStream API errors carry an `err_code`; both are
 * read here, never a message. What the server said is kept in the message,
 * except for refused credentials.
 */

/** JetStream API error codes depot acts on (nats-server's errors.json). */
export const JS = {
  /** `Nats-Expected-Last-Subject-Sequence` did not hold: the subject is taken. */
  WRONG_LAST_SEQUENCE: 10071,
  /** The same, answered by newer servers while another conditional write to the subject is in flight. */
  WRONG_LAST_SEQUENCE_UNKNOWN: 10164,
  NO_MESSAGE_FOUND: 10037,
  STREAM_NOT_FOUND: 10059,
  STREAM_NAME_IN_USE: 10058,
} as const;

/** nats-server's errors.json: the API errors that say something the contract has a code for. */
const BY_API_CODE: Record<number, ErrorCode> = {
  // resource limits exceeded for account
  10002: 'no_space',
  // insufficient resources
  10023: 'no_space',
  // insufficient memory resources available
  10028: 'no_space',
  // insufficient storage resources available
  10047: 'no_space',
  // maximum number of streams reached (creating the bucket)
  10027: 'misconfigured',
  // JetStream not enabled for account
  10039: 'misconfigured',
  // stream name already in use with a different configuration
  10058: 'misconfigured',
  // stream not found: the bucket disappeared under a running driver (depot creates it only when it opens it)
  10059: 'misconfigured',
  // replicas > 1 not supported in non-clustered mode
  10074: 'misconfigured',
  // JetStream not enabled
  10076: 'misconfigured',
  // invalid operation on sealed stream
  10109: 'misconfigured',
  // account requires a stream config to have max bytes set (creating the bucket)
  10113: 'misconfigured',
  // no JetStream default or applicable tiered limit present (no limit for the bucket's replicas)
  10120: 'misconfigured',
  // stream max bytes exceeds account limit max stream bytes
  10122: 'misconfigured',
  // JetStream system temporarily unavailable
  10008: 'unavailable',
  // JetStream cluster can not handle request
  10009: 'unavailable',
  // stream is offline
  10118: 'unavailable',
};

/** Node's TLS errors for a certificate that is not trusted (not for one that could not be fetched). */
const TLS_TRUST_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
]);

/** What nats.js throws, as far as depot reads it. */
interface NatsErrorShape {
  name?: string;
  message?: string;
  code?: number | string;
  cause?: unknown;
  status?: number;
  operation?: string;
  subject?: string;
}

function shape(error: unknown): NatsErrorShape {
  return typeof error === 'object' && error !== null ? error : {};
}

/** The JetStream API error code (`err_code`) of a failure, if it is one. */
export function apiErrorCode(error: unknown): number | undefined {
  const e = shape(error);
  return (e.name === 'JetStreamApiError' || e.name === 'StreamNotFoundError' || e.name === 'ConsumerNotFoundError') && typeof e.code === 'number'
    ? e.code
    : undefined;
}

export function isWrongLastSequence(error: unknown): boolean {
  const code = apiErrorCode(error);
  return code === JS.WRONG_LAST_SEQUENCE || code === JS.WRONG_LAST_SEQUENCE_UNKNOWN;
}

export function isStreamNotFound(error: unknown): boolean {
  return apiErrorCode(error) === JS.STREAM_NOT_FOUND;
}

/** The cause chain of a failure, the failure first (nats.js wraps: RequestError ← NoResponders / PermissionViolationError). */
function chain(error: unknown): NatsErrorShape[] {
  const out: NatsErrorShape[] = [];
  let current: unknown = error;
  while (typeof current === 'object' && current !== null && out.length < 5) {
    out.push(current);
    current = (current as NatsErrorShape).cause;
  }
  return out;
}

function named(error: unknown, ...names: string[]): NatsErrorShape | undefined {
  return chain(error).find((e) => e.name !== undefined && names.includes(e.name));
}

/** Nobody answered a request: no stream captures the subject, or JetStream (its leader) is not there right now. */
export function isNoResponders(error: unknown): boolean {
  return named(error, 'NoResponders', 'JetStreamNotEnabled') !== undefined;
}

/**
 * Failures that another try of the same request may get past: the server did
 * not answer in time, the connection is away (the client reconnects by
 * itself), or no stream leader answered (an election after a node left).
 */
export function isTransient(error: unknown): boolean {
  if (named(error, 'TimeoutError', 'NoResponders', 'JetStreamNotEnabled', 'ConnectionError', 'ClosedConnectionError', 'DrainingConnectionError')) return true;
  const code = apiErrorCode(error);
  if (code !== undefined) return apiCode(code, shape(error)) === 'unavailable';
  return named(error, 'JetStreamStatusError') !== undefined;
}

/** The contract's code of a JetStream API error; `internal` for one depot does not know. */
function apiCode(code: number, e: NatsErrorShape): ErrorCode {
  const mapped = BY_API_CODE[code];
  if (mapped) return mapped;
  // 10077 is any failure to store: a full stream says so in its description.
  if (code === 10077 && /maximum (bytes|messages)/i.test(e.message ?? '')) return 'no_space';
  return e.status === 503 ? 'unavailable' : 'internal';
}

/** A NATS or JetStream failure as one DepotError; `what` names the driver, operation and object. */
export function toDepotError(error: unknown, what: string): DepotError {
  if (error instanceof DepotError) return error;
  const e = shape(error);
  if (e.name === 'AbortError') return new DepotError('unavailable', `${what}: aborted`);
  if (named(error, 'AuthorizationError', 'UserAuthenticationExpiredError')) {
    return new DepotError('auth', `${what}: the NATS server refused the credentials`);
  }
  const permission = named(error, 'PermissionViolationError');
  if (permission) {
    // Valid credentials without a permission depot needs: an operator must grant it (CONTRACT §13).
    return new DepotError(
      'misconfigured',
      `${what}: the NATS user may not ${permission.operation ?? 'use'} ${permission.subject ?? 'a subject depot needs'} (see docs/drivers/nats.md, "Permissions")`,
    );
  }
  const tls = chain(error).find((c) => typeof c.code === 'string' && TLS_TRUST_CODES.has(c.code));
  if (tls) {
    // A certificate the client does not trust stays untrusted: an operator must act (tls.caFile, the server's certificate).
    return new DepotError(
      'misconfigured',
      `${what}: the NATS server's TLS certificate is not trusted (${String(tls.code)}: ${redactor.redact(tls.message ?? '')})`,
    );
  }
  if (named(error, 'TimeoutError')) return new DepotError('unavailable', `${what}: the NATS server did not answer in time`);
  if (named(error, 'ConnectionError', 'ClosedConnectionError', 'DrainingConnectionError')) {
    return new DepotError('unavailable', `${what}: cannot reach the NATS servers (${redactor.redact(e.message ?? 'connection closed')})`);
  }
  if (isNoResponders(error)) return new DepotError('unavailable', `${what}: no JetStream server answered (JetStream down, or a stream leader being elected)`);
  const code = apiErrorCode(error);
  if (code !== undefined) {
    const detail = `${redactor.redact(e.message ?? '')} (JetStream ${code})`;
    const mapped = apiCode(code, e);
    return new DepotError(mapped, `${what}: ${detail}${mapped === 'misconfigured' ? '; an operator must act' : ''}`);
  }
  if (named(error, 'JetStreamStatusError')) return new DepotError('unavailable', `${what}: ${redactor.redact(e.message ?? 'JetStream status')}`);
  const generic = handleError(error);
  return new DepotError(generic.code, `${what}: ${generic.message}`);
}
