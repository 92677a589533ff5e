import type { BreakerState } from '../archiving/breakers';
import type { CatalogStats } from '../catalog/catalog';
import { CALLBACK_QUEUE } from '../queue/names';
import { writeCatalog } from './catalog-metrics';
import type { DriverState } from './driver-health';
import { Exposition, Labels } from './exposition';
import { writeProcessMetrics } from './process-metrics';
import { DURATION_BUCKETS, OPERATION_LABELS, OUTCOMES, TaskCounters } from './task-counters';

export interface MetricsSnapshot {
  queue: string;
  /** The task queue's counts by state, depot's own maintenance jobs left out (queue-depth.ts). */
  counts: Record<string, number>;
  workers: number;
  webhooks: Record<string, number>;
  drivers: Array<{ driver: string } & DriverState>;
  tasks: TaskCounters;
  /** The catalog's figures (CONTRACT §8); undefined when it did not answer. */
  catalog?: CatalogStats;
  /** Each driver's circuit breaker (CONTRACT §10); undefined when Redis did not answer. */
  breakers?: Array<{ driver: string; state: BreakerState }>;
}

/**
 * CONTRACT §6 /metrics in the Prometheus text format (version 0.0.4), named
 * by Prometheus' conventions: base units, `_total` only on counters and after
 * the unit, a HELP and TYPE for every family. Names and meanings are listed in
 * docs/CONTRACT.md ("depot serve"); renaming one breaks dashboards.
 */
export function renderMetrics(s: MetricsSnapshot): string {
  const out = new Exposition();
  out.family(
    'depot_queue_jobs',
    'gauge',
    "Tasks on the queue by state (depot's own scheduled expiry runs left out of the pending states).",
    perState(s.counts, { queue: s.queue }),
  );
  out.family('depot_workers', 'gauge', 'Storage workers connected to the queue.', [[{ queue: s.queue }, s.workers]]);
  out.family('depot_webhook_deliveries', 'gauge', 'Webhook deliveries on their queue by state.', perState(s.webhooks, { queue: CALLBACK_QUEUE }));
  writeDrivers(out, s.drivers);
  out.family(
    'depot_driver_breaker_open',
    'gauge',
    "1 while the driver's circuit breaker is open or half-open (stores go to its failover drivers or wait), 0 when closed.",
    (s.breakers ?? []).map(({ driver, state }) => [{ driver }, state === 'closed' ? 0 : 1]),
  );
  writeTasks(out, s);
  writeCatalog(
    out,
    s.drivers.map((d) => d.driver),
    s.catalog,
  );
  writeProcessMetrics(out);
  return out.text();
}

function perState(counts: Record<string, number>, labels: Labels): Array<[Labels, number]> {
  return Object.entries(counts).map(([state, n]) => [{ ...labels, state }, n]);
}

function writeDrivers(out: Exposition, drivers: MetricsSnapshot['drivers']): void {
  const checked = drivers.filter((d) => d.last);
  out.family(
    'depot_driver_up',
    'gauge',
    "1 when the driver's last connection check passed.",
    checked.map((d) => [{ driver: d.driver }, d.last?.ok ? 1 : 0]),
  );
  out.family(
    'depot_driver_check_timestamp_seconds',
    'gauge',
    'When the last connection check finished, in seconds since the epoch.',
    checked.map((d) => [{ driver: d.driver }, Date.parse(d.last?.checkedAt ?? '') / 1000]),
  );
  for (const [name, field, help] of [
    ['depot_driver_capacity_bytes', 'totalBytes', 'Capacity the backend reports (or its quotaBytes).'],
    ['depot_driver_free_bytes', 'freeBytes', 'Free space the backend reports.'],
    ['depot_driver_used_bytes', 'usedBytes', 'Used space the backend reports.'],
  ] as const) {
    const samples = checked
      .filter((d) => typeof d.last?.space?.[field] === 'number')
      .map((d): [Labels, number] => [{ driver: d.driver }, d.last?.space?.[field] ?? 0]);
    out.family(name, 'gauge', help, samples);
  }
}

function writeTasks(out: Exposition, s: MetricsSnapshot): void {
  const { tasks } = s;
  out.family(
    'depot_tasks_total',
    'counter',
    'Tasks finished since this process started, by operation (other: any job name depot does not know) and outcome.',
    OPERATION_LABELS.flatMap((operation) => OUTCOMES.map((outcome): [Labels, number] => [{ operation, outcome }, tasks.finishedCount(operation, outcome)])),
  );
  out.family('depot_task_duration_seconds', 'histogram', 'From the start of the last attempt to the end, by operation.');
  for (const [operation, h] of tasks.durations) {
    DURATION_BUCKETS.forEach((bound, i) => out.sample('depot_task_duration_seconds_bucket', { operation, le: String(bound) }, h.buckets[i]));
    out.sample('depot_task_duration_seconds_bucket', { operation, le: '+Inf' }, h.count);
    out.sample('depot_task_duration_seconds_sum', { operation }, h.sum);
    out.sample('depot_task_duration_seconds_count', { operation }, h.count);
  }
  // Every configured driver from 0; drivers only the workers know are added as they appear.
  const perDriver = (counted: Map<string, number>): Array<[Labels, number]> =>
    [...new Set([...s.drivers.map((d) => d.driver), ...counted.keys()])].map((driver) => [{ driver }, counted.get(driver) ?? 0]);
  out.family('depot_stored_bytes_total', 'counter', 'Bytes of archives stored, by driver.', perDriver(tasks.bytesStored));
  out.family('depot_retrieved_bytes_total', 'counter', 'Bytes of archives retrieved, by driver.', perDriver(tasks.bytesRetrieved));
  out.family(
    'depot_failovers_total',
    'counter',
    'Failover hops in stores that completed: from the driver given up to the next one tried.',
    [...tasks.failovers.values()].map(({ from, to, count }) => [{ from, to }, count]),
  );
  out.family('depot_store_retries_total', 'counter', 'Extra attempts stores needed on their drivers.', [[{}, tasks.retries]]);
}
