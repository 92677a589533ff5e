/**
 * A fake Moodle for the moodle driver: real HTTP on a free loopback port, speaking the
 * three web-service entry points as Moodle core's own code does, and local_depot's five
 * functions as moodle/local_depot's code does. No Moodle can run here (its repository is
 * too large to bring in and no package ships it), so this is the one fake the tests accept;
 * it is built from Moodle's source (read with the search tool; files and lines in
 * MOODLE_SOURCES below, each pinned by test/storage/fake-moodle.test.ts), not from memory.
 *
 * What it models, and where it comes from:
 * - webservice/rest/server.php + webservice/rest/locallib.php (webservice_rest_server) and
 *   webservice/lib.php (webservice_base_server::run, authenticate_by_token,
 *   load_function_info): POST parameters (GET merged), `moodlewsrestformat`, the token,
 *   the function allowed by the token's service, parameters validated as
 *   external_api::validate_parameters does (validate_param: a value cleaning would change
 *   is refused), and errors as HTTP 200 JSON `{ exception, errorcode, message, debuginfo? }`.
 * - webservice/upload.php: multipart as PHP hands it over (`$_FILES`, per-part errors),
 *   the service's `uploadfiles`, the draft area (`itemid` 0: a new one), `maxbytes`
 *   (per-file `fileoversized` entries) and the answer array; errors through the AJAX
 *   exception handler (core_renderer_ajax::fatal_error: HTTP 200 JSON `{ error, errorcode,
 *   stacktrace, debuginfo, reproductionlink }`).
 * - webservice/pluginfile.php: the token, the service's `downloadfiles`, the path from the
 *   `file` parameter or PATH_INFO (lib/weblib.php get_file_argument), file_pluginfile()
 *   calling local_depot_pluginfile (moodle/local_depot/lib.php), send_stored_file()'s
 *   attachment, and send_file_not_found()'s 404.
 * - PHP itself: post_max_size (the body dropped whole: upload.php then misses its token),
 *   upload_max_filesize (UPLOAD_ERR_INI_SIZE), a body that ends without its closing
 *   boundary (UPLOAD_ERR_PARTIAL), a client that goes away (the script never answers).
 * - The files table: one file per path (the unique index on pathnamehash, which
 *   file_storage turns into stored_file_creation_exception), content in a pool on disk.
 *
 * Message texts are illustrative (depot keys on `errorcode`, never on a message).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import http, { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';

/** Every shape the fake serves, with the Moodle source it follows (pinned by test/storage/fake-moodle.test.ts). */
export const MOODLE_SOURCES = {
  uploadScript: 'moodle/moodle webservice/upload.php @068904f73b2f83a9de8d8325726970dc50b4f1d1',
  uploadParams: 'webservice/upload.php:49-54 (filepath PARAM_PATH, filearea PARAM_ALPHA default private, itemid PARAM_INT)',
  uploadToken: 'webservice/upload.php:59-61 (required_param token PARAM_ALPHANUM; webservice::authenticate_user)',
  uploadDisabled: "webservice/upload.php:62-65 (webservice_access_exception 'Web service file upload must be enabled in external service settings')",
  uploadDraftOnly: 'webservice/upload.php:72-79 (private: privatefilesupload; not draft: file_exception error)',
  uploadPhpErrors: 'webservice/upload.php:87-112 (UPLOAD_ERR_INI_SIZE: upload_error_ini_size, UPLOAD_ERR_PARTIAL: upload_error_partial, ...)',
  uploadOversized: "webservice/upload.php:117-121 (size > get_max_upload_file_size($CFG->maxbytes): errortype 'fileoversized', error get_string maxbytes)",
  uploadNewDraft: 'webservice/upload.php:132-134 (itemid <= 0: file_get_unused_draft_itemid)',
  uploadRecord: 'webservice/upload.php:152-162 (component user, contextid, userid, filearea, filename, filepath, itemid, license, author, source)',
  uploadNameExists: "webservice/upload.php:165-170 (errortype 'filenameexist')",
  uploadAnswer: 'webservice/upload.php:176 (echo json_encode($results))',
  ajaxError:
    'lib/classes/output/core_renderer_ajax.php:54-58,72 (fatal_error: error, errorcode, stacktrace, debuginfo, reproductionlink; debug details only at DEBUG_DEVELOPER:59)',
  ajaxStatus: 'lib/setuplib.php default_exception_handler (AJAX_SCRIPT: core_renderer_ajax->fatal_error, no status set: HTTP 200)',
  ajaxContentType: "lib/classes/output/core_renderer_ajax.php header() ($_FILES not empty: 'text/plain; charset=utf-8', else application/json)",
  restScript: 'moodle/moodle webservice/rest/locallib.php @bd541e24b3f990956dd1705582c0f90d4a7e8a23',
  restFormat: "webservice/rest/locallib.php:66-72 (array_merge($_GET, $_POST); moodlewsrestformat 'xml' default or 'json')",
  restToken: 'webservice/rest/locallib.php:87-93 (wstoken, wsfunction, the rest are the parameters)',
  restAnswer: 'webservice/rest/locallib.php:119 (json_encode of the cleaned return value)',
  restError: 'webservice/rest/locallib.php:139-158 (send_error: exception, errorcode, message, debuginfo only when debugging; no status: HTTP 200)',
  restDisabled: "webservice/rest/server.php (protocol off: header('HTTP/1.0 403 Forbidden'), empty body; before 3.x an empty 200)",
  invalidToken: "webservice/lib.php webservice_server::authenticate_by_token (no token record: moodle_exception('invalidtoken', 'webservice'))",
  functionNotAllowed:
    "webservice/lib.php webservice_base_server::load_function_info (no enabled service of the token lists it: webservice_access_exception 'Access to the function X() is not allowed ...')",
  accessException: "webservice/lib.php class webservice_access_exception (errorcode 'accessexception', the reason in debuginfo)",
  validateParam: 'lib/moodlelib.php validate_param ((string)$param !== (string)clean_param(...): invalid_parameter_exception, errorcode invalidparameter)',
  cleanFile: 'lib/classes/param.php / lib/moodlelib.php clean_param PARAM_FILE (strips control chars and & < > " ` | \' : \\ /; . and .. become empty)',
  siteInfo:
    'moodle/moodle webservice/externallib.php @a11886be6319a890454cd61e3eb48aed88543814 get_site_info (functions [{name, version}], downloadfiles, uploadfiles, release, version, usermaxuploadfilesize)',
  pluginfileScript: 'moodle/moodle webservice/pluginfile.php @46067fbd3083561f5c5854143f2514fed8c3b77c',
  pluginfileToken: 'webservice/pluginfile.php:45-47 (required_param token; authenticate_user)',
  pluginfileDisabled:
    "webservice/pluginfile.php:50-53 (downloadfiles empty: webservice_access_exception 'Web service file downloading must be enabled in external service settings')",
  pluginfileServe: 'webservice/pluginfile.php:56-57 (get_file_argument(); file_pluginfile($relativepath, 0))',
  postPrecedence: "lib/moodlelib.php required_param ('// POST has precedence.')",
  fileArgument: "lib/weblib.php get_file_argument (optional_param('file', false, PARAM_PATH) unless the URI has forced slash arguments; else PATH_INFO)",
  sendStoredFile: 'lib/filelib.php send_file ($forcedownload: Content-Disposition: attachment; filename="...")',
  fileNotFound: "lib/filelib.php send_file_not_found (send_header_404(); moodle_exception('filenotfound', 'error'))",
  uniquePath: 'files table: UNIQUE KEY mdl_file_pat_uix (pathnamehash) (lib/db/install.xml, as in every Moodle database dump)',
  creationRefused:
    'lib/filestorage/file_storage.php create_file_from_storedfile / create_file_from_string (insert_record fails: stored_file_creation_exception, errorcode storedfilenotcreated)',
  draftCron: 'lib/filestorage/file_storage.php cron() (draft areas older than 4 days are deleted)',
  pluginStore: 'moodle/local_depot/classes/local/archive_area.php store_draft / file_once / create_both',
  pluginGet: 'moodle/local_depot/classes/local/archive_area.php get',
  pluginDelete: 'moodle/local_depot/classes/local/archive_area.php delete',
  pluginList: 'moodle/local_depot/classes/local/archive_area.php list_page',
  pluginSpace: 'moodle/local_depot/classes/external/get_space.php execute',
  pluginAccess:
    'moodle/local_depot/classes/external/area_function.php open_area (context_course::instance, validate_context, require_capability local/depot:manage)',
  pluginServe: 'moodle/local_depot/lib.php local_depot_pluginfile',
} as const;

/** The capability local_depot checks (moodle/local_depot/db/access.php). */
export const DEPOT_CAPABILITY = 'local/depot:manage';
export const LOCAL_DEPOT_FUNCTIONS = [
  'local_depot_store_file',
  'local_depot_get_file',
  'local_depot_delete_file',
  'local_depot_list_files',
  'local_depot_get_space',
];
const PLUGIN_VERSION = '2026120100';
const MOODLE_VERSION = '2024100700';

export interface FakeMoodleOptions {
  /** `$CFG->maxbytes` (0: only PHP's limits). */
  maxbytes?: number;
  /** php.ini `upload_max_filesize`. */
  uploadMaxFilesize?: number;
  /** php.ini `post_max_size`. */
  postMaxSize?: number;
  /** `$CFG->debug` at DEBUG_DEVELOPER: error answers carry debuginfo. */
  debug?: boolean;
  /** The REST protocol enabled (Site administration > Server > Web services > Manage protocols). */
  restProtocol?: boolean;
  /** What disk_free_space / disk_total_space say of the file pool; null: unknown (an object store). */
  disk?: { totalBytes: number; freeBytes: number } | null;
}

export interface FakeFile {
  id: number;
  contextid: number;
  component: string;
  filearea: string;
  itemid: number;
  filepath: string;
  filename: string;
  filesize: number;
  /** The pool file holding the bytes (Moodle: filedir/<contenthash>). */
  content: string;
  userid: number;
  timecreated: number;
}

interface User {
  id: number;
  username: string;
  contextid: number;
  suspended: boolean;
  /** Courses the user may enter (enrolled, or moodle/course:view). */
  courses: Set<number>;
  /** `${contextid} ${capability}` pairs. */
  capabilities: Set<string>;
}

interface Service {
  id: number;
  shortname: string;
  functions: Set<string>;
  enabled: boolean;
  uploadfiles: boolean;
  downloadfiles: boolean;
  restrictedusers: boolean;
  users: Set<number>;
}

interface Token {
  userid: number;
  serviceid: number;
  validuntil?: number;
}

/** A PHP exception as Moodle reports it. */
class MoodleException extends Error {
  constructor(
    readonly cls: string,
    readonly errorcode: string,
    message: string,
    readonly debuginfo?: string,
    /** An HTTP status a script set before throwing (send_file_not_found: 404). */
    readonly status = 200,
  ) {
    super(message);
  }
}

const accessException = (debuginfo: string) => new MoodleException('webservice_access_exception', 'accessexception', 'Access control exception', debuginfo);
const invalidParameter = (debuginfo: string) =>
  new MoodleException('invalid_parameter_exception', 'invalidparameter', 'Invalid parameter value detected', debuginfo);

/** PARAM types the functions use, cleaned as Moodle cleans them. */
type ParamType = 'int' | 'area' | 'path' | 'file' | 'alphanum' | 'raw' | 'alpha';

export function cleanParam(value: string, type: ParamType): string {
  switch (type) {
    case 'int':
      return String(parseInt(value, 10) || 0);
    case 'alphanum':
      return value.replace(/[^A-Za-z0-9]/g, '');
    case 'alpha':
      return value.replace(/[^A-Za-z]/g, '');
    case 'area':
      return /^[a-z](?:[a-z0-9_](?!__))*[a-z0-9]+$/.test(value) ? value : '';
    case 'file': {
      // eslint-disable-next-line no-control-regex
      const cleaned = value.replace(/[\u0000-\u001f\u007f-\u009f]|[&<>"`|':\\/]/gu, '');
      return cleaned === '.' || cleaned === '..' ? '' : cleaned;
    }
    case 'path': {
      const crumbs = value.replace(/\\/g, '/').split('/');
      return crumbs
        .map((crumb, i) => (crumb === '.' && i === 0 ? crumb : cleanParam(crumb, 'file')))
        .join('/')
        .replace(/\/\/+/g, '/');
    }
    case 'raw':
      return value;
  }
}

type FunctionParams = Record<string, { type: ParamType; default?: string }>;

const AREA_PARAMS: FunctionParams = { courseid: { type: 'int' }, filearea: { type: 'area', default: 'archive' } };
const PATH_PARAMS: FunctionParams = { ...AREA_PARAMS, filepath: { type: 'path' }, filename: { type: 'file' } };

/** The parameter descriptions of moodle/local_depot/classes/external/*.php (execute_parameters). */
const FUNCTION_PARAMS: Record<string, FunctionParams> = {
  core_webservice_get_site_info: {},
  local_depot_store_file: {
    ...AREA_PARAMS,
    draftitemid: { type: 'int' },
    filepath: { type: 'path' },
    filename: { type: 'file' },
    sha256: { type: 'alphanum' },
    manifest: { type: 'raw' },
  },
  local_depot_get_file: PATH_PARAMS,
  local_depot_delete_file: PATH_PARAMS,
  local_depot_list_files: {
    ...AREA_PARAMS,
    pathprefix: { type: 'path', default: '/' },
    after: { type: 'int', default: '0' },
    limit: { type: 'int', default: '100' },
  },
  local_depot_get_space: AREA_PARAMS,
};

export interface RequestRecord {
  script: string;
  method: string;
  /** The request target as sent: path and query. */
  url: string;
  fn?: string;
  /** Its Content-Length; absent when the body was sent chunked. */
  contentLength?: number;
}

export class FakeMoodle {
  readonly url: string;
  readonly options: Required<Omit<FakeMoodleOptions, 'disk'>> & { disk: FakeMoodleOptions['disk'] };
  readonly users = new Map<number, User>();
  readonly services = new Map<number, Service>();
  readonly tokens = new Map<string, Token>();
  /** The files table, by id. */
  files = new Map<number, FakeFile>();
  /** Courses by id → their context id. */
  readonly courses = new Map<number, number>();
  readonly requests: RequestRecord[] = [];
  /** Fault injection: the server drops the connection once this many bytes of an upload's body arrived. */
  cutUploadAfter?: number;
  /** Fault injection: the server drops the connection after sending this many bytes of a file. */
  cutDownloadAfter?: number;
  /** A broken plugin: the store function replaces a file at a taken path (the check must then say best_effort). */
  storeReplaces = false;
  /** Fault injection: runs inside the store function right before its transaction (a concurrent writer's moment). */
  beforeStoreTransaction?: (path: { contextid: number; filearea: string; filepath: string; filename: string }) => void | Promise<void>;
  private nextFileId = 1;
  private nextPool = 1;

  constructor(
    private readonly server: http.Server,
    port: number,
    readonly pool: string,
    options: FakeMoodleOptions,
  ) {
    this.url = `http://127.0.0.1:${port}/moodle`;
    this.options = {
      maxbytes: options.maxbytes ?? 0,
      uploadMaxFilesize: options.uploadMaxFilesize ?? 2 * 1024 * 1024 * 1024,
      postMaxSize: options.postMaxSize ?? 2 * 1024 * 1024 * 1024,
      debug: options.debug ?? false,
      restProtocol: options.restProtocol ?? true,
      disk: options.disk === undefined ? { totalBytes: 500 * 1024 ** 3, freeBytes: 200 * 1024 ** 3 } : options.disk,
    };
  }

  // ---- set-up (what an administrator does) ----

  addCourse(id: number): number {
    const contextid = 1000 + id;
    this.courses.set(id, contextid);
    return contextid;
  }

  addUser(username: string): User {
    const id = this.users.size + 2;
    const user: User = { id, username, contextid: 100 + id, suspended: false, courses: new Set(), capabilities: new Set() };
    this.users.set(id, user);
    return user;
  }

  addService(
    shortname: string,
    functions: string[],
    flags: Partial<Pick<Service, 'enabled' | 'uploadfiles' | 'downloadfiles' | 'restrictedusers'>> = {},
  ): Service {
    const service: Service = {
      id: this.services.size + 1,
      shortname,
      functions: new Set(functions),
      enabled: flags.enabled ?? true,
      uploadfiles: flags.uploadfiles ?? true,
      downloadfiles: flags.downloadfiles ?? true,
      restrictedusers: flags.restrictedusers ?? true,
      users: new Set(),
    };
    this.services.set(service.id, service);
    return service;
  }

  addToken(user: User, service: Service, validuntil?: number): string {
    const token = randomBytes(16).toString('hex');
    this.tokens.set(token, { userid: user.id, serviceid: service.id, validuntil });
    return token;
  }

  /** Enrols the user (may enter the course) and gives them local/depot:manage there. */
  grant(user: User, courseId: number, capability = DEPOT_CAPABILITY): void {
    const contextid = this.courses.get(courseId);
    if (contextid === undefined) throw new Error(`no course ${courseId}`);
    user.courses.add(courseId);
    user.capabilities.add(`${contextid} ${capability}`);
  }

  // ---- what tests look at ----

  /** Every file of a course's area, as `<itemid><filepath><filename>` (directories aside, as Moodle lists them). */
  areaEntries(courseId: number, filearea = 'archive'): string[] {
    const contextid = this.courses.get(courseId);
    return [...this.files.values()]
      .filter((f) => f.contextid === contextid && f.component === 'local_depot' && f.filearea === filearea)
      .map((f) => `${f.itemid}${f.filepath}${f.filename}`)
      .sort();
  }

  /** Every file still in a draft area (uploads not filed). */
  draftEntries(): string[] {
    return [...this.files.values()].filter((f) => f.component === 'user' && f.filearea === 'draft').map((f) => `draft/${f.itemid}${f.filepath}${f.filename}`);
  }

  findFile(contextid: number, component: string, filearea: string, itemid: number, filepath: string, filename: string): FakeFile | undefined {
    for (const f of this.files.values()) {
      if (
        f.contextid === contextid &&
        f.component === component &&
        f.filearea === filearea &&
        f.itemid === itemid &&
        f.filepath === filepath &&
        f.filename === filename
      ) {
        return f;
      }
    }
    return undefined;
  }

  /** Changes the first byte of a file's content behind Moodle's back (that file's pool copy only). */
  async tamper(file: FakeFile): Promise<void> {
    const bytes = await readFile(file.content);
    const changed = bytes.length === 0 ? Buffer.from([0x2a]) : Buffer.concat([Buffer.from([bytes[0] ^ 0xff]), bytes.subarray(1)]);
    const copy = path.join(this.pool, `tampered-${this.nextPool++}`);
    await writeFile(copy, changed);
    file.content = copy;
    file.filesize = changed.length;
  }

  /** Another writer's file in the course's area: without a manifest, or with one (another depot's archive). */
  async plant(courseId: number, filearea: string, filepath: string, filename: string, bytes: Buffer, manifest?: string): Promise<FakeFile> {
    const contextid = this.courses.get(courseId);
    if (contextid === undefined) throw new Error(`no course ${courseId}`);
    const archive = await this.poolBytes(bytes);
    const beside = manifest === undefined ? undefined : await this.poolBytes(Buffer.from(manifest));
    return this.transaction(() => {
      const file = this.insert({ contextid, component: 'local_depot', filearea, itemid: 0, filepath, filename, userid: 2 }, archive);
      if (beside) this.insert({ contextid, component: 'local_depot', filearea, itemid: 1, filepath, filename, userid: 2 }, beside);
      return file;
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.pool, { recursive: true, force: true });
  }

  // ---- the files table and pool (file_storage) ----

  private async poolBytes(bytes: Buffer): Promise<{ content: string; size: number }> {
    const file = path.join(this.pool, `pool-${this.nextPool++}`);
    await writeFile(file, bytes);
    return { content: file, size: bytes.length };
  }

  /** INSERT into files: the unique pathnamehash refuses a second file at a path (stored_file_creation_exception). */
  private insert(record: Omit<FakeFile, 'id' | 'content' | 'filesize' | 'timecreated'>, content: { content: string; size: number }): FakeFile {
    if (this.findFile(record.contextid, record.component, record.filearea, record.itemid, record.filepath, record.filename)) {
      throw new MoodleException(
        'stored_file_creation_exception',
        'storedfilenotcreated',
        'Cannot create file',
        'duplicate key value violates unique constraint "mdl_file_pat_uix"',
      );
    }
    if ([...record.filename].length > 255 || [...record.filepath].length > 255) {
      throw new MoodleException(
        'stored_file_creation_exception',
        'storedfilenotcreated',
        'Cannot create file',
        'value too long for type character varying(255)',
      );
    }
    const file: FakeFile = { ...record, id: this.nextFileId++, content: content.content, filesize: content.size, timecreated: Math.floor(Date.now() / 1000) };
    this.files.set(file.id, file);
    return file;
  }

  /** A delegated transaction: every change undone when `run` throws. */
  private transaction<T>(run: () => T): T {
    const snapshot = new Map(this.files);
    try {
      return run();
    } catch (error) {
      this.files = snapshot;
      throw error;
    }
  }

  // ---- HTTP ----

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const script = url.pathname.startsWith('/moodle/') ? url.pathname.slice('/moodle'.length) : url.pathname;
    const record: RequestRecord = { script, method: req.method ?? '', url: req.url ?? '' };
    if (req.headers['content-length'] !== undefined) record.contentLength = Number(req.headers['content-length']);
    this.requests.push(record);
    if (script === '/webservice/rest/server.php' && req.method === 'POST') return this.rest(req, res, url, record);
    if (script === '/webservice/upload.php' && req.method === 'POST') return this.upload(req, res, url);
    if (script === '/webservice/pluginfile.php' || script.startsWith('/webservice/pluginfile.php/')) return this.pluginfile(req, res, url, script);
    req.resume();
    res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>Not Found</body></html>');
  }

  /** webservice/rest/server.php → webservice_rest_server::run(). */
  private async rest(req: IncomingMessage, res: ServerResponse, url: URL, record: RequestRecord): Promise<void> {
    const body = await readBody(req);
    if (!this.options.restProtocol) {
      res.writeHead(403).end();
      return;
    }
    // array_merge($_GET, $_POST): POST wins.
    const params = new Map<string, string>(url.searchParams);
    if ((req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params.set(k, v);
    }
    const format = params.get('moodlewsrestformat');
    params.delete('moodlewsrestformat');
    const restformat = format === 'json' || format === 'xml' ? format : 'xml';
    const token = params.get('wstoken');
    const fn = params.get('wsfunction');
    params.delete('wstoken');
    params.delete('wsfunction');
    record.fn = fn;
    const send = (status: number, value: unknown) => {
      if (restformat !== 'json') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('the fake answers moodlewsrestformat=json only');
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    try {
      const user = this.authenticateByToken(token);
      const service = this.serviceFor(token ?? '');
      if (!fn) throw invalidParameter('Missing function name');
      if (!(fn in FUNCTION_PARAMS))
        throw new MoodleException('dml_missing_record_exception', 'invalidrecord', "Can't find data record in database table external_functions.");
      if (!service.enabled || !service.functions.has(fn) || (service.restrictedusers && !service.users.has(user.id))) {
        throw accessException(`Access to the function ${fn}() is not allowed. There could be multiple reasons for this: ...`);
      }
      const values = validateParameters(FUNCTION_PARAMS[fn], params);
      send(200, await this.execute(fn, values, user, service));
    } catch (error) {
      const e = error instanceof MoodleException ? error : new MoodleException('moodle_exception', 'generalexceptionmessage', String(error));
      const answer: Record<string, unknown> = { exception: e.cls, errorcode: e.errorcode, message: e.message };
      if (this.options.debug && e.debuginfo !== undefined) answer.debuginfo = e.debuginfo;
      send(200, answer);
    }
  }

  /** webservice_server::authenticate_by_token (REST). */
  private authenticateByToken(token: string | undefined): User {
    const record = token ? this.tokens.get(token) : undefined;
    if (!record) throw new MoodleException('moodle_exception', 'invalidtoken', 'Invalid token - token not found');
    if (record.validuntil !== undefined && record.validuntil < Date.now() / 1000) {
      throw accessException('Invalid token - token expired - check validuntil time for the token');
    }
    const user = this.users.get(record.userid);
    if (!user) throw new MoodleException('dml_missing_record_exception', 'invalidrecord', "Can't find data record in database table user.");
    if (user.suspended) throw accessException(`Refused web service access for suspended username: ${user.username}`);
    return user;
  }

  private serviceFor(token: string): Service {
    const record = this.tokens.get(token);
    const service = record ? this.services.get(record.serviceid) : undefined;
    if (!service) throw accessException("Web service is not available (it doesn't exist or might be disabled)");
    return service;
  }

  /** webservice::authenticate_user (upload.php, pluginfile.php). */
  private authenticateUser(token: string | undefined): { user: User; service: Service } {
    const record = token ? this.tokens.get(token) : undefined;
    if (!record) throw new MoodleException('moodle_exception', 'invalidtoken', 'Invalid token - token not found');
    const user = this.authenticateByToken(token);
    const service = this.services.get(record.serviceid);
    if (!service || !service.enabled) throw accessException("Web service is not available (it doesn't exist or might be disabled)");
    if (service.restrictedusers && !service.users.has(user.id)) {
      throw accessException(
        `The user is not allowed for this service. First you need to allow this user on the ${service.shortname}'s allowed users administration page.`,
      );
    }
    return { user, service };
  }

  private async execute(fn: string, params: Record<string, string>, user: User, service: Service): Promise<unknown> {
    if (fn === 'core_webservice_get_site_info') {
      return {
        sitename: 'Fake Moodle',
        username: user.username,
        firstname: 'depot',
        lastname: 'service',
        fullname: 'depot service',
        lang: 'en',
        userid: user.id,
        siteurl: this.url,
        userpictureurl: `${this.url}/theme/image.php/boost/core/1/u/f1`,
        functions: [...service.functions].map((name) => ({ name, version: name.startsWith('local_depot_') ? PLUGIN_VERSION : MOODLE_VERSION })),
        downloadfiles: service.downloadfiles ? 1 : 0,
        uploadfiles: service.uploadfiles ? 1 : 0,
        release: '4.5 (Build: 20241007)',
        version: MOODLE_VERSION,
        usermaxuploadfilesize: this.maxUploadFileSize(),
      };
    }
    const area = this.openArea(Number(params.courseid), params.filearea, user);
    switch (fn) {
      case 'local_depot_store_file':
        return this.storeFile(area, user, params);
      case 'local_depot_get_file': {
        requireLocation(params.filepath, params.filename);
        const file = this.findFile(area.contextid, 'local_depot', area.filearea, 0, params.filepath, params.filename);
        if (!file) return { found: false, manifest: '' };
        return { found: true, manifest: await this.manifestOf(area, params.filepath, params.filename), file: location(file) };
      }
      case 'local_depot_delete_file': {
        requireLocation(params.filepath, params.filename);
        return {
          deleted: this.transaction(() => {
            const archive = this.findFile(area.contextid, 'local_depot', area.filearea, 0, params.filepath, params.filename);
            if (!archive) return false;
            this.files.delete(archive.id);
            const manifest = this.findFile(area.contextid, 'local_depot', area.filearea, 1, params.filepath, params.filename);
            if (manifest) this.files.delete(manifest.id);
            return true;
          }),
        };
      }
      case 'local_depot_list_files':
        return this.listFiles(area, params);
      case 'local_depot_get_space': {
        let used = 0;
        for (const f of this.files.values())
          if (f.contextid === area.contextid && f.component === 'local_depot' && f.filearea === area.filearea) used += f.filesize;
        const disk = this.options.disk;
        return disk ? { usedbytes: used, freebytes: disk.freeBytes, totalbytes: disk.totalBytes } : { usedbytes: used };
      }
    }
    throw new MoodleException('coding_exception', 'codingerror', `fake: ${fn} not modelled`);
  }

  /** area_function::open_area: the course's context, validate_context, require_capability. */
  private openArea(courseid: number, filearea: string, user: User): { contextid: number; filearea: string } {
    const contextid = this.courses.get(courseid);
    if (contextid === undefined) throw new MoodleException('dml_missing_record_exception', 'invalidrecord', "Can't find data record in database table course.");
    if (!user.courses.has(courseid))
      throw new MoodleException('require_login_exception', 'requireloginerror', 'Course or activity not accessible.', 'Not enrolled');
    if (!user.capabilities.has(`${contextid} ${DEPOT_CAPABILITY}`)) {
      throw new MoodleException(
        'required_capability_exception',
        'nopermissions',
        "Sorry, but you do not currently have permissions to do that (File, read, list and delete depot's archives in a course).",
      );
    }
    return { contextid, filearea };
  }

  /** archive_area::store_draft. */
  private async storeFile(area: { contextid: number; filearea: string }, user: User, params: Record<string, string>): Promise<unknown> {
    const { filepath, filename, sha256, manifest } = params;
    requireLocation(filepath, filename);
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw invalidParameter('sha256 must be 64 lower-case hexadecimal digits');
    const draftitemid = Number(params.draftitemid);
    const drafts = [...this.files.values()].filter(
      (f) => f.contextid === user.contextid && f.component === 'user' && f.filearea === 'draft' && f.itemid === draftitemid,
    );
    if (drafts.length !== 1)
      throw new MoodleException(
        'moodle_exception',
        'draftnotfound',
        'The draft area does not hold exactly one uploaded file.',
        `${drafts.length} files in the draft area`,
      );
    const draft = drafts[0];
    try {
      const described = requireDescribes(manifest, filepath, filename, sha256);
      if (draft.filesize !== described.size || (await sha256File(draft.content)) !== sha256) {
        throw new MoodleException(
          'moodle_exception',
          'checksummismatch',
          'The uploaded file is not the one depot sent (its size or sha256 differs): nothing was filed.',
        );
      }
      await this.beforeStoreTransaction?.({ contextid: area.contextid, filearea: area.filearea, filepath, filename });
      if (this.storeReplaces) {
        for (const itemid of [0, 1]) {
          const old = this.findFile(area.contextid, 'local_depot', area.filearea, itemid, filepath, filename);
          if (old) this.files.delete(old.id);
        }
      }
      const manifestContent = await this.poolBytes(Buffer.from(manifest, 'utf8'));
      try {
        const archive = this.transaction(() => {
          const created = this.insert(
            { contextid: area.contextid, component: 'local_depot', filearea: area.filearea, itemid: 0, filepath, filename, userid: user.id },
            {
              content: draft.content,
              size: draft.filesize,
            },
          );
          this.insert(
            { contextid: area.contextid, component: 'local_depot', filearea: area.filearea, itemid: 1, filepath, filename, userid: user.id },
            manifestContent,
          );
          return created;
        });
        return { status: 'created', manifest, file: location(archive) };
      } catch (error) {
        const existing = this.findFile(area.contextid, 'local_depot', area.filearea, 0, filepath, filename);
        if (!(error instanceof MoodleException) || error.errorcode !== 'storedfilenotcreated' || !existing) throw error;
        return { status: 'exists', manifest: await this.manifestOf(area, filepath, filename), file: location(existing) };
      }
    } finally {
      for (const f of drafts) this.files.delete(f.id);
    }
  }

  private async manifestOf(area: { contextid: number; filearea: string }, filepath: string, filename: string): Promise<string> {
    const file = this.findFile(area.contextid, 'local_depot', area.filearea, 1, filepath, filename);
    return file ? (await readFile(file.content)).toString('utf8') : '';
  }

  /** archive_area::list_page: keyset pages by id. */
  private async listFiles(area: { contextid: number; filearea: string }, params: Record<string, string>): Promise<unknown> {
    const limit = Number(params.limit);
    const after = Number(params.after);
    if (limit < 1 || limit > 1000 || after < 0) throw invalidParameter('limit must be 1-1000 and after at least 0');
    if (!params.pathprefix.startsWith('/')) throw invalidParameter('pathprefix must be a clean path starting with /');
    const rows = [...this.files.values()]
      .filter((f) => f.contextid === area.contextid && f.component === 'local_depot' && f.filearea === area.filearea && f.itemid === 0 && f.id > after)
      .filter((f) => f.filepath.startsWith(params.pathprefix))
      .sort((a, b) => a.id - b.id)
      .slice(0, limit);
    const files = [];
    for (const f of rows)
      files.push({ filepath: f.filepath, filename: f.filename, filesize: f.filesize, manifest: await this.manifestOf(area, f.filepath, f.filename) });
    return { files, next: rows.length === limit ? rows[rows.length - 1].id : 0 };
  }

  /** get_max_upload_file_size($CFG->maxbytes): the smallest of PHP's limits and maxbytes. */
  private maxUploadFileSize(): number {
    const limits = [this.options.uploadMaxFilesize, this.options.postMaxSize];
    if (this.options.maxbytes > 0) limits.push(this.options.maxbytes);
    return Math.min(...limits);
  }

  /** An error from upload.php or pluginfile.php: the AJAX exception handler's JSON. */
  private ajaxError(res: ServerResponse, error: unknown, hadFiles: boolean): void {
    const e = error instanceof MoodleException ? error : new MoodleException('moodle_exception', 'generalexceptionmessage', String(error));
    const body = { error: e.message, errorcode: e.errorcode, stacktrace: null as string | null, debuginfo: null as string | null, reproductionlink: null };
    if (this.options.debug) {
      body.debuginfo = e.debuginfo ?? null;
      body.stacktrace = '* line 1 of /webservice/fake.php: call to fake()';
    }
    res.writeHead(e.status, { 'content-type': hadFiles ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  }

  /** webservice/upload.php, after PHP parsed the multipart body into $_POST and $_FILES. */
  private async upload(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const parsed = await this.parseMultipart(req);
    if (parsed === 'gone') return; // The client went away: PHP never ran the script.
    const { fields, files } = parsed;
    const param = (name: string) => fields.get(name) ?? url.searchParams.get(name) ?? undefined;
    try {
      const filepath = cleanParam(param('filepath') ?? '/', 'path');
      const filearea = cleanParam(param('filearea') ?? 'private', 'alpha');
      let itemid = Number(cleanParam(param('itemid') ?? '0', 'int'));
      const token = param('token');
      if (token === undefined) throw new MoodleException('moodle_exception', 'missingparam', 'A required parameter (token) was missing');
      const { user, service } = this.authenticateUser(cleanParam(token, 'alphanum'));
      if (!service.uploadfiles) throw accessException('Web service file upload must be enabled in external service settings');
      if (filearea === 'private') throw new MoodleException('moodle_exception', 'privatefilesupload', 'Private files upload is not allowed');
      if (filearea !== 'draft') throw new MoodleException('file_exception', 'error', 'error');
      const entries: { filename: string; errortype?: string; error?: string; tmp?: string; size: number }[] = [];
      for (const file of files) {
        if (file.error === 'ini_size')
          throw new MoodleException('moodle_exception', 'upload_error_ini_size', 'The uploaded file exceeds the upload_max_filesize directive in php.ini.');
        if (file.error === 'partial') throw new MoodleException('moodle_exception', 'upload_error_partial', 'The uploaded file was only partially uploaded.');
        const filename = cleanParam(file.name, 'file');
        if (file.size > this.maxUploadFileSize())
          entries.push({ filename, errortype: 'fileoversized', error: 'This file is bigger than the maximum size', size: file.size });
        else entries.push({ filename, tmp: file.tmp, size: file.size });
      }
      if (itemid <= 0) {
        do itemid = randomInt(1, 999_999_999);
        while ([...this.files.values()].some((f) => f.component === 'user' && f.filearea === 'draft' && f.itemid === itemid));
      }
      const results: unknown[] = [];
      for (const entry of entries) {
        if (entry.errortype) {
          results.push({ filename: entry.filename, errortype: entry.errortype, error: entry.error });
          continue;
        }
        const record = {
          component: 'user',
          contextid: user.contextid,
          userid: String(user.id), // $USER->id comes from a database record: a string in PHP
          filearea,
          filename: entry.filename,
          filepath,
          itemid,
          license: 'unknown',
          author: 'depot service',
          source: `O:8:"stdClass":1:{s:6:"source";s:${Buffer.byteLength(entry.filename)}:"${entry.filename}";}`,
        };
        if (this.findFile(user.contextid, 'user', filearea, itemid, filepath, entry.filename)) {
          results.push({ filename: entry.filename, errortype: 'filenameexist', error: `"${entry.filename}" file already exists` });
        } else {
          this.insert(
            { contextid: user.contextid, component: 'user', filearea, itemid, filepath, filename: entry.filename, userid: user.id },
            { content: entry.tmp!, size: entry.size },
          );
          results.push(record);
        }
      }
      res.writeHead(200, { 'content-type': files.length > 0 ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8' }).end(JSON.stringify(results));
    } catch (error) {
      this.ajaxError(res, error, files.length > 0);
    }
  }

  /**
   * PHP's multipart handling (main/rfc1867.c) as upload.php sees its result: fields,
   * and files written to temporary files with their error. A body over post_max_size
   * is dropped whole; a client that goes away leaves no script run at all ('gone').
   */
  private async parseMultipart(
    req: IncomingMessage,
  ): Promise<{ fields: Map<string, string>; files: { name: string; size: number; tmp?: string; error?: 'ini_size' | 'partial' }[] } | 'gone'> {
    const fields = new Map<string, string>();
    const files: { name: string; size: number; tmp?: string; error?: 'ini_size' | 'partial' }[] = [];
    const declared = Number(req.headers['content-length'] ?? NaN);
    const match = /boundary=(?:"([^"]+)"|([^;]+))/.exec(req.headers['content-type'] ?? '');
    if (declared > this.options.postMaxSize || !match) {
      // PHP: "POST Content-Length of N bytes exceeds the limit": $_POST and $_FILES stay empty.
      try {
        for await (const chunk of req) void chunk;
      } catch {
        return 'gone';
      }
      return { fields, files };
    }
    const delimiter = Buffer.from(`\r\n--${match[1] ?? match[2]}`);
    let buffer = Buffer.from('\r\n'); // so that the first boundary looks like every other
    let state: 'preamble' | 'headers' | 'body' | 'done' = 'preamble';
    let part: { name: string; filename?: string; chunks: Buffer[]; out?: ReturnType<typeof createWriteStream>; tmp?: string; size: number } | undefined;
    let received = 0;
    const finishPart = async (complete: boolean) => {
      if (!part) return;
      if (part.filename === undefined) {
        if (complete) fields.set(part.name, Buffer.concat(part.chunks).toString('utf8'));
      } else {
        if (part.out) {
          part.out.end();
          await once(part.out, 'close');
        }
        const overIni = part.size > this.options.uploadMaxFilesize;
        if (!complete || overIni) {
          if (part.tmp) await unlink(part.tmp).catch(() => undefined);
          files.push({ name: part.filename, size: part.size, error: overIni ? 'ini_size' : 'partial' });
        } else {
          files.push({ name: part.filename, size: part.size, tmp: part.tmp });
        }
      }
      part = undefined;
    };
    const writeBody = async (data: Buffer) => {
      if (!part || data.length === 0) return;
      part.size += data.length;
      if (part.filename === undefined) {
        part.chunks.push(data);
        return;
      }
      if (part.size > this.options.uploadMaxFilesize) return; // PHP stops writing the part and marks it UPLOAD_ERR_INI_SIZE
      if (part.out && !part.out.write(data)) await once(part.out, 'drain');
    };
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (this.cutUploadAfter !== undefined && received >= this.cutUploadAfter) {
          // A Moodle that stops mid-upload (a web server restarted, a PHP worker killed).
          req.socket.destroy();
          await finishPart(false);
          return 'gone';
        }
        buffer = Buffer.concat([buffer, chunk]);
        for (;;) {
          if (state === 'done') {
            buffer = Buffer.alloc(0);
            break;
          }
          if (state === 'preamble' || state === 'body') {
            const at = buffer.indexOf(delimiter);
            if (at < 0) {
              const keep = Math.max(0, buffer.length - delimiter.length - 2);
              if (state === 'body') await writeBody(buffer.subarray(0, keep));
              buffer = buffer.subarray(keep);
              break;
            }
            if (state === 'body') {
              await writeBody(buffer.subarray(0, at));
              await finishPart(true);
            }
            const after = buffer.subarray(at + delimiter.length);
            if (after.length < 2) break;
            if (after.subarray(0, 2).toString() === '--') {
              state = 'done';
              continue;
            }
            buffer = after.subarray(2); // CRLF after the boundary
            state = 'headers';
            continue;
          }
          const end = buffer.indexOf('\r\n\r\n');
          if (end < 0) break;
          const headers = buffer.subarray(0, end).toString('utf8');
          buffer = buffer.subarray(end + 4);
          const disposition = /content-disposition:[^\r\n]*/i.exec(headers)?.[0] ?? '';
          const name = /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? '';
          const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1];
          part = { name, filename, chunks: [], size: 0 };
          if (filename !== undefined) {
            // PHP creates the temporary file as the part starts (a 0-byte upload is a 0-byte file, UPLOAD_ERR_OK).
            part.tmp = path.join(this.pool, `php-${this.nextPool++}`);
            part.out = createWriteStream(part.tmp);
          }
          state = 'body';
        }
      }
    } catch {
      await finishPart(false);
      return 'gone';
    }
    // The body ended without its closing boundary: the part in progress is UPLOAD_ERR_PARTIAL.
    if (state !== 'done') await finishPart(false);
    return { fields, files };
  }

  /** webservice/pluginfile.php → file_pluginfile() → local_depot_pluginfile(). */
  private async pluginfile(req: IncomingMessage, res: ServerResponse, url: URL, script: string): Promise<void> {
    const body = await readBody(req);
    const post = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
      ? new URLSearchParams(body.toString('utf8'))
      : new URLSearchParams();
    // POST has precedence (required_param / optional_param).
    const param = (name: string) => post.get(name) ?? url.searchParams.get(name) ?? undefined;
    try {
      const token = param('token');
      if (token === undefined) throw new MoodleException('moodle_exception', 'missingparam', 'A required parameter (token) was missing');
      const { user, service } = this.authenticateUser(cleanParam(token, 'alphanum'));
      if (!service.downloadfiles) throw accessException('Web service file downloading must be enabled in external service settings');
      // get_file_argument(): the `file` parameter, unless the URI carries forced slash arguments.
      const pathInfo = script.slice('/webservice/pluginfile.php'.length);
      const slashArgs = pathInfo.split('/').filter(Boolean).length > 2;
      const relative = slashArgs ? cleanParam(decodeURIComponent(pathInfo), 'path') : cleanParam(param('file') ?? '', 'path');
      const args = relative.replace(/^\/+/, '').split('/');
      if (relative === '' || args.length < 3) throw new MoodleException('moodle_exception', 'invalidarguments', 'Invalid arguments');
      const [contextid, component, filearea, ...rest] = args;
      const notFound = () => new MoodleException('moodle_exception', 'filenotfound', 'Sorry, the requested file could not be found', undefined, 404);
      const courseId = [...this.courses].find(([, ctx]) => String(ctx) === contextid)?.[0];
      if (courseId === undefined || component !== 'local_depot') throw notFound();
      // local_depot_pluginfile(): require_login, require_capability, item 0 only.
      if (!user.courses.has(courseId)) throw new MoodleException('require_login_exception', 'requireloginerror', 'Course or activity not accessible.');
      if (!user.capabilities.has(`${contextid} ${DEPOT_CAPABILITY}`)) {
        throw new MoodleException('required_capability_exception', 'nopermissions', 'Sorry, but you do not currently have permissions to do that.');
      }
      const itemid = Number(rest.shift());
      const filename = rest.pop();
      if (itemid !== 0 || filename === undefined) throw notFound();
      const filepath = rest.length > 0 ? `/${rest.join('/')}/` : '/';
      const file = this.findFile(Number(contextid), 'local_depot', filearea, 0, filepath, filename);
      if (!file) throw notFound();
      // send_stored_file($file, 0, 0, true): an attachment, not cached.
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        // PHP's header() sends the UTF-8 bytes as they are; Node sends a header's characters as Latin-1.
        'content-disposition': Buffer.from(`attachment; filename="${file.filename}"`, 'utf8').toString('latin1'),
        'content-length': String(file.filesize),
        'cache-control': 'private, must-revalidate, pre-check=0, post-check=0, max-age=0, no-transform',
        'access-control-allow-origin': '*',
      });
      let sent = 0;
      for await (const chunk of createReadStream(file.content) as AsyncIterable<Buffer>) {
        if (this.cutDownloadAfter !== undefined && sent + chunk.length > this.cutDownloadAfter) {
          res.write(chunk.subarray(0, this.cutDownloadAfter - sent));
          await new Promise((resolve) => setTimeout(resolve, 20));
          res.socket?.destroy();
          return;
        }
        sent += chunk.length;
        if (!res.write(chunk)) await once(res, 'drain');
      }
      res.end();
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.ajaxError(res, error, false);
    }
  }
}

/** external_api::validate_parameters for the functions' flat parameters. */
function validateParameters(description: FunctionParams, params: Map<string, string>): Record<string, string> {
  const unexpected = [...params.keys()].filter((k) => !(k in description));
  if (unexpected.length > 0) throw invalidParameter(`Unexpected keys (${unexpected.join(', ')}) detected in parameter array.`);
  const values: Record<string, string> = {};
  for (const [name, { type, default: fallback }] of Object.entries(description)) {
    const raw = params.get(name) ?? fallback;
    if (raw === undefined) throw invalidParameter(`${name} => Invalid parameter value detected (Missing required key in single structure: ${name})`);
    // validate_param: a value that cleaning would change is refused, never altered.
    if (cleanParam(raw, type) !== raw) throw invalidParameter(`${name} => Invalid parameter value detected`);
    values[name] = raw;
  }
  return values;
}

/** archive_area::require_location. */
function requireLocation(filepath: string, filename: string): void {
  if (!/^\/[0-9]{4}\/[0-9]{2}\/[0-9]{2}\/[A-Za-z0-9._-]{1,128}\/$/.test(filepath) || cleanParam(filepath, 'path') !== filepath) {
    throw invalidParameter('filepath must be /YYYY/MM/DD/<taskId>/');
  }
  if (filename === '' || cleanParam(filename, 'file') !== filename || [...filename].length > 255) {
    throw invalidParameter('filename must be a clean file name of at most 255 characters');
  }
}

/** manifest::require_describes. */
function requireDescribes(json: string, filepath: string, filename: string, sha256: string): { size: number } {
  const invalid = (why: string) =>
    new MoodleException('moodle_exception', 'invalidmanifest', 'The manifest does not describe the archive it was sent with.', why);
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw invalid('not a JSON object');
  }
  if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) throw invalid('not a JSON object');
  for (const field of ['name', 'key', 'sha256', 'storedAt', 'taskId']) if (typeof manifest[field] !== 'string') throw invalid(`${field} must be a string`);
  if (!Number.isInteger(manifest.size) || (manifest.size as number) < 0) throw invalid('size must be a whole number');
  if (typeof manifest.metadata !== 'object' || manifest.metadata === null || Array.isArray(manifest.metadata)) throw invalid('metadata must be an object');
  if (manifest.sha256 !== sha256) throw invalid("sha256 must be the archive's");
  const segments = (manifest.key as string).split('/');
  if (segments.length !== 5 || segments[4] !== manifest.name || segments[3] !== manifest.taskId) throw invalid('key must be YYYY/MM/DD/<taskId>/<name>');
  const toFilename = (name: string) => name.replace(/[%&<>"`|':]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  if (`/${segments.slice(0, 4).join('/')}/` !== filepath || toFilename(String(manifest.name)) !== filename)
    throw invalid('key must name the path the archive is filed at');
  return { size: manifest.size as number };
}

function location(file: FakeFile): Record<string, unknown> {
  return {
    contextid: file.contextid,
    component: file.component,
    filearea: file.filearea,
    itemid: file.itemid,
    filepath: file.filepath,
    filename: file.filename,
    filesize: file.filesize,
    timecreated: file.timecreated,
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}

export interface FakeMoodleSite {
  moodle: FakeMoodle;
  courseId: number;
  user: User;
  service: Service;
  token: string;
}

/**
 * A fake Moodle set up as docs/MOODLE.md tells an administrator to: course 42, a service
 * user `depot` enrolled there with local/depot:manage, the plugin's pre-built service
 * (its five functions and core_webservice_get_site_info, uploads and downloads on,
 * restricted to authorised users, `depot` authorised) and a token for it.
 */
export async function startFakeMoodle(options: FakeMoodleOptions = {}): Promise<FakeMoodleSite> {
  const pool = await mkdtemp(path.join(tmpdir(), 'fake-moodle-'));
  const holder: { moodle?: FakeMoodle } = {};
  const server = http.createServer((req, res) => {
    holder.moodle!.handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(`fake moodle: ${String(error)}`);
      else res.destroy();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const moodle = new FakeMoodle(server, (server.address() as AddressInfo).port, pool, options);
  holder.moodle = moodle;
  const courseId = 42;
  moodle.addCourse(courseId);
  const user = moodle.addUser('depot');
  moodle.grant(user, courseId);
  const service = moodle.addService('local_depot', ['core_webservice_get_site_info', ...LOCAL_DEPOT_FUNCTIONS]);
  service.users.add(user.id);
  const token = moodle.addToken(user, service);
  return { moodle, courseId, user, service, token };
}

/** Bytes of a pool file (for tests that look behind the web services). */
export async function poolBytes(file: FakeFile): Promise<Buffer> {
  await stat(file.content);
  return readFile(file.content);
}
