// Small pure helpers shared by the DHCPv4 and DHCPv6 codecs: addresses, MACs, bounded reads.
// No I/O. Every failure is a ZtpError (DHCP_TRUNCATED / DHCP_MALFORMED).
import { ZtpError } from '../../errors.js';

export function truncated(what: string, details: Record<string, unknown> = {}): ZtpError {
  return new ZtpError('DHCP_TRUNCATED', `truncated DHCP packet: ${what}`, { details });
}

export function malformed(what: string, details: Record<string, unknown> = {}): ZtpError {
  return new ZtpError('DHCP_MALFORMED', `malformed DHCP packet: ${what}`, { details });
}

export function encodeFailed(what: string, details: Record<string, unknown> = {}): ZtpError {
  return new ZtpError('DHCP_ENCODE_FAILED', `cannot encode DHCP packet: ${what}`, { details });
}

/** Copies a slice so callers never alias a caller-owned (possibly pooled) receive buffer. */
export function copyOf(buf: Uint8Array, start: number, end: number): Buffer {
  return Buffer.from(buf.subarray(start, end));
}

/** A Buffer view over any Uint8Array, honouring its byteOffset (sliced Buffers from a pool). */
export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function ipv4ToString(buf: Uint8Array, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(text: string): boolean {
  return IPV4_RE.test(text);
}

export function ipv4ToBytes(text: string): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(ipv4ToNumber(text), 0);
  return b;
}

/** Dotted quad → 32-bit number without allocating (on the per-packet path); same rules as IPV4_RE. */
export function ipv4ToNumber(text: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) throw encodeFailed(`"${text}" is not an IPv4 address`);
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3 && !(digits === 1 && octet === 0)) {
      // no leading zeros ("01" could be read as octal elsewhere), as IPV4_RE
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) throw encodeFailed(`"${text}" is not an IPv4 address`);
    } else {
      throw encodeFailed(`"${text}" is not an IPv4 address`);
    }
  }
  if (digits === 0 || dots !== 3) throw encodeFailed(`"${text}" is not an IPv4 address`);
  return value * 256 + octet;
}

export function numberToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function macToString(buf: Uint8Array, offset = 0, length = 6): string {
  if (length <= 0) return '';
  let out = HEX_BYTE[buf[offset] ?? 0]!;
  for (let i = 1; i < length; i++) out += ':' + HEX_BYTE[buf[offset + i] ?? 0]!;
  return out;
}

export function hexColon(buf: Uint8Array): string {
  return [...buf].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Parses IPv6 text forms (incl. "::" and an embedded IPv4 tail) into 16 bytes; throws DHCP_ENCODE_FAILED. */
export function ipv6ToBytes(text: string): Buffer {
  const fail = () => encodeFailed(`"${text}" is not an IPv6 address`);
  let s = text.replace(/%.*$/, '');
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    if (!isIpv4(v4[2]!)) throw fail();
    const b = ipv4ToBytes(v4[2]!);
    s = `${v4[1]}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) throw fail();
  const parse = (h: string) =>
    h === ''
      ? []
      : h.split(':').map((g) => {
          if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw fail();
          return parseInt(g, 16);
        });
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (halves.length === 2 && head.length + rest.length > 7) throw fail();
  const groups = halves.length === 2 ? [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest] : head;
  if (groups.length !== 8) throw fail();
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** RFC 5952 canonical text form. */
export function ipv6ToString(buf: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((buf[offset + i * 2] ?? 0) << 8) | (buf[offset + i * 2 + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
