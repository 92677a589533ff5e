/** The metric types of the Prometheus text format that /metrics uses. */
export type MetricType = 'counter' | 'gauge' | 'histogram';

export type Labels = Record<string, string>;

/**
 * A page of the Prometheus text format (version 0.0.4). Every family is
 * opened with its HELP and TYPE lines before its samples, so none can be
 * written without them.
 */
export class Exposition {
  private readonly lines: string[] = [];

  /** HELP and TYPE of one family, then its samples (histograms add theirs with `sample`). */
  family(name: string, type: MetricType, help: string, samples: Array<[Labels, number]> = []): void {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) this.sample(name, labels, value);
  }

  sample(name: string, labels: Labels, value: number): void {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${labelValue(v)}"`);
    this.lines.push(`${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${number(value)}`);
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

/** A label value as the text format wants it. */
function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function number(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}
