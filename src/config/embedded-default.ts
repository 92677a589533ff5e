import path from 'node:path';

/**
 * The configuration when DEPOT_CONFIG names no file: one filesystem driver
 * `local` at $DEPOT_DATA or ./data/archive, which is also the default driver.
 */
export function embeddedDefault(env: NodeJS.ProcessEnv, cwd: string): Record<string, unknown> {
  const root = env.DEPOT_DATA ? path.resolve(cwd, env.DEPOT_DATA) : path.resolve(cwd, 'data', 'archive');
  return {
    defaultDriver: 'local',
    drivers: { local: { type: 'filesystem', root } },
  };
}
