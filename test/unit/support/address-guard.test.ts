import { isForbiddenAddress } from '../../../src/support/address-guard';

describe('isForbiddenAddress: link-local and metadata addresses in every spelling', () => {
  test.each([
    '169.254.169.254',
    '169.254.0.1',
    'fe80::1',
    'fe80::1%eth0',
    'fd00:ec2::254',
    '100.100.100.200',
    '0.0.0.0',
    '::',
    // IPv4-mapped, dotted and as URLs write it (hex)
    '::ffff:169.254.169.254',
    '::ffff:a9fe:a9fe',
    '0:0:0:0:0:ffff:a9fe:a9fe',
    // IPv4-translated (RFC 2765)
    '::ffff:0:a9fe:a9fe',
    '::ffff:0:169.254.169.254',
    // IPv4-compatible (deprecated, still routed by some stacks)
    '::169.254.169.254',
    '::a9fe:a9fe',
    // NAT64: well-known prefix and local-use prefix
    '64:ff9b::a9fe:a9fe',
    '64:ff9b::169.254.169.254',
    '64:ff9b:1::a9fe:a9fe',
    // 6to4
    '2002:a9fe:a9fe::1',
  ])('%s is refused', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  test.each(['127.0.0.1', '::1', '10.0.0.1', '192.168.1.10', '2001:db8::1', '::ffff:127.0.0.1', '64:ff9b::7f00:1', '2002:7f00:1::1', 'example.org', ''])(
    '%s is allowed',
    (address) => {
      expect(isForbiddenAddress(address)).toBe(false);
    },
  );

  test('a URL host as the WHATWG parser writes it', () => {
    const host = new URL('http://[::ffff:169.254.169.254]/').hostname.replace(/^\[|\]$/g, '');
    expect(host).toBe('::ffff:a9fe:a9fe');
    expect(isForbiddenAddress(host)).toBe(true);
  });
});
