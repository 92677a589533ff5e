import type { Catalog } from '../catalog/catalog';
import { openCatalog } from '../catalog/open';
import { errorBody } from '../support/error-handler';
import type { CommandContext } from './context';
import { EXIT_FAILED, EXIT_USAGE } from './exit-codes';
import { printError, printJson } from './output';

/**
 * Runs a catalog command: opens the catalog (`read` never creates one:
 * `list`, `audit`), runs `work`, closes everything. A failure — no catalog
 * there, one that cannot be reached, an invalid cursor — is printed as the
 * contract's error (in JSON with --json) and sets the exit code: 2 for what
 * the command line got wrong (`invalid_task`), else 1.
 */
export async function withCatalog(ctx: CommandContext, mode: 'read' | 'write', work: (catalog: Catalog) => Promise<number>): Promise<void> {
  let catalog: Catalog | undefined;
  try {
    catalog = await openCatalog(ctx.config.catalog, mode);
    process.exitCode = await work(catalog);
  } catch (error) {
    const body = errorBody(error);
    if (ctx.json) printJson({ ok: false, error: body });
    else printError(`${body.code}: ${body.message}`);
    process.exitCode = body.code === 'invalid_task' ? EXIT_USAGE : EXIT_FAILED;
  } finally {
    await catalog?.close();
    await ctx.storage.close();
  }
}
