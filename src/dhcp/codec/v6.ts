// DHCPv6 message codec (RFC 8415). Pure: bytes ↔ values, no I/O. Decoders throw only ZtpError.
//
// RFC 8415 §8, client/server message:
//     0                   1                   2                   3
//     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//    |    msg-type   |               transaction-id                  |
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//    .                            options                            .
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// RFC 8415 §9, relay agent/server message (RELAY-FORW 12, RELAY-REPL 13):
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//    |    msg-type   |   hop-count   |                               |
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+         link-address (16)     |
//    |                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//    |                               |         peer-address (16)     |
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
//    .            options (variable number and length)   ....        .
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// RFC 8415 §21.1, option format:
//    |          option-code          |           option-len          |
//    |                          option-data (option-len octets)      |
import { asBuffer, copyOf, encodeFailed, ipv6ToBytes, ipv6ToString, malformed, truncated } from './bytes.js';

export const MsgV6 = {
  SOLICIT: 1,
  ADVERTISE: 2,
  REQUEST: 3,
  CONFIRM: 4,
  RENEW: 5,
  REBIND: 6,
  REPLY: 7,
  RELEASE: 8,
  DECLINE: 9,
  RECONFIGURE: 10,
  INFORMATION_REQUEST: 11,
  RELAY_FORW: 12,
  RELAY_REPL: 13,
} as const;
export const MSG_V6_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MsgV6).map(([k, v]) => [v, k]));

export const OptV6 = {
  CLIENTID: 1,
  SERVERID: 2,
  IA_NA: 3,
  IA_TA: 4,
  IAADDR: 5,
  ORO: 6,
  PREFERENCE: 7,
  ELAPSED_TIME: 8,
  RELAY_MSG: 9,
  STATUS_CODE: 13,
  RAPID_COMMIT: 14,
  USER_CLASS: 15,
  VENDOR_CLASS: 16,
  VENDOR_OPTS: 17,
  INTERFACE_ID: 18,
  DNS_SERVERS: 23,
  DOMAIN_LIST: 24,
  NTP_SERVER: 56,
  BOOTFILE_URL: 59, // RFC 5970 §3.1
  BOOTFILE_PARAM: 60, // RFC 5970 §3.2
  CLIENT_ARCH_TYPE: 61, // RFC 5970 §3.3
  NII: 62,
  SZTP_REDIRECT: 136, // RFC 8572 §8.4
} as const;

export const StatusV6 = { Success: 0, UnspecFail: 1, NoAddrsAvail: 2, NoBinding: 3, NotOnLink: 4, UseMulticast: 5 } as const;

/** RFC 8415 §7.6: relays forward at most this many hops. */
export const HOP_COUNT_LIMIT = 8;
export const MAX_V6_PACKET = 8192;

export interface OptionV6 {
  code: number;
  data: Buffer;
}

export interface ClientMessageV6 {
  kind: 'client';
  msgType: number;
  transactionId: number;
  options: OptionV6[];
}

export interface RelayMessageV6 {
  kind: 'relay';
  msgType: number;
  hopCount: number;
  linkAddress: string;
  peerAddress: string;
  options: OptionV6[];
}

export type MessageV6 = ClientMessageV6 | RelayMessageV6;

/** Decodes a TLV option list (RFC 8415 §21.1); duplicates are kept in order. */
export function decodeOptionsV6(input: Uint8Array, what = 'options'): OptionV6[] {
  const buf = asBuffer(input);
  const out: OptionV6[] = [];
  let i = 0;
  while (i < buf.length) {
    if (i + 4 > buf.length) throw truncated(`DHCPv6 ${what}: option header`);
    const code = buf.readUInt16BE(i);
    const len = buf.readUInt16BE(i + 2);
    if (i + 4 + len > buf.length) throw truncated(`DHCPv6 ${what}: option ${code} runs past the end`, { code });
    out.push({ code, data: copyOf(buf, i + 4, i + 4 + len) });
    i += 4 + len;
  }
  return out;
}

export function encodeOptionsV6(options: OptionV6[]): Buffer {
  const parts: Buffer[] = [];
  for (const o of options) {
    if (!Number.isInteger(o.code) || o.code < 0 || o.code > 0xffff) throw encodeFailed(`DHCPv6 option code ${o.code}`);
    if (o.data.length > 0xffff) throw encodeFailed(`DHCPv6 option ${o.code} longer than 65535 bytes`);
    const h = Buffer.alloc(4);
    h.writeUInt16BE(o.code, 0);
    h.writeUInt16BE(o.data.length, 2);
    parts.push(h, o.data);
  }
  return Buffer.concat(parts);
}

export function decodeV6(input: Uint8Array): MessageV6 {
  if (!(input instanceof Uint8Array)) throw malformed('not a byte array');
  const buf = asBuffer(input);
  if (buf.length > MAX_V6_PACKET) throw malformed(`oversized DHCPv6 packet (${buf.length} bytes)`);
  if (buf.length < 4) throw truncated(`DHCPv6 message of ${buf.length} bytes`);
  const msgType = buf[0]!;
  if (msgType === 0 || msgType > 13) throw malformed(`unknown DHCPv6 message type ${msgType}`, { msgType });
  if (msgType === MsgV6.RELAY_FORW || msgType === MsgV6.RELAY_REPL) {
    if (buf.length < 34) throw truncated('DHCPv6 relay header');
    return {
      kind: 'relay',
      msgType,
      hopCount: buf[1]!,
      linkAddress: ipv6ToString(buf, 2),
      peerAddress: ipv6ToString(buf, 18),
      options: decodeOptionsV6(buf.subarray(34), 'relay options'),
    };
  }
  return { kind: 'client', msgType, transactionId: buf.readUIntBE(1, 3), options: decodeOptionsV6(buf.subarray(4)) };
}

export function encodeV6(msg: MessageV6): Buffer {
  if (msg.kind === 'relay') {
    const h = Buffer.alloc(34);
    h[0] = msg.msgType;
    h[1] = msg.hopCount & 0xff;
    ipv6ToBytes(msg.linkAddress).copy(h, 2);
    ipv6ToBytes(msg.peerAddress).copy(h, 18);
    return Buffer.concat([h, encodeOptionsV6(msg.options)]);
  }
  if (msg.transactionId < 0 || msg.transactionId > 0xffffff) throw encodeFailed('DHCPv6 transaction-id exceeds 24 bits');
  const h = Buffer.alloc(4);
  h[0] = msg.msgType;
  h.writeUIntBE(msg.transactionId, 1, 3);
  return Buffer.concat([h, encodeOptionsV6(msg.options)]);
}

export function findV6(options: OptionV6[], code: number): Buffer | undefined {
  for (const o of options) if (o.code === code) return o.data;
  return undefined;
}

// RFC 8415 §21.4, IA_NA option:
//    |          OPTION_IA_NA         |          option-len           |
//    |                        IAID (4 octets)                        |
//    |                              T1                               |
//    |                              T2                               |
//    .                         IA_NA-options                         .
export interface IaNa {
  iaid: number;
  t1: number;
  t2: number;
  options: OptionV6[];
}

export function decodeIaNa(input: Uint8Array): IaNa {
  const buf = asBuffer(input);
  if (buf.length < 12) throw truncated('IA_NA shorter than 12 bytes');
  return { iaid: buf.readUInt32BE(0), t1: buf.readUInt32BE(4), t2: buf.readUInt32BE(8), options: decodeOptionsV6(buf.subarray(12), 'IA_NA options') };
}

export function encodeIaNa(ia: IaNa): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt32BE(ia.iaid >>> 0, 0);
  h.writeUInt32BE(ia.t1 >>> 0, 4);
  h.writeUInt32BE(ia.t2 >>> 0, 8);
  return Buffer.concat([h, encodeOptionsV6(ia.options)]);
}

// RFC 8415 §21.6, IA Address option:
//    |          OPTION_IAADDR        |          option-len           |
//    |                         IPv6-address (16 octets)              |
//    |                      preferred-lifetime                       |
//    |                        valid-lifetime                         |
//    .                        IAaddr-options                         .
export interface IaAddr {
  address: string;
  preferred: number;
  valid: number;
  options: OptionV6[];
}

export function decodeIaAddr(input: Uint8Array): IaAddr {
  const buf = asBuffer(input);
  if (buf.length < 24) throw truncated('IAADDR shorter than 24 bytes');
  return { address: ipv6ToString(buf, 0), preferred: buf.readUInt32BE(16), valid: buf.readUInt32BE(20), options: decodeOptionsV6(buf.subarray(24), 'IAADDR options') };
}

export function encodeIaAddr(a: IaAddr): Buffer {
  const h = Buffer.alloc(24);
  ipv6ToBytes(a.address).copy(h, 0);
  h.writeUInt32BE(a.preferred >>> 0, 16);
  h.writeUInt32BE(a.valid >>> 0, 20);
  return Buffer.concat([h, encodeOptionsV6(a.options)]);
}

// RFC 8415 §21.13, Status Code option: status-code (2 octets) + UTF-8 status-message.
export function encodeStatus(code: number, message: string): Buffer {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(code, 0);
  return Buffer.concat([h, Buffer.from(message, 'utf8')]);
}

export function decodeStatus(input: Uint8Array): { code: number; message: string } {
  const buf = asBuffer(input);
  if (buf.length < 2) throw truncated('status code');
  return { code: buf.readUInt16BE(0), message: buf.toString('utf8', 2) };
}

// RFC 8415 §21.7, Option Request option: a list of 16-bit option codes.
export function decodeOro(input: Uint8Array): number[] {
  const buf = asBuffer(input);
  if (buf.length % 2 !== 0) throw malformed('ORO length is odd');
  const out: number[] = [];
  for (let i = 0; i < buf.length; i += 2) out.push(buf.readUInt16BE(i));
  return out;
}

// RFC 8415 §21.15 user class: list of (user-class-len (2) + opaque data).
// RFC 8415 §21.16 vendor class:
//    |      OPTION_VENDOR_CLASS      |           option-len          |
//    |                       enterprise-number                       |
//    .                       vendor-class-data                       .   (list of len (2) + opaque)
export function decodeLengthPrefixedList16(input: Uint8Array, what: string): Buffer[] {
  const buf = asBuffer(input);
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    if (i + 2 > buf.length) throw truncated(`${what} entry length`);
    const len = buf.readUInt16BE(i);
    if (i + 2 + len > buf.length) throw truncated(`${what} entry runs past the option`);
    out.push(copyOf(buf, i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}

export function encodeLengthPrefixedList16(items: Buffer[]): Buffer {
  return Buffer.concat(
    items.flatMap((b) => {
      const h = Buffer.alloc(2);
      h.writeUInt16BE(b.length, 0);
      return [h, b];
    }),
  );
}

export interface VendorClassV6 {
  enterprise: number;
  data: Buffer[];
}

export function decodeVendorClassV6(input: Uint8Array): VendorClassV6 {
  const buf = asBuffer(input);
  if (buf.length < 4) throw truncated('vendor class enterprise number');
  return { enterprise: buf.readUInt32BE(0), data: decodeLengthPrefixedList16(buf.subarray(4), 'vendor class') };
}

export function encodeVendorClassV6(v: VendorClassV6): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(v.enterprise >>> 0, 0);
  return Buffer.concat([h, encodeLengthPrefixedList16(v.data)]);
}

export function encodeIpv6List(ips: string[]): Buffer {
  return Buffer.concat(ips.map(ipv6ToBytes));
}

/** RFC 1035 §3.1 domain names as used by option 24 (RFC 3646): labels, no compression. */
export function encodeDomainList(names: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const name of names) {
    for (const label of name.replace(/\.$/, '').split('.')) {
      if (label.length === 0 || label.length > 63) throw encodeFailed(`domain label "${label}"`);
      parts.push(Buffer.from([label.length]), Buffer.from(label, 'ascii'));
    }
    parts.push(Buffer.from([0]));
  }
  return Buffer.concat(parts);
}
