/**
 * Every configured secret value, masked as `***` wherever text leaves the process:
 * log lines, error messages, results, command output.
 */
export class Redactor {
  private patterns: string[] = [];

  add(secret: string | undefined): void {
    if (!secret) return;
    // As written, inside a URL, and inside a JSON string (quotes and backslashes escaped).
    for (const form of new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)])) {
      if (!this.patterns.includes(form)) this.patterns.push(form);
    }
    // Longest first, so a secret containing another is masked whole.
    this.patterns.sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const pattern of this.patterns) {
      if (out.includes(pattern)) out = out.split(pattern).join('***');
    }
    return out;
  }

  /** Deep copy with every string redacted; for results and JSON output. */
  redactValue<T>(value: T): T {
    if (this.patterns.length === 0) return value;
    return JSON.parse(this.redact(JSON.stringify(value))) as T;
  }

  get size(): number {
    return this.patterns.length;
  }
}

/** The process's one set of secrets: secrets are a property of the process's config, not of a module. */
export const redactor = new Redactor();
