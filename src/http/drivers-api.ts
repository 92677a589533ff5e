import type { StorageAPI } from '../storage/api';
import type { BearerAuth } from './bearer-auth';
import type { DriverHealth } from './driver-health';
import { sendJson } from './reply';
import type { Exchange } from './router';

/**
 * CONTRACT §9: `GET /v1/drivers`, for producers that choose a store or ask
 * how much is free: `[{ name, type, default, healthy, lastCheck: { at, ok,
 * error? } | null, space }]`, from the connection check serve runs every
 * minute (never a backend call per request). `space` is what the last check
 * reported (`{}` when the backend reports nothing, null before the first
 * check). A token limited to some drivers sees only those.
 */
export function answerDrivers(storage: StorageAPI, health: DriverHealth, bearer: BearerAuth) {
  return ({ request, response }: Exchange): void => {
    const token = bearer.token(request);
    const drivers = health
      .snapshot()
      .filter(({ driver }) => !token || token.scope.allowsDriver(driver))
      .map(({ driver, last }) => ({
        name: driver,
        type: storage.getStorageDriver(driver).type,
        default: driver === storage.defaultDriver,
        healthy: last?.ok ?? false,
        lastCheck: last ? { at: last.checkedAt, ok: last.ok, ...(last.error ? { error: last.error } : {}) } : null,
        space: last ? (last.space ?? {}) : null,
      }));
    sendJson(response, 200, drivers);
  };
}
