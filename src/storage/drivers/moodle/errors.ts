import { DepotError, ErrorCode } from '../../../contract';
import { redactor } from '../../../support/redaction';

/**
 * A failure Moodle reported. Three shapes reach depot, all as JSON:
 * - rest/server.php: `{ exception, errorcode, message, debuginfo? }` with HTTP 200
 *   (webservice_rest_server::generate_error; debuginfo only when Moodle debugs);
 * - upload.php and pluginfile.php: `{ error, errorcode, stacktrace, debuginfo, reproductionlink }`
 *   (core_renderer_ajax::fatal_error for AJAX_SCRIPT), HTTP 200, or 404 for a file not found;
 * - upload.php per file: `[{ filename, errortype, error }]`, HTTP 200 (fileoversized, filenameexist).
 * test/helpers/fake-moodle.ts pins each to the Moodle source it comes from.
 */
export interface MoodleFailure {
  errorcode: string;
  message: string;
  debuginfo?: string;
  /** The PHP exception class (REST only). */
  exception?: string;
}

/** Moodle's error codes → the contract's; anything else is `internal`. */
const BY_ERRORCODE: Record<string, ErrorCode> = {
  // The token or its user: credentials refused.
  invalidtoken: 'auth',
  invalidtimedtoken: 'auth',
  invalidiptoken: 'auth',
  invalidtokensession: 'auth',
  passwordisexpired: 'auth',
  usernotconfirmed: 'auth',
  wsaccessusersuspended: 'auth',
  wsaccessusernologin: 'auth',
  wsaccessuserdeleted: 'auth',
  wsaccessuserexpired: 'auth',
  wsaccessuserunconfirmed: 'auth',
  // Refused as configured, and will be until an operator acts (§13). webservice_access_exception
  // ('accessexception') is refined by the driver: a token refused as a whole is `auth`.
  accessexception: 'misconfigured',
  nopermissions: 'misconfigured',
  requireloginerror: 'misconfigured',
  coursehidden: 'misconfigured',
  invalidrecord: 'misconfigured',
  invalidparameter: 'misconfigured',
  invalidresponse: 'misconfigured',
  servicenotavailable: 'misconfigured',
  missingversionfile: 'misconfigured',
  upload_error_no_tmp_dir: 'misconfigured',
  upload_error_extension: 'misconfigured',
  // The archive is larger than this Moodle takes: another driver may take it.
  fileoversized: 'no_space',
  maxbytes: 'no_space',
  userquotalimit: 'no_space',
  upload_error_ini_size: 'no_space',
  upload_error_form_size: 'no_space',
  upload_error_cant_write: 'no_space',
  // Passing: the bytes did not arrive whole, or Moodle is busy.
  upload_error_partial: 'unavailable',
  sitemaintenance: 'unavailable',
  dmlreadexception: 'unavailable',
  dmlwriteexception: 'unavailable',
  dbconnectionfailed: 'unavailable',
  draftnotfound: 'unavailable',
  checksummismatch: 'unavailable',
  filenotfound: 'not_found',
};

/** Tokens of accessexception's debuginfo that mean the token as a whole was refused. */
const CREDENTIAL_REFUSAL = /token expired|Invalid token|IP:|suspended|nologin|password|session based token|not allowed for this service/i;

export function codeFor(failure: MoodleFailure): ErrorCode {
  if (failure.errorcode === 'accessexception' && failure.debuginfo && CREDENTIAL_REFUSAL.test(failure.debuginfo)) return 'auth';
  return BY_ERRORCODE[failure.errorcode] ?? 'internal';
}

/**
 * Text that leaves the driver: its own token masked even when the process's redactor
 * does not know it (a driver made outside a config), then every configured secret.
 */
export function scrub(text: string, token: string): string {
  return redactor.redact(token ? text.split(token).join('***') : text);
}

export function moodleError(driver: string, action: string, failure: MoodleFailure, token: string, code = codeFor(failure)): DepotError {
  const detail = failure.debuginfo ? ` (${failure.debuginfo.trim().slice(0, 500)})` : '';
  return new DepotError(code, scrub(`${driver}: ${action}: Moodle answered ${failure.errorcode}: ${failure.message}${detail}`, token));
}

/** The JSON an error answer carries, in any of the three shapes; null when `value` is not one. */
export function failureIn(value: unknown): MoodleFailure | null {
  if (Array.isArray(value)) {
    const entry: unknown = value[0];
    if (value.length === 1 && isObject(entry) && typeof entry.errortype === 'string') {
      return { errorcode: entry.errortype, message: typeof entry.error === 'string' ? entry.error : '' };
    }
    return null;
  }
  if (!isObject(value) || typeof value.errorcode !== 'string') return null;
  if (typeof value.exception === 'string') {
    return { errorcode: value.errorcode, exception: value.exception, message: text(value.message), debuginfo: optionalText(value.debuginfo) };
  }
  if ('error' in value) return { errorcode: value.errorcode, message: text(value.error), debuginfo: optionalText(value.debuginfo) };
  return null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
