import type { FieldIssue } from '../contract';

/** A configuration that cannot be used: each issue names its field. Commands exit 2 on it. */
export class ConfigError extends Error {
  constructor(
    readonly issues: FieldIssue[],
    readonly source: string,
  ) {
    super(`configuration ${source}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}
