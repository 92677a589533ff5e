import { redactor } from '../support/redaction';

/** One JSON document on stdout, secrets masked in its strings before it is serialized (a secret like `2121` must not rewrite the number 2121). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(redactor.redactValue(value), null, 2) + '\n');
}

export function printLine(text: string): void {
  process.stdout.write(redactor.redact(text) + '\n');
}

export function printError(text: string): void {
  process.stderr.write(`depot: ${redactor.redact(text)}\n`);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return 'unknown';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${UNITS[unit]}`;
}
