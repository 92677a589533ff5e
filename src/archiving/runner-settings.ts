import type { Config } from '../config/load';
import type { RunnerSettings } from './task-runner';

/** The parts of the config the task runner uses, read once at start rather than per job. */
export function runnerSettings(config: Config): RunnerSettings {
  return {
    defaultDriver: config.defaultDriver,
    failover: config.failover,
    attempts: config.queue.attempts,
    backoffMs: config.queue.backoffMs,
    allowedPaths: config.paths.allowed,
    inlineBytes: config.limits.inlineBytes,
    fixity: config.fixity,
    sources: {
      allowedPaths: config.paths.allowed,
      spoolDir: config.http.spoolDir,
      allowedHosts: config.sources.allowedHosts,
      inlineBytes: config.limits.inlineBytes,
      timeoutMs: config.sources.timeoutMs,
      maxDurationMs: config.sources.maxDurationMs,
      maxBytes: config.sources.maxBytes,
    },
  };
}
