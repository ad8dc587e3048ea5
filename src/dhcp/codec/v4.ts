// DHCPv4 packet codec (RFC 2131 §2, RFC 2132, RFC 3396, option overload RFC 2132 §9.3).
// Pure: bytes ↔ values, no I/O. decodeV4 throws only ZtpError (DHCP_TRUNCATED, DHCP_MALFORMED,
// DHCP_OPTION_LOOP); encodeV4 throws only ZtpError (DHCP_ENCODE_FAILED).
//
// RFC 2131 §2, Figure 1: format of a DHCP message
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//    +---------------+---------------+---------------+---------------+
//    |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
//    +---------------+---------------+---------------+---------------+
//    |                            xid (4)                            |
//    +-------------------------------+-------------------------------+
//    |           secs (2)            |           flags (2)           |
//    +-------------------------------+-------------------------------+
//    |                          ciaddr  (4)                          |
//    |                          yiaddr  (4)                          |
//    |                          siaddr  (4)                          |
//    |                          giaddr  (4)                          |
//    +---------------------------------------------------------------+
//    |                          chaddr  (16)                         |
//    |                          sname   (64)                         |
//    |                          file    (128)                        |
//    +---------------------------------------------------------------+
//    |                          options (variable)                   |
//    +---------------------------------------------------------------+
// The options field starts with the magic cookie 99.130.83.99 (RFC 2131 §3), then
// code/length/value triples; 0 is PAD (one byte), 255 is END (one byte).
//
// RFC 3396 §4-§7: an option longer than 255 bytes is split into several instances of the same
// code; a receiver concatenates all instances of a code, in the order: options field, then
// `file`, then `sname` (when option 52 overloads them). This codec always concatenates
// (every option, as RFC 3396 §7 requires) and splits on encode.
//
// RFC 2132 §9.3 option overload (52): value 1 = `file` holds options, 2 = `sname`, 3 = both.
// It must appear in the options field only; an overload option inside an overloaded field is a
// loop (DHCP_OPTION_LOOP).
import { ZtpError } from '../../errors.js';
import { asBuffer, encodeFailed, ipv4ToNumber, ipv4ToString, malformed, truncated } from './bytes.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const MAGIC_COOKIE = 0x63825363;
export const HEADER_LENGTH = 236;
/** RFC 2131 §2: a client must accept messages with at least 312 option bytes: 576 total. */
export const MIN_MAX_MESSAGE_SIZE = 576;
/** Anything larger than this is not a DHCP packet we want to parse (UDP max is 65507). */
export const MAX_PACKET_LENGTH = 8192;
/** BOOTP relays and some clients drop replies shorter than the BOOTP minimum (RFC 1542 §2.1). */
export const BOOTP_MIN_LENGTH = 300;

export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageTypeName = keyof typeof MessageType;
export const MESSAGE_TYPE_NAMES: Record<number, MessageTypeName> = Object.fromEntries(
  Object.entries(MessageType).map(([k, v]) => [v, k as MessageTypeName]),
) as Record<number, MessageTypeName>;

/** Option codes this suite reads or writes (RFC 2132 unless noted). */
export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  MTU: 26,
  BROADCAST: 28,
  NTP: 42,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77, // RFC 3004
  RELAY_AGENT_INFO: 82, // RFC 3046
  CLIENT_ARCH: 93, // RFC 4578
  CLIENT_NDI: 94, // RFC 4578
  CLIENT_UUID: 97, // RFC 4578
  SZTP_REDIRECT: 143, // RFC 8572 §8.3
  END: 255,
} as const;

export interface DhcpOption {
  code: number;
  data: Buffer;
}

export interface DhcpV4Packet {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** all 16 bytes of chaddr; the hardware address is the first `hlen` */
  chaddr: Buffer;
  /** server host name, up to 63 bytes (latin1), '' when the field carries options */
  sname: string;
  /** boot file name, up to 127 bytes (latin1), '' when the field carries options */
  file: string;
  /** one entry per code, in order of first appearance, instances concatenated (RFC 3396) */
  options: DhcpOption[];
}

export function getOption(packet: { options: DhcpOption[] }, code: number): Buffer | undefined {
  for (const o of packet.options) if (o.code === code) return o.data;
  return undefined;
}

/** Decodes one DHCPv4 message. Accepts any Uint8Array view (non-zero byteOffset included). */
export function decodeV4(input: Uint8Array): DhcpV4Packet {
  if (!(input instanceof Uint8Array)) throw malformed('not a byte array');
  const buf = asBuffer(input);
  if (buf.length > MAX_PACKET_LENGTH) throw malformed(`oversized packet (${buf.length} bytes)`, { length: buf.length });
  if (buf.length < HEADER_LENGTH + 4) throw truncated(`${buf.length} bytes, need at least ${HEADER_LENGTH + 4}`, { length: buf.length });
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new ZtpError('DHCP_WRONG_OP', `DHCP packet has op ${op}`, { details: { op } });
  const hlen = buf[2]!;
  if (hlen > 16) throw malformed(`hlen ${hlen} exceeds 16`, { hlen });
  if (buf.readUInt32BE(HEADER_LENGTH) !== MAGIC_COOKIE) throw malformed('missing magic cookie (BOOTP is not served)');

  // One copy of the packet (never alias the caller's, possibly pooled, receive buffer); option
  // values and chaddr are views into it.
  const own = Buffer.from(buf);
  const collected = new Map<number, Buffer[]>();
  const order: number[] = [];
  const overload = readOptions(own, HEADER_LENGTH + 4, own.length, 'options', collected, order);
  let sname = '';
  let file = '';
  // RFC 2132 §9.3 / RFC 3396 §5: concatenation order is options, then file, then sname.
  if (overload & 1) readOptions(own, 108, 236, 'file', collected, order);
  else file = cString(buf, 108, 236);
  if (overload & 2) readOptions(own, 44, 108, 'sname', collected, order);
  else sname = cString(buf, 44, 108);

  const options = order.map((code) => {
    const parts = collected.get(code)!;
    return { code, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts) };
  });
  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ipv4ToString(buf, 12),
    yiaddr: ipv4ToString(buf, 16),
    siaddr: ipv4ToString(buf, 20),
    giaddr: ipv4ToString(buf, 24),
    chaddr: own.subarray(28, 44),
    sname,
    file,
    options,
  };
}

function cString(buf: Buffer, start: number, end: number): string {
  let stop = start;
  while (stop < end && buf[stop] !== 0) stop++;
  return buf.toString('latin1', start, stop);
}

/** Reads TLVs in [start, end); returns the overload value when reading the main options field. */
function readOptions(buf: Buffer, start: number, end: number, field: 'options' | 'file' | 'sname', collected: Map<number, Buffer[]>, order: number[]): number {
  let overload = 0;
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) return overload;
    if (i + 1 >= end) throw truncated(`option ${code} in ${field} has no length byte`, { code, field });
    const len = buf[i + 1]!;
    if (i + 2 + len > end) throw truncated(`option ${code} in ${field} runs past the end (${len} bytes)`, { code, field });
    if (code === Opt.OVERLOAD) {
      if (field !== 'options') throw new ZtpError('DHCP_OPTION_LOOP', `option overload (52) inside the ${field} field`, { details: { field } });
      if (len !== 1 || buf[i + 2]! < 1 || buf[i + 2]! > 3) throw malformed('option overload (52) must be one byte 1..3');
      if (overload !== 0 && overload !== buf[i + 2]) throw new ZtpError('DHCP_OPTION_LOOP', 'conflicting option overload (52) instances');
      overload = buf[i + 2]!;
    }
    let parts = collected.get(code);
    if (!parts) {
      parts = [];
      collected.set(code, parts);
      order.push(code);
    }
    parts.push(buf.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  // A missing END is tolerated (several embedded clients omit it when the packet ends exactly).
  return overload;
}

export interface EncodeV4Options {
  /** the client's maximum DHCP message size (option 57), default 576 */
  maxSize?: number;
  /** allow spilling options into file/sname with option 52 when they do not fit */
  allowOverload?: boolean;
}

/** One option instance on the wire: code, length, up to 255 data bytes. */
function* instances(code: number, data: Buffer, room: () => number): Generator<Buffer> {
  if (data.length === 0) {
    yield Buffer.from([code, 0]);
    return;
  }
  let offset = 0;
  while (offset < data.length) {
    const take = Math.min(255, data.length - offset, Math.max(1, room() - 2));
    const tlv = Buffer.allocUnsafe(2 + take);
    tlv[0] = code;
    tlv[1] = take;
    data.copy(tlv, 2, offset, offset + take);
    offset += take;
    yield tlv;
  }
}

const EMPTY = Buffer.alloc(0);

function writeAddress(out: Buffer, offset: number, ip: string, field: string): void {
  let n: number;
  try {
    n = ipv4ToNumber(ip);
  } catch {
    throw encodeFailed(`${field} "${ip}" is not an IPv4 address`);
  }
  out.writeUInt32BE(n, offset);
}

/**
 * Encodes a DHCPv4 message. Options longer than 255 bytes are split into consecutive instances
 * (RFC 3396 §6); when they exceed `maxSize` and `allowOverload` is set, the remainder goes into
 * `file` then `sname` (RFC 2132 §9.3) provided those fields are empty.
 */
export function encodeV4(packet: DhcpV4Packet, opts: EncodeV4Options = {}): Buffer {
  const maxSize = Math.max(MIN_MAX_MESSAGE_SIZE, Math.min(opts.maxSize ?? MIN_MAX_MESSAGE_SIZE, 65507));
  let total = 0;
  for (const o of packet.options) {
    if (!Number.isInteger(o.code) || o.code <= Opt.PAD || o.code >= Opt.END) throw encodeFailed(`option code ${o.code} is not encodable`, { code: o.code });
    if (o.code === Opt.OVERLOAD) throw encodeFailed('option 52 is set by the encoder itself');
    total += o.data.length + 2 * Math.max(1, Math.ceil(o.data.length / 255));
  }
  if (packet.chaddr.length > 16) throw encodeFailed('chaddr longer than 16 bytes');
  const sname = packet.sname === '' ? EMPTY : Buffer.from(packet.sname, 'latin1');
  const file = packet.file === '' ? EMPTY : Buffer.from(packet.file, 'latin1');
  if (sname.length > 63 || sname.includes(0)) throw encodeFailed('sname longer than 63 bytes or contains NUL');
  if (file.length > 127 || file.includes(0)) throw encodeFailed('file longer than 127 bytes or contains NUL');
  const mainRoom = maxSize - HEADER_LENGTH - 4 - 1; // END
  const single = total <= mainRoom || !opts.allowOverload;
  const size = HEADER_LENGTH + 4 + total + 1;
  if (single && size > 65507) throw encodeFailed(`packet of ${size} bytes exceeds UDP`, { size });
  // One zero-filled buffer (the padding of chaddr, sname, file and the packet is zeros), the
  // header written in place: this runs once per reply.
  const out = Buffer.alloc(single ? Math.max(size, BOOTP_MIN_LENGTH) : HEADER_LENGTH + 4);
  out[0] = packet.op;
  out[1] = packet.htype;
  out[2] = packet.hlen;
  out[3] = packet.hops;
  out.writeUInt32BE(packet.xid >>> 0, 4);
  out.writeUInt16BE(packet.secs & 0xffff, 8);
  out.writeUInt16BE(packet.flags & 0xffff, 10);
  writeAddress(out, 12, packet.ciaddr, 'ciaddr');
  writeAddress(out, 16, packet.yiaddr, 'yiaddr');
  writeAddress(out, 20, packet.siaddr, 'siaddr');
  writeAddress(out, 24, packet.giaddr, 'giaddr');
  packet.chaddr.copy(out, 28);
  sname.copy(out, 44);
  file.copy(out, 108);
  out.writeUInt32BE(MAGIC_COOKIE, HEADER_LENGTH);
  if (single) {
    // Each option split into <=255-byte instances, then END; the rest is padding.
    let at = HEADER_LENGTH + 4;
    for (const o of packet.options) {
      const data = o.data;
      if (data.length === 0) {
        out[at++] = o.code;
        out[at++] = 0;
        continue;
      }
      for (let offset = 0; offset < data.length; ) {
        const take = Math.min(255, data.length - offset);
        out[at++] = o.code;
        out[at++] = take;
        data.copy(out, at, offset, offset + take);
        at += take;
        offset += take;
      }
    }
    out[at] = Opt.END;
    return out;
  }
  const header = out;
  // Overload: fill the options field (keeping 3 bytes for option 52), then file, then sname.
  const fields = [
    { name: 'options', room: mainRoom - 3, parts: [] as Buffer[], used: false },
    { name: 'file', room: file.length === 0 ? 127 : 0, parts: [] as Buffer[], used: false },
    { name: 'sname', room: sname.length === 0 ? 63 : 0, parts: [] as Buffer[], used: false },
  ];
  let f = 0;
  for (const o of packet.options) {
    const gen = instances(o.code, o.data, () => {
      while (f < fields.length && fields[f]!.room < 3) f++;
      return f < fields.length ? fields[f]!.room : 0;
    });
    for (const tlv of gen) {
      const field = fields[f];
      if (!field || field.room < tlv.length) throw encodeFailed(`options do not fit in ${maxSize} bytes even with overload`, { maxSize });
      field.parts.push(tlv);
      field.room -= tlv.length;
      field.used = true;
    }
  }
  const overload = (fields[1]!.used ? 1 : 0) | (fields[2]!.used ? 2 : 0);
  const packed = Buffer.concat([header, Buffer.from([Opt.OVERLOAD, 1, overload]), ...fields[0]!.parts, Buffer.from([Opt.END])]);
  if (fields[1]!.used) Buffer.concat([...fields[1]!.parts, Buffer.from([Opt.END])]).copy(packed, 108);
  if (fields[2]!.used) Buffer.concat([...fields[2]!.parts, Buffer.from([Opt.END])]).copy(packed, 44);
  return packed.length < BOOTP_MIN_LENGTH ? Buffer.concat([packed, Buffer.alloc(BOOTP_MIN_LENGTH - packed.length)]) : packed;
}
