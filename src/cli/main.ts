import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/config-error';
import { registerCheck } from './check';
import { registerDrivers } from './drivers';
import { EXIT_FAILED, EXIT_USAGE, UsageError } from './exit-codes';
import { printError } from './output';
import { redactor } from '../support/redaction';
import { packageVersion } from '../support/package-info';
import { registerSpace } from './space';
import { registerStatus } from './status';
import { registerStore } from './store';
import { registerRetrieve } from './retrieve';
import { registerDelete } from './delete';
import { registerWorker } from './worker';
import { registerServe } from './serve';
import { registerReindex } from './reindex';
import { registerList } from './list';
import { registerAudit } from './audit';
import { registerErase } from './erase';
import { registerVerify } from './verify';

export function buildProgram(): Command {
  const program = new Command('depot')
    .description('stores finished archives write-once on storage backends')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride();
  registerWorker(program);
  registerServe(program);
  registerStore(program);
  registerRetrieve(program);
  registerDelete(program);
  registerCheck(program);
  registerSpace(program);
  registerStatus(program);
  registerDrivers(program);
  registerList(program);
  registerAudit(program);
  registerErase(program);
  registerVerify(program);
  registerReindex(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here too, with exit code 0.
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (error instanceof ConfigError) {
      printError(`configuration error in ${error.source}:`);
      for (const issue of error.issues) process.stderr.write(redactor.redact(`  ${issue.field}: ${issue.message}`) + '\n');
      return EXIT_USAGE;
    }
    if (error instanceof UsageError) {
      printError(error.message);
      return EXIT_USAGE;
    }
    printError(error instanceof Error ? error.message : String(error));
    return EXIT_FAILED;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
