import type { Metadata } from '../contract';
import type { NamedTokenConfig, TokenOperation } from '../config/schema';

/** A configured `http.tokens` entry as the HTTP routes see it: its name (not secret), its secret and its scope. */
export interface HttpToken {
  name: string;
  secret: string;
  scope: TokenScope;
}

/**
 * What one token may do (CONTRACT §9). Each part that is absent allows
 * everything of its kind: a plain token string has no scope at all.
 */
export class TokenScope {
  readonly operations?: ReadonlySet<TokenOperation>;
  readonly drivers?: ReadonlySet<string>;
  /** Forced onto every store; required to match on every list, download, retrieve and delete. */
  readonly metadata: Readonly<Record<string, string>>;

  constructor(scope: NamedTokenConfig['scope'] = {}) {
    if (scope.operations) this.operations = new Set(scope.operations);
    if (scope.drivers) this.drivers = new Set(scope.drivers);
    this.metadata = { ...(scope.metadata ?? {}) };
  }

  /** Every operation, every driver, every archive. */
  get unlimited(): boolean {
    return !this.operations && !this.drivers && !this.restrictsArchives;
  }

  /** Whether the token sees only archives with its metadata. */
  get restrictsArchives(): boolean {
    return Object.keys(this.metadata).length > 0;
  }

  allowsOperation(operation: TokenOperation): boolean {
    return !this.operations || this.operations.has(operation);
  }

  allowsDriver(driver: string): boolean {
    return !this.drivers || this.drivers.has(driver);
  }

  /** An archive's metadata holds every pair of the scope (a value equal to it, or a list holding it, as `--meta` matches). */
  allowsArchive(metadata: Metadata): boolean {
    return Object.entries(this.metadata).every(([key, value]) => {
      const found = Object.hasOwn(metadata, key) ? metadata[key] : undefined;
      return found === value || (Array.isArray(found) && found.includes(value));
    });
  }

  /** The first pair of a store's own metadata that contradicts the scope's, if any (the store is refused rather than silently changed). */
  contradiction(metadata: Metadata | undefined): string | undefined {
    if (!metadata) return undefined;
    return Object.keys(this.metadata).find((key) => Object.hasOwn(metadata, key) && metadata[key] !== this.metadata[key]);
  }
}

/** `http.tokens` as configured: a plain string is `token-<index>` with every scope (CONTRACT §9). */
export function httpTokens(entries: ReadonlyArray<string | NamedTokenConfig>): HttpToken[] {
  return entries.map((entry, i) =>
    typeof entry === 'string'
      ? { name: `token-${i}`, secret: entry, scope: new TokenScope() }
      : { name: entry.name, secret: entry.token, scope: new TokenScope(entry.scope) },
  );
}
