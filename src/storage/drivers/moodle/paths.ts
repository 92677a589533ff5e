import type { ArchiveKey } from '../../../contract';

/**
 * Where an archive lies in the course's file area: path `/YYYY/MM/DD/<taskId>/`, and its
 * name as a Moodle file name. Moodle strips & < > " ` | ' : from file names (clean_param
 * PARAM_FILE) and refuses parameters cleaning would change, while depot's names may hold
 * them: those and the escape character % become %XX, so two names never share a file
 * name. local_depot does the same (classes/local/archive_name.php) and checks that each
 * manifest names the path it is filed at; both follow moodle/local_depot/tests/fixtures/filenames.json.
 */
export type MoodlePath = { filepath: string; filename: string };

/** Longest file path and file name Moodle's files table holds, in characters. */
export const MAX_MOODLE_NAME = 255;

export function moodleFilename(name: string): string {
  return name.replace(/[%&<>"`|':]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export function moodlePath(key: ArchiveKey): MoodlePath {
  return { filepath: `/${key.year}/${key.month}/${key.day}/${key.taskId}/`, filename: moodleFilename(key.name) };
}

/** Characters in a name, as Moodle's database counts them (code points). */
export function characters(text: string): number {
  return [...text].length;
}

/**
 * The file-path prefix that holds every key starting with `prefix`: its directory
 * part (`2026/11/27/<taskId>/ex` → `/2026/11/27/<taskId>/`), or null when no key
 * can start so (a character Moodle would strip from a path). The caller still
 * compares each key with the prefix.
 */
export function pathPrefix(prefix: string): string | null {
  const segments = prefix.split('/');
  const dirs = segments.length >= 5 ? `${segments.slice(0, 4).join('/')}/` : prefix;
  // Keys' directories hold digits and taskId characters only (A-Z a-z 0-9 . _ -), never '.' or '..' or an empty segment.
  if (!/^[A-Za-z0-9._/-]*$/.test(dirs)) return null;
  const parts = dirs.split('/');
  if (parts.some((part, i) => part === '.' || part === '..' || (part === '' && i < parts.length - 1))) return null;
  return `/${dirs}`;
}
