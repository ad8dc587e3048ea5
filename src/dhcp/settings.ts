// Validation of the `dhcp` configuration section beyond its schema: addresses, CIDRs, pools
// inside their subnet, hex values, URLs. Every failure names the dotted key (STYLE.md practice 3).
import type { DhcpOptionSetConfig, DhcpSection } from './config-schema.js';
import { ZtpError } from '../errors.js';
import { ipv4ToNumber, ipv6ToBytes, isIpv4 } from './codec/bytes.js';

export type DhcpSettings = DhcpSection;

function fail(key: string, message: string): never {
  throw new ZtpError('CONFIG_INVALID', `configuration key "${key}": ${message}`, { details: { key } });
}

export interface CidrV4 {
  network: number;
  prefix: number;
  mask: number;
  broadcast: number;
  text: string;
}

export function parseCidrV4(text: string, key = 'subnet'): CidrV4 {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(text);
  if (!m || !isIpv4(m[1]!) || Number(m[2]) > 32) fail(key, `"${text}" is not an IPv4 CIDR (a.b.c.d/len)`);
  const prefix = Number(m[2]);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (ipv4ToNumber(m[1]!) & mask) >>> 0;
  return { network, prefix, mask, broadcast: (network | (~mask >>> 0)) >>> 0, text: `${m[1]}/${prefix}` };
}

export function inCidr(ip: number, cidr: CidrV4): boolean {
  return ((ip & cidr.mask) >>> 0) === cidr.network;
}

export interface CidrV6 {
  bytes: Buffer;
  prefix: number;
}

export function parseCidrV6(text: string, key = 'prefix'): CidrV6 {
  const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(text);
  if (!m || Number(m[2]) > 128) fail(key, `"${text}" is not an IPv6 prefix (xxxx::/len)`);
  try {
    return { bytes: ipv6ToBytes(m[1]!), prefix: Number(m[2]) };
  } catch {
    return fail(key, `"${text}" is not an IPv6 prefix`);
  }
}

export function inCidrV6(addr: Buffer, cidr: CidrV6): boolean {
  for (let bit = 0; bit < cidr.prefix; bit++) {
    const byte = bit >> 3;
    const m = 0x80 >> (bit & 7);
    if ((addr[byte]! & m) !== (cidr.bytes[byte]! & m)) return false;
  }
  return true;
}

export function parseHex(text: string, key: string): Buffer {
  const clean = text.replace(/^0x/i, '').replace(/[:\s-]/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) fail(key, `"${text}" is not hex`);
  return Buffer.from(clean, 'hex');
}

function checkIpv4(value: string, key: string): void {
  if (!isIpv4(value)) fail(key, `"${value}" is not an IPv4 address`);
}

function checkIp(value: string, key: string, family: 4 | 6): void {
  if (family === 4) return checkIpv4(value, key);
  try {
    ipv6ToBytes(value);
  } catch {
    fail(key, `"${value}" is not an IPv6 address`);
  }
}

function checkUrl(value: string, key: string, schemes: RegExp): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(key, `"${value}" is not a URL`);
  }
  if (!schemes.test(url.protocol)) fail(key, `"${value}" must use ${schemes.source.replace(/[\\^$:()]/g, '')}`);
}

/** Which protocol(s) a scope feeds: v4 subnets and reservations 4, v6 subnets 6, global and classes both. */
export type Scope = 4 | 6 | 'both';

function checkEitherIp(value: string, key: string, scope: Scope): void {
  if (scope !== 'both') return checkIp(value, key, scope);
  if (isIpv4(value)) return;
  try {
    ipv6ToBytes(value);
  } catch {
    fail(key, `"${value}" is neither an IPv4 nor an IPv6 address`);
  }
}

/** DHCPv6 options the responder builds itself (RFC 8415 §21): never settable as raw options. */
const V6_STRUCTURAL = new Set([1, 2, 3, 4, 5, 9, 13, 18, 19]);

function checkOptionSet(set: DhcpOptionSetConfig | undefined, key: string, scope: Scope): void {
  if (!set) return;
  if (scope === 6) {
    // DHCPv6 has no router, MTU or BOOTP header fields: say so instead of silently ignoring them.
    for (const k of ['routers', 'mtu'] as const) if (set[k] !== undefined) fail(`${key}.${k}`, 'not a DHCPv6 option (routers and MTU come from router advertisements)');
    if (set.boot?.nextServer !== undefined) fail(`${key}.boot.nextServer`, 'not a DHCPv6 option');
    if (set.boot?.serverName !== undefined) fail(`${key}.boot.serverName`, 'not a DHCPv6 option');
  }
  set.routers?.forEach((ip, i) => checkIpv4(ip, `${key}.routers[${i}]`));
  set.ntp?.forEach((ip, i) => checkEitherIp(ip, `${key}.ntp[${i}]`, scope));
  set.dns?.forEach((ip, i) => checkEitherIp(ip, `${key}.dns[${i}]`, scope));
  set.sztp?.urls?.forEach((u, i) => checkUrl(u, `${key}.sztp.urls[${i}]`, /^https:$/));
  if (set.boot?.nextServer) checkIpv4(set.boot.nextServer, `${key}.boot.nextServer`);
  if (set.boot?.serverName && Buffer.byteLength(set.boot.serverName, 'latin1') > 63) fail(`${key}.boot.serverName`, 'longer than 63 bytes');
  for (const arch of ['x64', 'arm64', 'default'] as const) {
    const url = set.boot?.httpUrl?.[arch];
    if (url) checkUrl(url, `${key}.boot.httpUrl.${arch}`, /^https?:$/);
  }
  set.raw?.forEach((r, i) => {
    const k = `${key}.raw[${i}]`;
    const given = [r.hex, r.text, r.ip].filter((v) => v !== undefined).length;
    if (given !== 1) fail(k, 'exactly one of hex, text, ip is required');
    const family = r.family ?? (scope === 6 ? 6 : 4);
    if (scope !== 'both' && family !== scope) fail(`${k}.family`, `a DHCPv${family} option cannot go in a DHCPv${scope}-only scope`);
    if (family === 4 && (r.code < 1 || r.code > 254 || r.code === 52 || r.code === 53)) fail(`${k}.code`, `${r.code} is not a settable DHCPv4 option`);
    if (family === 6 && V6_STRUCTURAL.has(r.code)) fail(`${k}.code`, `${r.code} is a DHCPv6 option the server builds itself`);
    if (r.hex !== undefined) parseHex(r.hex, `${k}.hex`);
    r.ip?.forEach((ip, j) => checkIp(ip, `${k}.ip[${j}]`, family));
  });
}

function checkReservation(r: NonNullable<DhcpSettings['reservations']>[number], key: string): void {
  if (!r.mac && !r.clientId) fail(key, 'needs mac or clientId');
  if (r.mac && !/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(r.mac)) fail(`${key}.mac`, `"${r.mac}" is not a MAC address`);
  if (r.clientId) parseHex(r.clientId, `${key}.clientId`);
  if (r.address) checkIpv4(r.address, `${key}.address`);
  checkOptionSet(r.options, `${key}.options`, 4);
}

/** Throws CONFIG_INVALID naming the key; called by validateConfig after the schema check. */
export function validateDhcpSettings(d: DhcpSettings): void {
  if (d.serverAddress) checkIpv4(d.serverAddress, 'dhcp.serverAddress');
  if (d.sztpUrls) d.sztpUrls.split(',').forEach((u) => checkUrl(u.trim(), 'dhcp.sztpUrls', /^https:$/));
  checkOptionSet(d.options, 'dhcp.options', 'both');
  d.relays.forEach((r, i) => checkIp(r, `dhcp.relays[${i}]`, r.includes(':') ? 6 : 4));
  const names = new Set<string>();
  d.classes.forEach((c, i) => {
    if (names.has(c.name)) fail(`dhcp.classes[${i}].name`, `duplicate class name "${c.name}"`);
    names.add(c.name);
    checkOptionSet(c.options, `dhcp.classes[${i}].options`, 'both');
  });
  d.reservations.forEach((r, i) => checkReservation(r, `dhcp.reservations[${i}]`));
  const cidrs: CidrV4[] = [];
  d.subnets.forEach((s, i) => {
    const key = `dhcp.subnets[${i}]`;
    const cidr = parseCidrV4(s.subnet, `${key}.subnet`);
    for (const other of cidrs) if (inCidr(cidr.network, other) || inCidr(other.network, cidr)) fail(`${key}.subnet`, `overlaps ${other.text}`);
    cidrs.push(cidr);
    s.pools.forEach((p, j) => {
      const pk = `${key}.pools[${j}]`;
      checkIpv4(p.start, `${pk}.start`);
      checkIpv4(p.end, `${pk}.end`);
      const a = ipv4ToNumber(p.start);
      const b = ipv4ToNumber(p.end);
      if (a > b) fail(pk, 'start is after end');
      if (!inCidr(a, cidr) || !inCidr(b, cidr)) fail(pk, `pool is outside ${s.subnet}`);
    });
    checkOptionSet(s.options, `${key}.options`, 4);
    s.reservations?.forEach((r, j) => {
      checkReservation(r, `${key}.reservations[${j}]`);
      if (r.address && !inCidr(ipv4ToNumber(r.address), cidr)) fail(`${key}.reservations[${j}].address`, `outside ${s.subnet}`);
    });
  });
  d.v6.subnets.forEach((s, i) => {
    const key = `dhcp.v6.subnets[${i}]`;
    const cidr = parseCidrV6(s.prefix, `${key}.prefix`);
    s.pools.forEach((p, j) => {
      const pk = `${key}.pools[${j}]`;
      checkIp(p.start, `${pk}.start`, 6);
      checkIp(p.end, `${pk}.end`, 6);
      const a = ipv6ToBytes(p.start);
      const b = ipv6ToBytes(p.end);
      if (Buffer.compare(a, b) > 0) fail(pk, 'start is after end');
      if (!inCidrV6(a, cidr) || !inCidrV6(b, cidr)) fail(pk, `pool is outside ${s.prefix}`);
    });
    checkOptionSet(s.options, `${key}.options`, 6);
  });
}

/** dhcp.interface: one name or several, comma-separated ('br0' or 'br0,br1'). */
export function dhcpInterfaces(value: string): string[] {
  return [...new Set(value.split(',').map((n) => n.trim()).filter(Boolean))];
}
