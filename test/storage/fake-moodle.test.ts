/**
 * The fake Moodle's own tests: each shape it serves, pinned to the Moodle source (file and
 * line, MOODLE_SOURCES) it was built from, with plain HTTP requests, not through depot's
 * driver. Sources were read with the search tool: moodle/moodle at the commits named in
 * MOODLE_SOURCES; where only a function could be located (large files), the function.
 */
import { createHash } from 'node:crypto';
import { FakeMoodleSite, LOCAL_DEPOT_FUNCTIONS, MOODLE_SOURCES, startFakeMoodle } from '../helpers/fake-moodle';

let site: FakeMoodleSite;

beforeEach(async () => {
  site = await startFakeMoodle();
});

afterEach(async () => {
  await site?.moodle.close();
});

interface Answer {
  status: number;
  contentType: string;
  headers: Headers;
  text: string;
  json(): unknown;
}

async function post(script: string, body: URLSearchParams | FormData, query = ''): Promise<Answer> {
  const res = await fetch(`${site.moodle.url}/webservice/${script}${query}`, { method: 'POST', body });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', headers: res.headers, text, json: () => JSON.parse(text) as unknown };
}

function rest(fn: string, params: Record<string, string | number> = {}, token = site.token): Promise<Answer> {
  const body = new URLSearchParams({ wstoken: token, wsfunction: fn, moodlewsrestformat: 'json' });
  for (const [k, v] of Object.entries(params)) body.set(k, String(v));
  return post('rest/server.php', body);
}

function uploadForm(bytes: Buffer, fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  for (const [k, v] of Object.entries({ token: site.token, filearea: 'draft', itemid: '0', filepath: '/', ...fields })) form.set(k, v);
  form.set('file_1', new Blob([bytes]), 'archive.bin');
  return form;
}

const TASK = '01938f2c-7a10-7cc3-8b5e-0c1d2e3f4a5b';

function manifestFor(name: string, bytes: Buffer): string {
  return JSON.stringify({
    name,
    key: `2026/12/01/${TASK}/${name}`,
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    storedAt: '2026-12-01T10:00:00.000Z',
    taskId: TASK,
    metadata: {},
  });
}

async function uploadDraft(bytes: Buffer): Promise<number> {
  const answer = await post('upload.php', uploadForm(bytes));
  return (answer.json() as { itemid: number }[])[0].itemid;
}

async function storeFile(name: string, bytes: Buffer): Promise<Answer> {
  return rest('local_depot_store_file', {
    courseid: site.courseId,
    draftitemid: await uploadDraft(bytes),
    filepath: `/2026/12/01/${TASK}/`,
    filename: name,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    manifest: manifestFor(name, bytes),
  });
}

describe('webservice/upload.php', () => {
  test(`a draft upload answers the file records: ${MOODLE_SOURCES.uploadRecord}, ${MOODLE_SOURCES.uploadNewDraft}, ${MOODLE_SOURCES.uploadAnswer}`, async () => {
    const answer = await post('upload.php', uploadForm(Buffer.from('hello')));
    expect(answer.status).toBe(200);
    // core_renderer_ajax::header(): $_FILES is not empty.
    expect(answer.contentType).toBe('text/plain; charset=utf-8');
    const [entry] = answer.json() as Record<string, unknown>[];
    expect(Object.keys(entry)).toEqual(['component', 'contextid', 'userid', 'filearea', 'filename', 'filepath', 'itemid', 'license', 'author', 'source']);
    expect(entry).toMatchObject({
      component: 'user',
      contextid: site.user.contextid,
      userid: String(site.user.id),
      filearea: 'draft',
      filename: 'archive.bin',
      filepath: '/',
    });
    expect(typeof entry.itemid).toBe('number');
    expect(entry.itemid).toBeGreaterThan(0);
    expect(site.moodle.draftEntries()).toEqual([`draft/${String(entry.itemid)}/archive.bin`]);
  });

  test(`errors are the AJAX handler's JSON with HTTP 200: ${MOODLE_SOURCES.ajaxError}; ${MOODLE_SOURCES.ajaxStatus}; ${MOODLE_SOURCES.invalidToken}`, async () => {
    const answer = await post('upload.php', uploadForm(Buffer.from('x'), { token: 'f'.repeat(32) }));
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({
      error: 'Invalid token - token not found',
      errorcode: 'invalidtoken',
      stacktrace: null,
      debuginfo: null,
      reproductionlink: null,
    });
  });

  test(`a service without uploads: ${MOODLE_SOURCES.uploadDisabled}; ${MOODLE_SOURCES.accessException}`, async () => {
    site.service.uploadfiles = false;
    expect((await post('upload.php', uploadForm(Buffer.from('x')))).json()).toMatchObject({
      errorcode: 'accessexception',
      error: 'Access control exception',
      debuginfo: null,
    });
  });

  test(`only draft uploads: ${MOODLE_SOURCES.uploadParams}; ${MOODLE_SOURCES.uploadDraftOnly}`, async () => {
    const form = uploadForm(Buffer.from('x'));
    form.delete('filearea');
    expect((await post('upload.php', form)).json()).toMatchObject({ errorcode: 'privatefilesupload' });
    expect((await post('upload.php', uploadForm(Buffer.from('x'), { filearea: 'course' }))).json()).toMatchObject({ errorcode: 'error' });
  });

  test(`over maxbytes: a per-file entry, still HTTP 200, nothing stored: ${MOODLE_SOURCES.uploadOversized}`, async () => {
    await site.moodle.close();
    site = await startFakeMoodle({ maxbytes: 10 });
    const answer = await post('upload.php', uploadForm(Buffer.alloc(11)));
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual([{ filename: 'archive.bin', errortype: 'fileoversized', error: 'This file is bigger than the maximum size' }]);
    expect(site.moodle.draftEntries()).toEqual([]);
  });

  test(`over PHP's upload_max_filesize: ${MOODLE_SOURCES.uploadPhpErrors}`, async () => {
    await site.moodle.close();
    site = await startFakeMoodle({ uploadMaxFilesize: 10 });
    expect((await post('upload.php', uploadForm(Buffer.alloc(11)))).json()).toMatchObject({ errorcode: 'upload_error_ini_size' });
  });

  test(`over PHP's post_max_size the body is dropped whole, token included: ${MOODLE_SOURCES.uploadToken}`, async () => {
    await site.moodle.close();
    site = await startFakeMoodle({ postMaxSize: 100 });
    expect((await post('upload.php', uploadForm(Buffer.alloc(200)))).json()).toMatchObject({ errorcode: 'missingparam' });
  });

  test(`a body without its closing boundary: UPLOAD_ERR_PARTIAL: ${MOODLE_SOURCES.uploadPhpErrors}`, async () => {
    const boundary = 'XyZ';
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n${site.token}\r\n--${boundary}\r\nContent-Disposition: form-data; name="filearea"\r\n\r\ndraft\r\n--${boundary}\r\nContent-Disposition: form-data; name="file_1"; filename="a.bin"\r\n\r\nhalf of it`;
    const res = await fetch(`${site.moodle.url}/webservice/upload.php`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
    expect(JSON.parse(await res.text())).toMatchObject({ errorcode: 'upload_error_partial' });
    expect(site.moodle.draftEntries()).toEqual([]);
  });

  test(`debugging shows debuginfo: ${MOODLE_SOURCES.ajaxError}`, async () => {
    await site.moodle.close();
    site = await startFakeMoodle({ debug: true });
    site.service.uploadfiles = false;
    expect((await post('upload.php', uploadForm(Buffer.from('x')))).json()).toMatchObject({
      errorcode: 'accessexception',
      debuginfo: 'Web service file upload must be enabled in external service settings',
    });
  });
});

describe('webservice/rest/server.php', () => {
  test(`a function's answer is its JSON return value: ${MOODLE_SOURCES.restFormat}, ${MOODLE_SOURCES.restToken}, ${MOODLE_SOURCES.restAnswer}`, async () => {
    const answer = await rest('local_depot_get_space', { courseid: site.courseId });
    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe('application/json');
    expect(answer.json()).toEqual({ usedbytes: 0, freebytes: 200 * 1024 ** 3, totalbytes: 500 * 1024 ** 3 });
  });

  test(`errors: HTTP 200, { exception, errorcode, message }, debuginfo only when debugging: ${MOODLE_SOURCES.restError}; ${MOODLE_SOURCES.invalidToken}`, async () => {
    const answer = await rest('local_depot_get_space', { courseid: site.courseId }, 'f'.repeat(32));
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({ exception: 'moodle_exception', errorcode: 'invalidtoken', message: 'Invalid token - token not found' });
  });

  test(`a function not in the token's service: ${MOODLE_SOURCES.functionNotAllowed}; ${MOODLE_SOURCES.accessException}`, async () => {
    site.service.functions.delete('local_depot_get_space');
    expect((await rest('local_depot_get_space', { courseid: site.courseId })).json()).toEqual({
      exception: 'webservice_access_exception',
      errorcode: 'accessexception',
      message: 'Access control exception',
    });
  });

  test(`parameters cleaning would change are refused, not altered: ${MOODLE_SOURCES.validateParam}; ${MOODLE_SOURCES.cleanFile}`, async () => {
    const answer = await rest('local_depot_get_file', { courseid: site.courseId, filepath: `/2026/12/01/${TASK}/`, filename: "it's.zip" });
    expect(answer.json()).toMatchObject({ exception: 'invalid_parameter_exception', errorcode: 'invalidparameter' });
    const unexpected = await rest('local_depot_get_space', { courseid: site.courseId, bogus: 1 });
    expect(unexpected.json()).toMatchObject({ errorcode: 'invalidparameter' });
  });

  test(`the REST protocol off: 403, empty: ${MOODLE_SOURCES.restDisabled}`, async () => {
    await site.moodle.close();
    site = await startFakeMoodle({ restProtocol: false });
    const answer = await rest('core_webservice_get_site_info');
    expect(answer.status).toBe(403);
    expect(answer.text).toBe('');
  });

  test(`core_webservice_get_site_info tells functions and upload/download: ${MOODLE_SOURCES.siteInfo}`, async () => {
    const info = (await rest('core_webservice_get_site_info')).json() as Record<string, unknown>;
    expect((info.functions as { name: string }[]).map((f) => f.name).sort()).toEqual(['core_webservice_get_site_info', ...LOCAL_DEPOT_FUNCTIONS].sort());
    expect(info).toMatchObject({ uploadfiles: 1, downloadfiles: 1, userid: site.user.id });
    expect(typeof info.usermaxuploadfilesize).toBe('number');
  });
});

describe("local_depot's functions (moodle/local_depot)", () => {
  test(`store files archive and manifest; a taken path answers exists and replaces nothing: ${MOODLE_SOURCES.pluginStore}; ${MOODLE_SOURCES.uniquePath}; ${MOODLE_SOURCES.creationRefused}`, async () => {
    const first = await storeFile('exam.zip', Buffer.from('first'));
    expect(first.json()).toMatchObject({
      status: 'created',
      manifest: manifestFor('exam.zip', Buffer.from('first')),
      file: { component: 'local_depot', filearea: 'archive', itemid: 0, filesize: 5 },
    });
    const second = await storeFile('exam.zip', Buffer.from('second'));
    expect(second.json()).toMatchObject({ status: 'exists', manifest: manifestFor('exam.zip', Buffer.from('first')) });
    expect(site.moodle.areaEntries(site.courseId)).toEqual([`0/2026/12/01/${TASK}/exam.zip`, `1/2026/12/01/${TASK}/exam.zip`]);
    expect(site.moodle.draftEntries()).toEqual([]);
  });

  test(`get, list, delete: ${MOODLE_SOURCES.pluginGet}; ${MOODLE_SOURCES.pluginList}; ${MOODLE_SOURCES.pluginDelete}`, async () => {
    await storeFile('a.zip', Buffer.from('a'));
    await storeFile('b.zip', Buffer.from('b'));
    const got = (await rest('local_depot_get_file', { courseid: site.courseId, filepath: `/2026/12/01/${TASK}/`, filename: 'a.zip' })).json();
    expect(got).toMatchObject({ found: true, manifest: manifestFor('a.zip', Buffer.from('a')), file: { filename: 'a.zip', filesize: 1 } });
    const page1 = (await rest('local_depot_list_files', { courseid: site.courseId, pathprefix: '/2026/', limit: 1 })).json() as {
      files: unknown[];
      next: number;
    };
    expect(page1.files).toHaveLength(1);
    expect(page1.next).toBeGreaterThan(0);
    const page2 = (await rest('local_depot_list_files', { courseid: site.courseId, pathprefix: '/2026/', after: page1.next, limit: 1 })).json() as {
      files: unknown[];
      next: number;
    };
    expect(page2.files).toHaveLength(1);
    expect((await rest('local_depot_delete_file', { courseid: site.courseId, filepath: `/2026/12/01/${TASK}/`, filename: 'a.zip' })).json()).toEqual({
      deleted: true,
    });
    expect((await rest('local_depot_delete_file', { courseid: site.courseId, filepath: `/2026/12/01/${TASK}/`, filename: 'a.zip' })).json()).toEqual({
      deleted: false,
    });
  });

  test(`the capability in the course: ${MOODLE_SOURCES.pluginAccess}`, async () => {
    site.user.capabilities.clear();
    expect((await rest('local_depot_get_space', { courseid: site.courseId })).json()).toMatchObject({
      exception: 'required_capability_exception',
      errorcode: 'nopermissions',
    });
    expect((await rest('local_depot_get_space', { courseid: 9999 })).json()).toMatchObject({ errorcode: 'invalidrecord' });
  });

  test(`space: ${MOODLE_SOURCES.pluginSpace}`, async () => {
    await storeFile('a.zip', Buffer.from('abc'));
    const used = (await rest('local_depot_get_space', { courseid: site.courseId })).json() as { usedbytes: number };
    expect(used.usedbytes).toBe(3 + Buffer.byteLength(manifestFor('a.zip', Buffer.from('abc'))));
  });
});

describe('webservice/pluginfile.php', () => {
  function download(fields: Record<string, string>): Promise<Answer> {
    return post('pluginfile.php', new URLSearchParams({ token: site.token, ...fields }));
  }

  test(`serves an archive as an attachment, the path from the file parameter of a POST: ${MOODLE_SOURCES.pluginfileServe}; ${MOODLE_SOURCES.postPrecedence}; ${MOODLE_SOURCES.fileArgument}; ${MOODLE_SOURCES.sendStoredFile}; ${MOODLE_SOURCES.pluginServe}`, async () => {
    const stored = (await storeFile('exam.zip', Buffer.from('the bytes'))).json() as { file: { contextid: number } };
    const answer = await download({ file: `/${stored.file.contextid}/local_depot/archive/0/2026/12/01/${TASK}/exam.zip` });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-disposition')).toBe('attachment; filename="exam.zip"');
    expect(answer.text).toBe('the bytes');
    // The manifest (item 1) is not served.
    const manifest = await download({ file: `/${stored.file.contextid}/local_depot/archive/1/2026/12/01/${TASK}/exam.zip` });
    expect(manifest.status).toBe(404);
  });

  test(`a missing file: 404 with the AJAX error JSON: ${MOODLE_SOURCES.fileNotFound}`, async () => {
    const context = site.moodle.courses.get(site.courseId)!;
    const answer = await download({ file: `/${context}/local_depot/archive/0/2026/12/01/${TASK}/none.zip` });
    expect(answer.status).toBe(404);
    expect(answer.json()).toMatchObject({ errorcode: 'filenotfound', stacktrace: null });
  });

  test(`a service without downloads: ${MOODLE_SOURCES.pluginfileDisabled}; bad token: ${MOODLE_SOURCES.pluginfileToken}`, async () => {
    site.service.downloadfiles = false;
    const context = site.moodle.courses.get(site.courseId)!;
    expect((await download({ file: `/${context}/local_depot/archive/0/x/y.zip` })).json()).toMatchObject({ errorcode: 'accessexception' });
    expect((await post('pluginfile.php', new URLSearchParams({ token: 'f'.repeat(32), file: '/1/a/b/0/c' }))).json()).toMatchObject({
      errorcode: 'invalidtoken',
    });
  });
});
