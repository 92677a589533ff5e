import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../helpers/queue-harness';

/** The example plugin (examples/depot-driver-example), as CI installs and builds it from its folder. */
export const EXAMPLE_DIR = path.join(PROJECT_ROOT, 'examples', 'depot-driver-example');
const run = promisify(execFile);

/**
 * Installs the example as `npm install` would, offline: its one dependency of
 * its own is archive-depot (`file:../..`), which npm links; its tools
 * (typescript, jest) are the project's, found up the folder tree. Then builds
 * it when its source is newer than its build. archive-depot must be built
 * (`npm ci` does it): the plugin imports the package, as any plugin does.
 */
export async function installExample(): Promise<void> {
  if (!existsSync(path.join(PROJECT_ROOT, 'dist', 'src', 'driver-api.js'))) {
    throw new Error('archive-depot is not built (dist/src/driver-api.js is missing): run `npm run build` first');
  }
  const link = path.join(EXAMPLE_DIR, 'node_modules', 'archive-depot');
  await mkdir(path.dirname(link), { recursive: true });
  const target = await readlink(link).catch(() => undefined);
  if (target === undefined) await symlink(path.relative(path.dirname(link), PROJECT_ROOT), link, 'dir');
  else if (path.resolve(path.dirname(link), target) !== PROJECT_ROOT) throw new Error(`${link} links to ${target}, not to this project`);
  if (await builtIsCurrent()) return;
  await run(process.execPath, [path.join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: EXAMPLE_DIR });
}

async function builtIsCurrent(): Promise<boolean> {
  const built = path.join(EXAMPLE_DIR, 'dist', 'index.js');
  if (!existsSync(built)) return false;
  const sources = (await readdir(path.join(EXAMPLE_DIR, 'src'))).map((name) => path.join(EXAMPLE_DIR, 'src', name));
  const newest = Math.max(
    ...[...sources, path.join(EXAMPLE_DIR, 'tsconfig.json'), path.join(EXAMPLE_DIR, 'tsconfig.build.json')].map((file) => statSync(file).mtimeMs),
  );
  return statSync(built).mtimeMs >= newest;
}
