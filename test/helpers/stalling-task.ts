import { eventually, exitWithin, HttpSource, spawnWorkerProcess, startHttpSource } from './queue-harness';

/**
 * A URL source whose every download stalls after its first bytes, so that
 * each run of a task reading it holds until its worker is killed.
 */
export function startStallingSource(): Promise<HttpSource> {
  return startHttpSource((_req, res) => {
    res.writeHead(200, { 'content-length': String(1024 * 1024) });
    res.write(Buffer.alloc(1024));
  });
}

/**
 * Runs the queued task `runs` times, each in a fresh worker process killed
 * with SIGKILL once that run has reached `source`. The workers are named
 * unlike `<host>:<pid>` (`stall-<run>`), so none hands back its predecessor's
 * task: BullMQ's stalled check alone recovers it, and counts a stall each time.
 */
export async function killWorkerEveryRun(configFile: string, source: HttpSource, runs: number): Promise<void> {
  for (let run = 1; run <= runs; run++) {
    const worker = spawnWorkerProcess(configFile, { DEPOT_WORKER_NAME: `stall-${run}` });
    await eventually(() => (source.requests >= run ? true : undefined), 60_000, `run ${run} of the task`).catch((error: Error) => {
      throw new Error(`${error.message}\n${worker.output()}`);
    });
    worker.child.kill('SIGKILL');
    await exitWithin(worker, 10_000);
  }
}
