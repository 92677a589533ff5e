import type { DriverState } from './driver-health';
import { DURATION_BUCKETS, TaskCounters } from './task-counters';

export interface MetricsSnapshot {
  queue: string;
  counts: Record<string, number>;
  workers: number;
  webhooks: Record<string, number>;
  drivers: Array<{ driver: string } & DriverState>;
  tasks: TaskCounters;
}

/** A label value as the Prometheus text format wants it. */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

class Exposition {
  private readonly lines: string[] = [];

  metric(name: string, type: 'gauge' | 'counter' | 'histogram', help: string, samples: Array<[Record<string, string>, number]>): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) this.sample(name, labels, value);
  }

  sample(name: string, labels: Record<string, string>, value: number): void {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`);
    this.lines.push(`${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${Number.isFinite(value) ? value : 'NaN'}`);
  }

  header(name: string, type: string, help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

/** CONTRACT §6 /metrics in the Prometheus text format (version 0.0.4). */
export function renderMetrics(s: MetricsSnapshot): string {
  const out = new Exposition();
  out.metric('depot_queue_jobs', 'gauge', 'Tasks on the queue by state.', Object.entries(s.counts).map(([state, n]) => [{ queue: s.queue, state }, n]));
  out.metric('depot_workers', 'gauge', 'Storage workers connected to the queue.', [[{ queue: s.queue }, s.workers]]);
  out.metric('depot_webhook_deliveries', 'gauge', 'Webhook deliveries on depot-callbacks by state.', Object.entries(s.webhooks).map(([state, n]) => [{ state }, n]));

  const checked = s.drivers.filter((d) => d.last);
  out.metric('depot_driver_up', 'gauge', "1 when the driver's last connection check passed.", checked.map((d) => [{ driver: d.driver }, d.last?.ok ? 1 : 0]));
  out.metric(
    'depot_driver_check_timestamp_seconds',
    'gauge',
    'When the last connection check finished.',
    checked.map((d) => [{ driver: d.driver }, Date.parse(d.last?.checkedAt ?? '') / 1000]),
  );
  for (const [name, field, help] of [
    ['depot_driver_total_bytes', 'totalBytes', 'Capacity the backend reports (or quotaBytes).'],
    ['depot_driver_free_bytes', 'freeBytes', 'Free space the backend reports.'],
    ['depot_driver_used_bytes', 'usedBytes', 'Used space the backend reports.'],
  ] as const) {
    const samples = checked.filter((d) => typeof d.last?.space?.[field] === 'number').map((d): [Record<string, string>, number] => [{ driver: d.driver }, d.last?.space?.[field] ?? 0]);
    out.metric(name, 'gauge', help, samples);
  }

  const finished = [...s.tasks.finished.entries()].map(([key, n]): [Record<string, string>, number] => {
    const [operation, outcome] = key.split('\u0000');
    return [{ operation, outcome }, n];
  });
  out.metric('depot_tasks_total', 'counter', 'Tasks finished since this process started, by operation and outcome.', finished);
  out.header('depot_task_duration_seconds', 'histogram', 'From the start of the last attempt to the end, by operation.');
  for (const [operation, h] of s.tasks.durations) {
    DURATION_BUCKETS.forEach((bound, i) => out.sample('depot_task_duration_seconds_bucket', { operation, le: String(bound) }, h.buckets[i]));
    out.sample('depot_task_duration_seconds_bucket', { operation, le: '+Inf' }, h.count);
    out.sample('depot_task_duration_seconds_sum', { operation }, h.sum);
    out.sample('depot_task_duration_seconds_count', { operation }, h.count);
  }
  out.metric('depot_bytes_stored_total', 'counter', 'Bytes of archives stored, by driver.', [...s.tasks.bytesStored].map(([driver, n]) => [{ driver }, n]));
  out.metric('depot_bytes_retrieved_total', 'counter', 'Bytes of archives retrieved, by driver.', [...s.tasks.bytesRetrieved].map(([driver, n]) => [{ driver }, n]));
  out.metric('depot_failovers_total', 'counter', 'Stores that ended on a fallback driver.', [[{}, s.tasks.failovers]]);
  out.metric('depot_store_retries_total', 'counter', 'Extra attempts stores needed on their drivers.', [[{}, s.tasks.retries]]);
  return out.text();
}
