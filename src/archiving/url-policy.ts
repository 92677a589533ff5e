import { DepotError } from '../contract';
import { isForbiddenAddress } from '../support/address-guard';

/** Checks scheme and host of a source URL against the contract and `sources.allowedHosts`. */
export function checkSourceUrl(raw: string, allowedHosts: string[] | undefined, field = 'source.url'): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DepotError('invalid_task', 'is not a URL', { field });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DepotError('invalid_task', 'must be http or https', { field });
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (allowedHosts && allowedHosts.length > 0 && !allowedHosts.some((h) => h.toLowerCase() === host)) {
    throw new DepotError('invalid_task', `host ${host} is not in sources.allowedHosts`, { field });
  }
  if (isForbiddenAddress(host)) throw new DepotError('invalid_task', `host ${host} is a link-local address`, { field });
  return url;
}
