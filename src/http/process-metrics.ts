import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Exposition } from './exposition';

/**
 * The process figures Prometheus users expect of any target, under the names
 * of the Go client's process collector and prom-client's Node.js defaults, so
 * stock dashboards and alerts work. Read from Node itself and, on Linux,
 * /proc (omitted where /proc is not there).
 */

// Sampled from when `depot serve` loads this module; its timer is unref'd and keeps no process alive.
const RESOLUTION_MS = 10;
const loopDelay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
loopDelay.enable();

export function writeProcessMetrics(out: Exposition): void {
  const cpu = process.cpuUsage();
  out.family('process_cpu_user_seconds_total', 'counter', 'User CPU time spent in seconds.', [[{}, cpu.user / 1e6]]);
  out.family('process_cpu_system_seconds_total', 'counter', 'System CPU time spent in seconds.', [[{}, cpu.system / 1e6]]);
  out.family('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', [[{}, (cpu.user + cpu.system) / 1e6]]);
  out.family('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', [
    [{}, Math.round(performance.timeOrigin) / 1000],
  ]);

  const memory = process.memoryUsage();
  out.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [[{}, memory.rss]]);
  const virtual = procStatusKiB('VmSize');
  if (virtual !== undefined) out.family('process_virtual_memory_bytes', 'gauge', 'Virtual memory size in bytes.', [[{}, virtual * 1024]]);
  const open = openFds();
  if (open !== undefined) out.family('process_open_fds', 'gauge', 'Number of open file descriptors.', [[{}, open]]);
  const max = maxFds();
  if (max !== undefined) out.family('process_max_fds', 'gauge', 'Maximum number of open file descriptors.', [[{}, max]]);

  out.family('nodejs_heap_size_total_bytes', 'gauge', 'Process heap size from Node.js in bytes.', [[{}, memory.heapTotal]]);
  out.family('nodejs_heap_size_used_bytes', 'gauge', 'Process heap size used from Node.js in bytes.', [[{}, memory.heapUsed]]);
  out.family('nodejs_external_memory_bytes', 'gauge', 'Node.js external memory size in bytes.', [[{}, memory.external]]);
  writeLoopDelay(out);
  const [major, minor, patch] = process.versions.node.split('.');
  out.family('nodejs_version_info', 'gauge', 'Node.js version info.', [[{ version: process.version, major, minor, patch }, 1]]);
}

/** Event-loop delay since the previous scrape (as prom-client reports it), then the sampling starts afresh. */
function writeLoopDelay(out: Exposition): void {
  const sampled = loopDelay.count > 0;
  // Node records the time between its timer's ticks, the sampling interval included: the lag is what exceeds it.
  const lag = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS) / 1e3;
  const figures: Array<[string, string, number]> = [
    ['nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay.', lag(loopDelay.min)],
    ['nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.', lag(loopDelay.max)],
    ['nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.', lag(loopDelay.mean)],
    ['nodejs_eventloop_lag_stddev_seconds', 'The standard deviation of the recorded event loop delays.', loopDelay.stddev / 1e9],
  ];
  // Before its first sample the histogram holds placeholders (min 2^63), not delays.
  for (const [name, help, seconds] of figures) out.family(name, 'gauge', help, sampled ? [[{}, seconds]] : []);
  loopDelay.reset();
}

/** `/proc/self/fd` lists the descriptor readdir opened on it too. */
function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

/** The soft limit on open files (`Max open files` in /proc/self/limits); none when unlimited. */
function maxFds(): number | undefined {
  const line = readProc('/proc/self/limits')
    ?.split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  return soft && /^\d+$/.test(soft) ? Number(soft) : undefined;
}

function procStatusKiB(field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readProc('/proc/self/status') ?? '');
  return match ? Number(match[1]) : undefined;
}

function readProc(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
