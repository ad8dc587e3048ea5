// Issue 8, "Configuration that cannot silently break v6": dns/ntp carry both families and each
// protocol takes its own; options that do not belong to a family are refused by key; a
// configuration that validates but cannot be encoded stops `ztp serve` with exit 2 naming the key.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/common.js';
import { main } from '../../src/cli/main.js';
import { validateConfig } from '../../src/config.js';
import { OptV6 } from '../../src/dhcp/codec/v6.js';
import { decide, optionsV4, optionsV6 } from '../../src/dhcp/policy.js';

const readmeExample = {
  interface: 'eth1',
  options: { dns: ['10.9.0.53'], boot: { httpUrl: { x64: 'http://10.9.0.1:8080/images/x64.efi' } } },
  subnets: [{ subnet: '10.9.0.0/24', pools: [{ start: '10.9.0.100', end: '10.9.0.199' }], options: { routers: ['10.9.0.1'] } }],
  v6: { enabled: true, subnets: [{ prefix: 'fd00:9::/64', pools: [{ start: 'fd00:9::100', end: 'fd00:9::1ff' }] }] },
};

const keyOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { details?: { key?: string } }).details?.key;
  }
  return undefined;
};

describe('DHCP configuration per family', () => {
  it('the README example (IPv4 dns, v6 enabled) loads; v6 replies simply carry no IPv4 address', () => {
    const c = validateConfig({ dhcp: readmeExample });
    const input = { global: c.dhcp.options, classes: [], reservations: [], sztpUrls: [], sztpForce: false, defaultLeaseTime: 3600 };
    const v6 = optionsV6(decide({ family: 6, userClasses: [], arch: [], requested: [OptV6.DNS_SERVERS] }, input, { deviceByMac: () => undefined }), [OptV6.DNS_SERVERS]);
    expect(v6).toEqual([]);
  });

  it('a mixed dns/ntp list: IPv4 entries go to v4 options 6/42, IPv6 ones to v6 options 23/56', () => {
    const c = validateConfig({ dhcp: { ...readmeExample, options: { dns: ['10.9.0.53', 'fd00:9::53'], ntp: ['10.9.0.123', 'fd00:9::123'] } } });
    const input = { global: c.dhcp.options, classes: [], reservations: [], sztpUrls: [], sztpForce: false, defaultLeaseTime: 3600 };
    const d4 = decide({ family: 4, userClasses: [], arch: [], requested: [6, 42] }, input, { deviceByMac: () => undefined });
    expect(optionsV4(d4, [6, 42])).toEqual([
      { code: 6, data: Buffer.from([10, 9, 0, 53]) },
      { code: 42, data: Buffer.from([10, 9, 0, 123]) },
    ]);
    const d6 = decide({ family: 6, userClasses: [], arch: [], requested: [23, 56] }, input, { deviceByMac: () => undefined });
    const v6 = optionsV6(d6, [23, 56]);
    expect(v6[0]).toEqual({ code: 23, data: Buffer.from('fd000009000000000000000000000053', 'hex') });
    // RFC 5908: suboption 1 (server address), length 16
    expect(v6[1]).toEqual({ code: 56, data: Buffer.from('00010010fd000009000000000000000000000123', 'hex') });
  });

  it('raw options are per family: a v4 raw code does not leak into DHCPv6 replies', () => {
    const c = validateConfig({ dhcp: { ...readmeExample, options: { raw: [{ code: 66, text: 'tftp.lab', always: true }, { code: 66, family: 6, hex: '01', always: true }] } } });
    const input = { global: c.dhcp.options, classes: [], reservations: [], sztpUrls: [], sztpForce: false, defaultLeaseTime: 3600 };
    expect(optionsV4(decide({ family: 4, userClasses: [], arch: [], requested: [] }, input, { deviceByMac: () => undefined }), [])).toEqual([{ code: 66, data: Buffer.from('tftp.lab') }]);
    expect(optionsV6(decide({ family: 6, userClasses: [], arch: [], requested: [] }, input, { deviceByMac: () => undefined }), [])).toEqual([{ code: 66, data: Buffer.from([1]) }]);
  });

  it('refuses by key what a family cannot carry', () => {
    expect(keyOf(() => validateConfig({ dhcp: { ...readmeExample, subnets: [{ subnet: '10.9.0.0/24', pools: [], options: { dns: ['fd00::53'] } }] } }))).toBe('dhcp.subnets[0].options.dns[0]');
    expect(keyOf(() => validateConfig({ dhcp: { ...readmeExample, v6: { enabled: true, subnets: [{ prefix: 'fd00:9::/64', pools: [], options: { routers: ['10.9.0.1'] } }] } } }))).toBe('dhcp.v6.subnets[0].options.routers');
    expect(keyOf(() => validateConfig({ dhcp: { ...readmeExample, v6: { enabled: true, subnets: [{ prefix: 'fd00:9::/64', pools: [], options: { dns: ['10.9.0.53'] } }] } } }))).toBe('dhcp.v6.subnets[0].options.dns[0]');
    expect(keyOf(() => validateConfig({ dhcp: { ...readmeExample, options: { raw: [{ code: 3, family: 6, hex: '00' }] } } }))).toBe('dhcp.options.raw[0].code');
    expect(keyOf(() => validateConfig({ dhcp: { ...readmeExample, options: { raw: [{ code: 150, family: 6, ip: ['10.0.0.1'] }] } } }))).toBe('dhcp.options.raw[0].ip[0]');
  });

  it('valid fields that cannot be encoded (a domain label over 63 bytes for v6) are refused at start', () => {
    const domain = `${'a'.repeat(70)}.lab`;
    expect(keyOf(() => validateConfig({ dhcp: { ...readmeExample, options: { domain } } }))).toBe('dhcp.options');
    // with v6 off the same domain is fine for DHCPv4 (option 15 is plain text)
    expect(() => validateConfig({ dhcp: { ...readmeExample, v6: { enabled: false }, options: { domain } } })).not.toThrow();
  });

  it('`ztp serve` exits 2 naming the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-dhcp-config-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ dhcp: { ...readmeExample, options: { domain: `${'a'.repeat(70)}.lab` } } }));
    const err: string[] = [];
    const code = await main(['--data-dir', join(dir, 'data'), '--config-file', file, 'serve'], { out: () => {}, err: (t) => err.push(t) });
    expect(code).toBe(EXIT.USAGE);
    expect(err.join('\n')).toContain('dhcp.options');
  });
});
