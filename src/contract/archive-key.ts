import { archiveNameProblem, taskIdProblem } from './archive-name';

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
 * Splits a key of the scheme, or says why it is not one. Every driver path is
 * derived from a key that passed here, which is what keeps paths inside a root.
 */
export function parseArchiveKey(key: string): KeyParts | string {
  const parts = key.split('/');
  if (parts.length !== 5) return 'must have the form YYYY/MM/DD/<taskId>/<name>';
  const [year, month, day, taskId, name] = parts;
  if (!/^\d{4}$/.test(year) || !/^\d{2}$/.test(month) || !/^\d{2}$/.test(day) || !isCalendarDate(`${year}/${month}/${day}`)) {
    return 'must start with a date YYYY/MM/DD';
  }
  const taskProblem = taskIdProblem(taskId);
  if (taskProblem) return `taskId segment ${taskProblem}`;
  const nameProblem = archiveNameProblem(name);
  if (nameProblem) return `name segment ${nameProblem}`;
  return { year, month, day, taskId, name };
}
