import { lookup as dnsLookup, LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Addresses depot never sends a request to (URL sources, webhooks), whatever the config says: link-local
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
  if (family === 4) return forbidden.check(address, 'ipv4');
  if (family !== 6) return false;
  if (forbidden.check(address, 'ipv6')) return true;
  // An IPv4 address can be written inside an IPv6 one in several ways; each reaches the IPv4 host.
  const embedded = embeddedIPv4(ipv6Bytes(address));
  return embedded !== null && forbidden.check(embedded, 'ipv4');
}

/**
 * The IPv4 address an IPv6 address carries, in every spelling that routes to
 * it: IPv4-mapped `::ffff:0:0/96`, IPv4-translated `::ffff:0:0:0/96`,
 * IPv4-compatible `::/96`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, and 6to4
 * `2002::/16`. URLs write them in hex (`[::ffff:a9fe:a9fe]`), so a dotted
 * pattern alone would miss them.
 */
function embeddedIPv4(b: number[]): string | null {
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const v4 = (at: number) => b.slice(at, at + 4).join('.');
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4(12); // mapped
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && zero(10, 12)) return v4(12); // translated
  if (zero(0, 12) && !zero(12, 16)) return v4(12); // compatible (not :: or ::1, which are no IPv4 host)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return v4(12); // NAT64 well-known
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b[4] === 0 && b[5] === 1) return v4(12); // NAT64 local use
  if (b[0] === 0x20 && b[1] === 0x02) return v4(2); // 6to4
  return null;
}

/** The 16 bytes of a valid IPv6 address (as isIP accepts it: `::`, a trailing dotted quad, a zone). */
function ipv6Bytes(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [, a, c, d, e] = quad.map(Number);
    text = `${text.slice(0, quad.index)}${((a << 8) | c).toString(16)}:${((d << 8) | e).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return all.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A dns.lookup for http.request that refuses forbidden addresses after
 * resolution, so a host name cannot smuggle a request to a metadata service.
 */
export function guardedLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '');
    const list = addresses;
    const bad = list.find((a) => isForbiddenAddress(a.address));
    if (bad) {
      const refused = Object.assign(new Error(`${hostname} resolves to the link-local address ${bad.address}`), { code: 'EFORBIDDEN' });
      return callback(refused, '');
    }
    if ((options as { all?: boolean }).all) return callback(null, list);
    callback(null, list[0].address, list[0].family);
  });
}

/**
 * Whether a URL's host is itself a forbidden address, in any spelling the URL
 * parser accepts (`0xA9FEA9FE`, `[::ffff:a9fe:a9fe]`, … are normalised by it).
 * Host names are not resolved here: guardedLookup checks them at connect time.
 */
export function isForbiddenUrl(url: URL): boolean {
  return isForbiddenAddress(url.hostname.replace(/^\[|\]$/g, ''));
}
