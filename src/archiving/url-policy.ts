import { isIP, BlockList } from 'node:net';
import { lookup as dnsLookup, LookupAddress } from 'node:dns';
import { DepotError } from '../contract';

/**
 * Addresses a URL source may never reach, whatever the config says: link-local
 * ranges, where cloud metadata services answer with credentials.
 */
const forbidden = new BlockList();
forbidden.addSubnet('169.254.0.0', 16, 'ipv4');
forbidden.addSubnet('fe80::', 10, 'ipv6');
forbidden.addAddress('100.100.100.200', 'ipv4'); // Alibaba Cloud metadata
forbidden.addAddress('fd00:ec2::254', 'ipv6'); // AWS metadata over IPv6
forbidden.addAddress('0.0.0.0', 'ipv4');
forbidden.addAddress('::', 'ipv6');

export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return forbidden.check(mapped[1], 'ipv4');
  return forbidden.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

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

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A dns.lookup for http.request that refuses forbidden addresses after
 * resolution, so a host name cannot smuggle a request to a metadata service.
 */
export function guardedLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '');
    const list = addresses as LookupAddress[];
    const bad = list.find((a) => isForbiddenAddress(a.address));
    if (bad) {
      const refused = Object.assign(new Error(`${hostname} resolves to the link-local address ${bad.address}`), { code: 'EFORBIDDEN' });
      return callback(refused, '');
    }
    if ((options as { all?: boolean }).all) return callback(null, list);
    callback(null, list[0].address, list[0].family);
  });
}
