import { FTPError } from 'basic-ftp';
import { DepotError, ErrorCode } from '../../../contract';
import { handleError } from '../../../support/error-handler';
import { redactor } from '../../../support/redaction';

/** FTP replies → the contract's codes (RFC 959 §4.2; 452/552 as proftpd sends them for ENOSPC/EDQUOT). */
const BY_REPLY: Record<number, ErrorCode> = {
  421: 'unavailable',
  425: 'unavailable',
  426: 'unavailable',
  450: 'unavailable',
  451: 'unavailable',
  452: 'no_space',
  530: 'auth',
  532: 'auth',
  552: 'no_space',
};

/** A certificate the driver was told to trust did not match: retrying will not help, another driver may. */
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function isFtpReply(error: unknown, code: number): boolean {
  return error instanceof FTPError && error.code === code;
}

/**
 * Any failure of an FTP call as a DepotError. Replies keep their text (servers
 * echo paths, never passwords — basic-ftp itself logs `PASS ###`); socket and
 * timeout errors are `unavailable`. A plain 550 means "not possible here" in
 * general: callers that can tell "not found" check for it themselves.
 */
export function toDepotError(error: unknown, driver: string, action: string): DepotError {
  if (error instanceof DepotError) return error;
  if (error instanceof FTPError) {
    const code = BY_REPLY[error.code] ?? (error.code >= 400 && error.code < 500 ? 'unavailable' : 'internal');
    return new DepotError(code, `${driver}: ${action}: ${redactor.redact(error.message)}`);
  }
  const errno = (error as { code?: unknown }).code;
  if (typeof errno === 'string' && TLS_CODES.has(errno)) {
    return new DepotError('auth', `${driver}: ${action}: the server's TLS certificate is not trusted (${errno})`);
  }
  const message = (error as Error)?.message ?? String(error);
  // basic-ftp closes a client on socket errors and timeouts; later calls say "Client is closed".
  if (typeof errno === 'string' || /timeout|closed|closing|FIN packet|socket|ECONN|EPIPE/i.test(message)) {
    return new DepotError('unavailable', `${driver}: ${action}: ${redactor.redact(message)}`);
  }
  const classified = handleError(error);
  return new DepotError(classified.code, `${driver}: ${action}: ${redactor.redact(classified.message)}`);
}
