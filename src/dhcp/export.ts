// Equivalent configuration for labs that keep their own DHCP server: Kea (JSON), dnsmasq and
// ISC dhcpd. Pure: config + registered devices in, text/JSON out. Option 143 goes out as raw
// bytes where the server has no name for it (Kea < 2.3.6, dnsmasq), per device profile.
import type { Config } from '../config.js';
import type { Device } from '../devices/model.js';
import { hexColon } from './codec/bytes.js';
import { encodeSztpRedirect } from './codec/options.js';
import { dhcpInterfaces, parseCidrV4 } from './settings.js';
import { numberToIpv4 } from './codec/bytes.js';

export type ExportFormat = 'kea' | 'dnsmasq' | 'isc-dhcpd';

export interface ExportInput {
  dhcp: Config['dhcp'];
  sztpUrls: string[];
  devices: Pick<Device, 'serial' | 'profile' | 'macs'>[];
}

function redirect(input: ExportInput, profile: 'rfc8572' | 'opi'): Buffer | undefined {
  return input.sztpUrls.length ? encodeSztpRedirect(profile, input.sztpUrls) : undefined;
}

export function exportKea(input: ExportInput): Record<string, unknown> {
  const hexOf = (b: Buffer) => b.toString('hex').toUpperCase();
  const subnets = input.dhcp.subnets.map((s, i) => {
    const data: Record<string, unknown>[] = [];
    if (s.options?.routers) data.push({ name: 'routers', data: s.options.routers.join(', ') });
    return {
      id: i + 1,
      subnet: s.subnet,
      pools: s.pools.map((p) => ({ pool: `${p.start} - ${p.end}` })),
      'option-data': data,
      reservations: (s.reservations ?? []).filter((r) => r.mac && r.address).map((r) => ({ 'hw-address': r.mac, 'ip-address': r.address })),
    };
  });
  const global: Record<string, unknown>[] = [];
  const g = input.dhcp.options;
  if (g?.dns) global.push({ name: 'domain-name-servers', data: g.dns.join(', ') });
  if (g?.domain) global.push({ name: 'domain-name', data: g.domain });
  const rfc = redirect(input, 'rfc8572');
  if (rfc) global.push({ code: 143, space: 'dhcp4', 'csv-format': false, data: hexOf(rfc) });
  // Devices with the opi profile get the text form in a per-host class.
  const opi = redirect(input, 'opi');
  const hosts = input.devices.filter((d) => d.profile === 'opi' && opi);
  return {
    Dhcp4: {
      'interfaces-config': { interfaces: dhcpInterfaces(input.dhcp.interface).length > 0 ? dhcpInterfaces(input.dhcp.interface) : ['*'] },
      'lease-database': { type: 'memfile', persist: true },
      'valid-lifetime': input.dhcp.leaseTime,
      // Kea 2.2 has no name for 143: define it as binary (2.3.6+ knows v4-sztp-redirect).
      'option-def': [{ name: 'sztp-redirect', code: 143, space: 'dhcp4', type: 'binary' }],
      'option-data': global,
      'client-classes': hosts.map((d) => ({
        name: `ztp-opi-${d.serial}`,
        test: d.macs.map((m) => `hexstring(pkt4.mac, ':') == '${m}'`).join(' or '),
        'option-data': [{ code: 143, space: 'dhcp4', 'csv-format': false, data: hexOf(opi!), 'always-send': false }],
      })),
      subnet4: subnets,
    },
  };
}

export function exportDnsmasq(input: ExportInput): string {
  const lines = ['# dpu-ztp: dnsmasq configuration equivalent to the DHCP responder settings', '# option 143 is sent as raw bytes (dnsmasq has no name for it)'];
  for (const s of input.dhcp.subnets) {
    const cidr = parseCidrV4(s.subnet);
    for (const p of s.pools) lines.push(`dhcp-range=${p.start},${p.end},${numberToIpv4(cidr.mask)},${input.dhcp.leaseTime}s`);
    if (s.options?.routers) lines.push(`dhcp-option=option:router,${s.options.routers.join(',')}`);
    for (const r of s.reservations ?? []) if (r.mac && r.address) lines.push(`dhcp-host=${r.mac},${r.address}`);
  }
  const g = input.dhcp.options;
  if (g?.dns) lines.push(`dhcp-option=option:dns-server,${g.dns.join(',')}`);
  if (g?.domain) lines.push(`dhcp-option=option:domain-name,${g.domain}`);
  const rfc = redirect(input, 'rfc8572');
  const opi = redirect(input, 'opi');
  if (rfc) lines.push(`dhcp-option=143,${hexColon(rfc)}`);
  for (const d of input.devices.filter((x) => x.profile === 'opi')) {
    const tag = `ztpopi${d.serial.replace(/[^A-Za-z0-9]/g, '')}`;
    for (const m of d.macs) lines.push(`dhcp-host=${m},set:${tag}`);
    if (opi) lines.push(`dhcp-option=tag:${tag},143,${hexColon(opi)}`);
  }
  return lines.join('\n') + '\n';
}

export function exportIscDhcpd(input: ExportInput): string {
  const lines = ['# dpu-ztp: ISC dhcpd configuration equivalent to the DHCP responder settings', 'option sztp-redirect code 143 = string;', `default-lease-time ${input.dhcp.leaseTime};`];
  const g = input.dhcp.options;
  if (g?.dns) lines.push(`option domain-name-servers ${g.dns.join(', ')};`);
  if (g?.domain) lines.push(`option domain-name "${g.domain}";`);
  const rfc = redirect(input, 'rfc8572');
  const opi = redirect(input, 'opi');
  if (rfc) lines.push(`option sztp-redirect ${hexColon(rfc)};`);
  for (const s of input.dhcp.subnets) {
    const cidr = parseCidrV4(s.subnet);
    lines.push(`subnet ${numberToIpv4(cidr.network)} netmask ${numberToIpv4(cidr.mask)} {`);
    for (const p of s.pools) lines.push(`  range ${p.start} ${p.end};`);
    if (s.options?.routers) lines.push(`  option routers ${s.options.routers.join(', ')};`);
    lines.push('}');
  }
  for (const d of input.devices) {
    d.macs.forEach((m, i) => {
      lines.push(`host ${d.serial.replace(/[^A-Za-z0-9-]/g, '-')}-${i} {`, `  hardware ethernet ${m};`);
      if (d.profile === 'opi' && opi) lines.push(`  option sztp-redirect ${hexColon(opi)};`);
      lines.push('}');
    });
  }
  return lines.join('\n') + '\n';
}

export function exportConfig(format: ExportFormat, input: ExportInput): { format: ExportFormat; text: string; json?: Record<string, unknown> } {
  if (format === 'kea') {
    const json = exportKea(input);
    return { format, text: JSON.stringify(json, null, 2) + '\n', json };
  }
  return { format, text: format === 'dnsmasq' ? exportDnsmasq(input) : exportIscDhcpd(input) };
}
