/**
 * The contract's rule for archive names and taskIds. Returns the reason a value
 * is refused, or null when it is fine.
 */
export const MAX_NAME_BYTES = 255;

// C0 controls, DEL and C1 controls: invisible in listings and unsafe on most backends.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * The ending of the manifests that filesystem-like drivers keep beside each
 * archive (`<name>.depot.json`, `.<hash>.depot.json`): no archive may be named
 * like one, or storing it could plant a manifest for another archive of its task.
 */
export const MANIFEST_SUFFIX = '.depot.json';

export function archiveNameProblem(name: string): string | null {
  if (name.length === 0) return 'must not be empty';
  if (name === '.' || name === '..') return `must not be '${name}'`;
  if (name.includes('/')) return "must not contain '/'";
  if (name.includes('\\')) return "must not contain '\\'";
  if (name.includes('\u0000')) return 'must not contain NUL';
  if (CONTROL_CHARS.test(name)) return 'must not contain control characters';
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return `must be at most ${MAX_NAME_BYTES} bytes of UTF-8`;
  if (!name.isWellFormed()) return 'must be valid Unicode (lone surrogate)';
  if (endsLikeManifest(name)) return `must not end in '${MANIFEST_SUFFIX}' (depot's manifests are named so)`;
  return null;
}

/**
 * Compared as a case-insensitive backend would (FTP servers on Windows, a
 * casefolded directory): letters folded (NFKC first, so that e.g. U+017F 'ſ'
 * counts as 's'), and trailing dots and spaces dropped, as Windows drops them.
 */
function endsLikeManifest(name: string): boolean {
  return name
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[. ]+$/, '')
    .endsWith(MANIFEST_SUFFIX);
}

const TASK_ID = /^[A-Za-z0-9._-]{1,128}$/;

export function taskIdProblem(taskId: string): string | null {
  if (!TASK_ID.test(taskId)) return 'must be 1-128 characters of A-Z a-z 0-9 . _ -';
  if (taskId === '.' || taskId === '..') return `must not be '${taskId}'`;
  return null;
}
