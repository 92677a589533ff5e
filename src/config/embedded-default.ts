import path from 'node:path';
import { embeddedCatalogUrl } from '../catalog/location';

/**
 * The configuration when DEPOT_CONFIG names no file: one filesystem driver
 * `local` at $DEPOT_DATA or ./data/archive, which is also the default driver,
 * and the catalog beside it (`./data/catalog.sqlite`, or `catalog.sqlite` in
 * $DEPOT_DATA's parent: CONTRACT §8), and the upload spool beside it too
 * (`./data/spool`: CONTRACT §9).
 */
export function embeddedDefault(env: NodeJS.ProcessEnv, cwd: string): Record<string, unknown> {
  const root = env.DEPOT_DATA ? path.resolve(cwd, env.DEPOT_DATA) : path.resolve(cwd, 'data', 'archive');
  return {
    defaultDriver: 'local',
    drivers: { local: { type: 'filesystem', root } },
    catalog: { url: embeddedCatalogUrl(root) },
    // Beside the archive root, as the catalog (CONTRACT §9's ./data/spool).
    http: { spoolDir: path.join(path.dirname(root), 'spool') },
  };
}
