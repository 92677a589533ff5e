import type { ArchivingManager, TaskHandle } from '../archiving/manager';
import { errorBody } from '../support/error-handler';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit-codes';
import { printError, printJson } from './output';

/**
 * Queues a task; when that fails (an invalid task is usage, exit 2; Redis
 * down, exit 1) says why, in JSON with --json, and resolves to undefined.
 */
export async function enqueueOrReport<R>(json: boolean, enqueue: () => Promise<TaskHandle<R>>): Promise<TaskHandle<R> | undefined> {
  try {
    return await enqueue();
  } catch (error) {
    const body = errorBody(error);
    if (json) printJson({ ok: false, error: body });
    else printError(`${body.code}: ${body.message}`);
    process.exitCode = body.code === 'invalid_task' ? EXIT_USAGE : EXIT_FAILED;
    return undefined;
  }
}

/** Says so when no worker would pick the task up, instead of waiting silently. */
export async function warnWithoutWorkers(manager: ArchivingManager, queueName: string): Promise<void> {
  if ((await manager.workerCount()) === 0) {
    printError(`no worker is connected to queue ${queueName}; the task waits until one runs (start one with: depot worker)`);
  }
}

/** Waits for a queued task and prints its result (or error); resolves to the exit code. */
export async function printOutcome<R>(handle: TaskHandle<R>, json: boolean, describe: (result: R) => string): Promise<number> {
  try {
    const result = await handle.result();
    if (json) printJson({ ok: true, taskId: handle.taskId, jobId: handle.jobId, result });
    else process.stdout.write(describe(result) + '\n');
    return EXIT_OK;
  } catch (error) {
    const body = errorBody(error);
    if (json) printJson({ ok: false, taskId: handle.taskId, jobId: handle.jobId, error: body });
    else printError(`${body.code}: ${body.message}`);
    return EXIT_FAILED;
  }
}
