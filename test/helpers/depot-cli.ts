import { spawn } from 'node:child_process';
import { depotCommand, PROJECT_ROOT } from './queue-harness';

/** A finished `depot ARGS`: exit code and what it wrote. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `depot ARGS` as its own process (bin/depot on the source), with DEPOT_CONFIG and JSON logs; cwd the project root. */
export function runDepot(args: string[], configFile: string | undefined, extraEnv: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_FORMAT: 'json' };
  for (const name of ['DEPOT_CONFIG', 'DEPOT_DATA', 'LOG_LEVEL', 'REDIS_URL', 'NODE_OPTIONS']) delete env[name];
  if (configFile !== undefined) env.DEPOT_CONFIG = configFile;
  return new Promise((resolve, reject) => {
    const run = depotCommand(args, { ...env, ...extraEnv });
    const child = spawn(run.command, run.args, { cwd: PROJECT_ROOT, env: run.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** stdout as the one JSON document it must be. */
export function jsonOf<T>(run: CliRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`not one JSON document on stdout (exit ${run.code}):\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}
