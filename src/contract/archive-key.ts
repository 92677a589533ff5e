import { archiveNameProblem, taskIdProblem } from './archive-name';
import { DepotError } from './depot-error';

/**
 * depot's key scheme, `YYYY/MM/DD/<taskId>/<name>`: depot chooses the key, so two
 * stores of one name never meet, and a retried task lands on the same key.
 */
export function archiveKey(day: Date, taskId: string, name: string): string {
  const yyyy = String(day.getUTCFullYear()).padStart(4, '0');
  const mm = String(day.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(day.getUTCDate()).padStart(2, '0');
  return `${yyyy}/${mm}/${dd}/${taskId}/${name}`;
}

/** `YYYY-MM-DD` or `YYYY/MM/DD` names a day that exists (no 30 February). */
export function isCalendarDate(text: string): boolean {
  const match = /^(\d{4})[-/](\d{2})[-/](\d{2})$/.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

export interface KeyParts {
  year: string;
  month: string;
  day: string;
  taskId: string;
  name: string;
}

/**
 * A key of the scheme with its parts, as parsing (`toArchiveKey`) makes it: what drivers
 * are given, so that none splits a key again. Every driver path is derived
 * from these parts, which is what keeps paths inside a root.
 */
export interface ArchiveKey extends Readonly<KeyParts> {
  /** The key itself, `YYYY/MM/DD/<taskId>/<name>`. */
  readonly text: string;
}

export type KeyParseResult = { ok: true; key: ArchiveKey } | { ok: false; problem: string };

/** Splits a key of the scheme, or says why it is not one. */
export function parseArchiveKey(text: string): KeyParseResult {
  const problem = (why: string): KeyParseResult => ({ ok: false, problem: why });
  const parts = text.split('/');
  if (parts.length !== 5) return problem('must have the form YYYY/MM/DD/<taskId>/<name>');
  const [year, month, day, taskId, name] = parts;
  if (!/^\d{4}$/.test(year) || !/^\d{2}$/.test(month) || !/^\d{2}$/.test(day) || !isCalendarDate(`${year}/${month}/${day}`)) {
    return problem('must start with a date YYYY/MM/DD');
  }
  const taskProblem = taskIdProblem(taskId);
  if (taskProblem) return problem(`taskId segment ${taskProblem}`);
  const nameProblem = archiveNameProblem(name);
  if (nameProblem) return problem(`name segment ${nameProblem}`);
  return { ok: true, key: { text, year, month, day, taskId, name } };
}

/** A key of the scheme, parsed; `invalid_task` naming `field` when it is not one. */
export function toArchiveKey(text: string, field = 'ref.key'): ArchiveKey {
  const parsed = parseArchiveKey(text);
  if (!parsed.ok) throw new DepotError('invalid_task', parsed.problem, { field });
  return parsed.key;
}
