// Typed option values shared by DHCPv4 and DHCPv6: sZTP redirect (RFC 8572 §8.3/§8.4), relay
// agent information (RFC 3046), user class (RFC 3004), client architecture (RFC 4578), and the
// plain scalar forms of RFC 2132. Pure; decoders throw only ZtpError.
import { asBuffer, copyOf, encodeFailed, ipv4ToBytes, ipv4ToString, malformed, truncated } from './bytes.js';

// ---------------------------------------------------------------------------------------------
// RFC 8572 §8.3 (DHCPv4 option 143) and §8.4 (DHCPv6 option 136): the same server list.
//
//     0                   1                   2                   3
//     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//    |  option-code  |  option-length  |                             |
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             .
//    .                   bootstrap-server-list (variable length)     .
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
//    bootstrap-server-list:
//    +-------------------------------------------------------------------+
//    |       uri-length              |          URI                      |
//    +-------------------------------------------------------------------+
//    uri-length: 2 octets, the length of the URI data.
//    URI: "https" scheme, host and optional port, no path (RFC 8572 §8.3).
//
// A list above 255 bytes is split into several option-143 instances (RFC 3396), which the v4
// packet encoder does. The `opi` profile instead sends the full RPC URL as plain text with no
// length prefix: the OPI agent declares `option sztp-redirect-urls code 143 = text;` in dhclient.
// ---------------------------------------------------------------------------------------------

export type SztpEncoding = 'rfc8572' | 'opi';

export const SZTP_RPC_PATH = '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';

export function encodeSztpServerList(uris: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const uri of uris) {
    const bytes = Buffer.from(uri, 'utf8');
    if (bytes.length === 0 || bytes.length > 0xffff) throw encodeFailed(`sZTP URI of ${bytes.length} bytes`);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(bytes.length, 0);
    parts.push(len, bytes);
  }
  return Buffer.concat(parts);
}

export function decodeSztpServerList(input: Uint8Array): string[] {
  const buf = asBuffer(input);
  const out: string[] = [];
  let i = 0;
  while (i < buf.length) {
    if (i + 2 > buf.length) throw truncated('sZTP redirect uri-length');
    const len = buf.readUInt16BE(i);
    if (len === 0) throw malformed('sZTP redirect entry of length 0');
    if (i + 2 + len > buf.length) throw truncated('sZTP redirect URI runs past the option');
    out.push(buf.toString('utf8', i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}

/** The redirect option value for a profile: rfc8572 = server list of base URIs, opi = full RPC URL text. */
export function encodeSztpRedirect(encoding: SztpEncoding, baseUris: string[]): Buffer {
  if (encoding === 'opi') {
    // The OPI agent uses only the first URL and needs host:port plus the RPC path.
    const first = baseUris[0];
    if (!first) throw encodeFailed('no sZTP bootstrap server URI');
    return Buffer.from(first.includes('/restconf/') ? first : first.replace(/\/+$/, '') + SZTP_RPC_PATH, 'utf8');
  }
  return encodeSztpServerList(baseUris.map((u) => u.replace(/\/restconf\/.*$/, '').replace(/\/+$/, '')));
}

// ---------------------------------------------------------------------------------------------
// RFC 3046 §2.0, option 82 relay agent information: a list of sub-options.
//
//        Code   Len     Agent Information Field
//       +------+------+------+------+------+------+--...-+------+
//       |  82  |   N  |  i1  |  i2  |  i3  |  i4  |      |  iN  |
//       +------+------+------+------+------+------+--...-+------+
//    each sub-option:
//        SubOpt  Len     Sub-option value
//       +------+------+------+------+------+------+--...-+
//       |  1   |   n  |  c1  |  c2  |  c3  |  c4  |      |    (1 = circuit-id, 2 = remote-id)
//       +------+------+------+------+------+------+--...-+
// ---------------------------------------------------------------------------------------------

export interface SubOption {
  code: number;
  data: Buffer;
}

export function decodeSubOptions(input: Uint8Array): SubOption[] {
  const buf = asBuffer(input);
  const out: SubOption[] = [];
  let i = 0;
  while (i < buf.length) {
    if (i + 2 > buf.length) throw truncated('relay agent sub-option header');
    const code = buf[i]!;
    const len = buf[i + 1]!;
    if (i + 2 + len > buf.length) throw truncated(`relay agent sub-option ${code} runs past the option`);
    out.push({ code, data: copyOf(buf, i + 2, i + 2 + len) });
    i += 2 + len;
  }
  return out;
}

export function encodeSubOptions(subs: SubOption[]): Buffer {
  return Buffer.concat(
    subs.map((s) => {
      if (s.data.length > 255 || s.code < 0 || s.code > 255) throw encodeFailed(`sub-option ${s.code} too long or invalid`);
      return Buffer.concat([Buffer.from([s.code, s.data.length]), s.data]);
    }),
  );
}

export const RelaySub = { CIRCUIT_ID: 1, REMOTE_ID: 2 } as const;

// ---------------------------------------------------------------------------------------------
// RFC 3004 §4, option 77 user class: one or more length-prefixed opaque classes.
//        Code   Len   Len1  User Class Data 1  Len2  User Class Data 2 ...
//       +-----+-----+-----+------------------+-----+------------------+
//       |  77 |  N  |  L1 |   class 1 ...    |  L2 |   class 2 ...    |
//       +-----+-----+-----+------------------+-----+------------------+
// Many clients (iPXE, some firmware) send a bare string instead; when the length prefixes do not
// add up exactly, the whole value is taken as one class.
// ---------------------------------------------------------------------------------------------

export function decodeUserClassV4(input: Uint8Array): string[] {
  const buf = asBuffer(input);
  const out: string[] = [];
  let i = 0;
  while (i < buf.length) {
    const len = buf[i]!;
    if (len === 0 || i + 1 + len > buf.length) return [buf.toString('latin1')];
    out.push(buf.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RFC 4578 §2.1, option 93 client system architecture: a list of 16-bit types.
//        Code  Len  16-bit Type
//       +----+-----+-----+-----+
//       | 93 |  n  | n1  | n2  | ...
//       +----+-----+-----+-----+
// IANA "Processor Architecture Types": 0x0007 x64 UEFI, 0x0009 x64 UEFI (EBC slot used by some),
// 0x000b arm64 UEFI, 0x0010 x64 UEFI HTTP, 0x0013 arm64 UEFI HTTP.
// ---------------------------------------------------------------------------------------------

export function decodeU16List(input: Uint8Array, what: string): number[] {
  const buf = asBuffer(input);
  if (buf.length % 2 !== 0) throw malformed(`${what} length ${buf.length} is not a multiple of 2`);
  const out: number[] = [];
  for (let i = 0; i < buf.length; i += 2) out.push(buf.readUInt16BE(i));
  return out;
}

export function encodeU16List(values: number[]): Buffer {
  const out = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => out.writeUInt16BE(v & 0xffff, i * 2));
  return out;
}

export type Arch = 'x64' | 'arm64' | 'other';
export const ARCH_X64 = [0x0007, 0x0009, 0x0010];
export const ARCH_ARM64 = [0x000b, 0x0013];
export const ARCH_HTTP = [0x000f, 0x0010, 0x0012, 0x0013, 0x0014];

export function archFamily(types: number[]): Arch | undefined {
  if (types.length === 0) return undefined;
  if (types.some((t) => ARCH_ARM64.includes(t))) return 'arm64';
  if (types.some((t) => ARCH_X64.includes(t))) return 'x64';
  return 'other';
}

// Scalars (RFC 2132 §2: network byte order; lists of addresses are 4n bytes).
export function encodeU32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

export function encodeU16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value & 0xffff, 0);
  return b;
}

export function decodeU32(input: Uint8Array, what: string): number {
  const buf = asBuffer(input);
  if (buf.length !== 4) throw malformed(`${what} must be 4 bytes`);
  return buf.readUInt32BE(0);
}

export function decodeU16(input: Uint8Array, what: string): number {
  const buf = asBuffer(input);
  if (buf.length !== 2) throw malformed(`${what} must be 2 bytes`);
  return buf.readUInt16BE(0);
}

export function encodeIpv4List(ips: string[]): Buffer {
  return Buffer.concat(ips.map(ipv4ToBytes));
}

export function decodeIpv4(input: Uint8Array, what: string): string {
  if (input.length !== 4) throw malformed(`${what} must be 4 bytes`);
  return ipv4ToString(input);
}

export function decodeIpv4List(input: Uint8Array, what: string): string[] {
  if (input.length % 4 !== 0) throw malformed(`${what} length is not a multiple of 4`);
  const out: string[] = [];
  for (let i = 0; i < input.length; i += 4) out.push(ipv4ToString(input, i));
  return out;
}
