/**
 * Every configured secret value, masked as `***` wherever text leaves the process:
 * log lines, error messages, results, command output.
 *
 * Secrets are masked in strings — a message, a string value — never in
 * serialized text: a secret that reads like a number (`4096`) would otherwise
 * rewrite every such number in a JSON document, and the document would no
 * longer parse. Serialize after redacting, not before.
 */
export class Redactor {
  private patterns: string[] = [];

  add(secret: string | undefined): void {
    if (!secret) return;
    // As written, inside a URL, and inside a JSON string (quotes and backslashes escaped): a message may quote any of them.
    for (const form of new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)])) {
      if (!this.patterns.includes(form)) this.patterns.push(form);
    }
    // Longest first, so a secret containing another is masked whole.
    this.patterns.sort((a, b) => b.length - a.length);
  }

  /** One piece of text, such as a message or a string value; not a serialized document (see above). */
  redact(text: string): string {
    let out = text;
    for (const pattern of this.patterns) {
      if (out.includes(pattern)) out = out.split(pattern).join('***');
    }
    return out;
  }

  /**
   * A deep copy with every string — keys included — redacted, as JSON.stringify
   * would see the value (`toJSON`, own enumerable properties); numbers, booleans
   * and null are kept as they are. For results, events and JSON output.
   */
  redactValue<T>(value: T): T {
    if (this.patterns.length === 0) return value;
    return this.redactNode(value, new Set()) as T;
  }

  private redactNode(value: unknown, ancestors: Set<object>): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (typeof value !== 'object' || value === null) return value;
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      const shown: unknown = toJSON.call(value);
      if (shown !== value) return this.redactNode(shown, ancestors);
    }
    if (ancestors.has(value)) return '[Circular]';
    ancestors.add(value);
    try {
      if (Array.isArray(value)) return value.map((item) => this.redactNode(item, ancestors));
      const copy: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        // Defined, not assigned: a key `__proto__` (JSON.parse makes such keys) stays a key.
        Object.defineProperty(copy, this.redact(key), { value: this.redactNode(item, ancestors), enumerable: true, writable: true, configurable: true });
      }
      return copy;
    } finally {
      ancestors.delete(value);
    }
  }

  get size(): number {
    return this.patterns.length;
  }
}

/** The process's one set of secrets: secrets are a property of the process's config, not of a module. */
export const redactor = new Redactor();
