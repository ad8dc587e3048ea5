// TFTP packets (RFC 1350) with option extension (RFC 2347), block size (RFC 2348), timeout and
// transfer size (RFC 2349). Pure: bytes ↔ values, no I/O. Decoding throws only ZtpError
// ('TFTP_MALFORMED'), whatever the input (property-tested in test/tftp/codec.test.ts).
import { ZtpError } from '../errors.js';

/**
 * RFC 1350 §5:
 *   opcode  operation
 *     1     Read request (RRQ)
 *     2     Write request (WRQ)
 *     3     Data (DATA)
 *     4     Acknowledgment (ACK)
 *     5     Error (ERROR)
 * RFC 2347 §2: "6  Option Acknowledgment (OACK)".
 */
export const Op = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/**
 * RFC 1350 Appendix, "Error Codes":
 *   0 Not defined, see error message (if any).   1 File not found.   2 Access violation.
 *   3 Disk full or allocation exceeded.           4 Illegal TFTP operation.
 *   5 Unknown transfer ID.   6 File already exists.   7 No such user.
 * RFC 2347 §2: "8 ... the client terminates the transfer" when it refuses the OACK's options
 * (the server may also send it when it refuses a request's options).
 */
export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

export type TransferMode = 'netascii' | 'octet' | 'mail';

/** Option names are case-insensitive (RFC 2347 §2): decoded lowercase, in wire order. */
export interface TftpOption {
  name: string;
  value: string;
}

export interface TftpRequest {
  filename: string;
  mode: TransferMode;
  options: TftpOption[];
}

export type TftpPacket =
  | ({ op: 'RRQ' } & TftpRequest)
  | ({ op: 'WRQ' } & TftpRequest)
  | { op: 'DATA'; block: number; data: Buffer }
  | { op: 'ACK'; block: number }
  | { op: 'ERROR'; code: number; message: string }
  | { op: 'OACK'; options: TftpOption[] };

/** RFC 2348 §2: "Valid values range between "8" and "65464" octets, inclusive." */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
/** RFC 1350 §2: "each data packet contains one block of data ... 512 bytes long". */
export const DEFAULT_BLKSIZE = 512;
/** RFC 2349 §2 (timeout): "Valid values range between "1" and "255" seconds, inclusive." */
export const MIN_TIMEOUT_S = 1;
export const MAX_TIMEOUT_S = 255;
/** RFC 2347 §2: "the request packet ... may not exceed 512 octets". Larger requests are refused. */
export const MAX_REQUEST_BYTES = 512;
/** The longest DATA packet: 4 header bytes + the largest block. */
export const MAX_PACKET_BYTES = 4 + MAX_BLKSIZE;

function malformed(reason: string, details: Record<string, unknown> = {}): ZtpError {
  return new ZtpError('TFTP_MALFORMED', `malformed TFTP packet: ${reason}`, { details: { reason, ...details } });
}

/**
 * Splits the NUL-terminated strings of a request or OACK, starting at `offset`.
 * RFC 1350 §5: "The file name is a sequence of bytes in netascii terminated by a zero byte."
 * Every field must be terminated; bytes after the last NUL are an error.
 */
function zeroStrings(buf: Buffer, offset: number): string[] {
  const out: string[] = [];
  let start = offset;
  for (let i = offset; i < buf.length; i++) {
    if (buf[i] === 0) {
      out.push(buf.toString('latin1', start, i));
      start = i + 1;
    }
  }
  if (start !== buf.length) throw malformed('unterminated string field');
  return out;
}

function decodeOptions(fields: string[]): TftpOption[] {
  // RFC 2347 §2: options come as "opt1 0 value1 0" pairs.
  if (fields.length % 2 !== 0) throw malformed('option without a value');
  const options: TftpOption[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!.toLowerCase();
    if (name === '') throw malformed('empty option name');
    options.push({ name, value: fields[i + 1]! });
  }
  return options;
}

const MODES: Record<string, TransferMode> = { netascii: 'netascii', octet: 'octet', mail: 'mail' };

/** Decodes one datagram. Works on any Buffer view (non-zero byteOffset included). */
export function decodeTftp(buf: Buffer): TftpPacket {
  if (buf.length < 2) throw malformed('shorter than an opcode', { length: buf.length });
  const op = buf.readUInt16BE(0);
  // Every packet but an OACK has at least 4 bytes; an OACK at least one option (RFC 2347 §2).
  if (buf.length < 4) throw malformed(op === Op.OACK ? 'OACK without options' : 'shorter than 4 bytes', { length: buf.length });
  switch (op) {
    case Op.RRQ:
    case Op.WRQ: {
      //   2 bytes     string    1 byte     string   1 byte
      //  ------------------------------------------------
      // | Opcode |  Filename  |   0  |    Mode    |   0  |   (RFC 1350 Figure 5-1)
      //  ------------------------------------------------
      // followed by  | opt1 | 0 | value1 | 0 | ... (RFC 2347 §2)
      if (buf.length > MAX_REQUEST_BYTES) throw malformed('request longer than 512 bytes', { length: buf.length });
      const fields = zeroStrings(buf, 2);
      if (fields.length < 2) throw malformed('request without filename and mode');
      const filename = fields[0]!;
      if (filename === '') throw malformed('empty filename');
      // RFC 1350 §5: "The mode field contains the string "netascii", "octet", or "mail" ...
      // in any combination of upper and lower case".
      const mode = MODES[fields[1]!.toLowerCase()];
      if (!mode) throw malformed('unknown transfer mode', { mode: fields[1]!.slice(0, 32) });
      const request: TftpRequest = { filename, mode, options: decodeOptions(fields.slice(2)) };
      return op === Op.RRQ ? { op: 'RRQ', ...request } : { op: 'WRQ', ...request };
    }
    case Op.DATA:
      //   2 bytes     2 bytes      n bytes
      //  ----------------------------------
      // | Opcode |   Block #  |   Data     |   (RFC 1350 Figure 5-2)
      //  ----------------------------------
      if (buf.length > MAX_PACKET_BYTES) throw malformed('DATA larger than the largest block size', { length: buf.length });
      return { op: 'DATA', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Op.ACK:
      //   2 bytes     2 bytes
      //  ---------------------
      // | Opcode |   Block #  |   (RFC 1350 Figure 5-3)
      //  ---------------------
      if (buf.length !== 4) throw malformed('ACK is not 4 bytes', { length: buf.length });
      return { op: 'ACK', block: buf.readUInt16BE(2) };
    case Op.ERROR: {
      //   2 bytes     2 bytes      string    1 byte
      //  -----------------------------------------
      // | Opcode |  ErrorCode |   ErrMsg   |   0  |   (RFC 1350 Figure 5-4)
      //  -----------------------------------------
      const code = buf.readUInt16BE(2);
      // Quirk: some clients omit the final NUL (or send no message at all); the code is what matters.
      const end = buf.indexOf(0, 4);
      const message = buf.toString('latin1', 4, end >= 0 ? end : buf.length).slice(0, 512);
      return { op: 'ERROR', code, message };
    }
    case Op.OACK: {
      // | opc | opt1 | 0 | value1 | 0 | optN | 0 | valueN | 0 |   (RFC 2347 §2)
      if (buf.length > MAX_REQUEST_BYTES) throw malformed('OACK longer than 512 bytes', { length: buf.length });
      return { op: 'OACK', options: decodeOptions(zeroStrings(buf, 2)) };
    }
    default:
      throw malformed('unknown opcode', { opcode: op });
  }
}

function u16(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new ZtpError('TFTP_MALFORMED', `${what} ${n} does not fit 16 bits`);
  return n;
}

function zstr(s: string): Buffer {
  if (s.includes('\0')) throw new ZtpError('TFTP_MALFORMED', 'a TFTP string field cannot contain NUL');
  return Buffer.from(s + '\0', 'latin1');
}

function head(op: number, second?: number): Buffer {
  const b = Buffer.allocUnsafe(second === undefined ? 2 : 4);
  b.writeUInt16BE(op, 0);
  if (second !== undefined) b.writeUInt16BE(second, 2);
  return b;
}

export function encodeTftp(p: TftpPacket): Buffer {
  switch (p.op) {
    case 'RRQ':
    case 'WRQ':
      return Buffer.concat([head(p.op === 'RRQ' ? Op.RRQ : Op.WRQ), zstr(p.filename), zstr(p.mode), ...p.options.flatMap((o) => [zstr(o.name), zstr(o.value)])]);
    case 'DATA':
      return Buffer.concat([head(Op.DATA, u16(p.block, 'block')), p.data]);
    case 'ACK':
      return head(Op.ACK, u16(p.block, 'block'));
    case 'ERROR':
      return Buffer.concat([head(Op.ERROR, u16(p.code, 'error code')), zstr(p.message)]);
    case 'OACK':
      return Buffer.concat([head(Op.OACK), ...p.options.flatMap((o) => [zstr(o.name), zstr(o.value)])]);
  }
}

/** DATA header + payload written into one buffer (the hot path: no concat). */
export function encodeData(block: number, payload: Buffer, into?: Buffer): Buffer {
  const out = into && into.length >= 4 + payload.length ? into.subarray(0, 4 + payload.length) : Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt16BE(Op.DATA, 0);
  out.writeUInt16BE(u16(block, 'block'), 2);
  if (payload.buffer !== out.buffer || payload.byteOffset !== out.byteOffset + 4) payload.copy(out, 4);
  return out;
}

/** What the server agreed to, and the OACK to send (undefined: no option accepted, RFC 1350 flow). */
export interface Negotiated {
  blksize: number;
  timeoutS: number;
  /** RFC 2349 tsize: the file size announced, when the client asked */
  tsize?: number | undefined;
  oack?: TftpOption[] | undefined;
  /** options the client sent that we did not take, with why (for the log) */
  ignored: { name: string; value: string; why: string }[];
}

export interface NegotiationLimits {
  /** the largest block size we accept (≤ 65464) */
  maxBlksize: number;
  /** our retransmit timeout when the client does not ask for one, seconds */
  defaultTimeoutS: number;
  /** size of the file being read */
  fileSize: number;
}

const DECIMAL = /^[0-9]{1,10}$/;

/**
 * Option negotiation for a read request (RFC 2347 §2, RFC 2348, RFC 2349). Pure.
 * RFC 2347: "Options which the server does not support should be omitted from the OACK" and
 * "If the server ... does not support any of the requested options, [it] responds as per
 * RFC 1350". The OACK lists accepted options in the order the client sent them; a repeated
 * option counts once (the first).
 */
export function negotiateRead(options: TftpOption[], limits: NegotiationLimits): Negotiated {
  const out: Negotiated = { blksize: DEFAULT_BLKSIZE, timeoutS: limits.defaultTimeoutS, ignored: [] };
  const oack: TftpOption[] = [];
  const seen = new Set<string>();
  for (const { name, value } of options) {
    if (seen.has(name)) {
      out.ignored.push({ name, value, why: 'repeated' });
      continue;
    }
    seen.add(name);
    const n = DECIMAL.test(value) ? Number(value) : NaN;
    switch (name) {
      case 'blksize':
        // RFC 2348 §2: "If the server is willing to accept the blocksize option, it sends an
        // OACK ... The specified value must be less than or equal to the value specified by
        // the client." Below 8 is not a valid request: ignore the option.
        if (!(n >= MIN_BLKSIZE)) {
          out.ignored.push({ name, value, why: `not a number ≥ ${MIN_BLKSIZE}` });
          break;
        }
        out.blksize = Math.min(n, limits.maxBlksize, MAX_BLKSIZE);
        oack.push({ name, value: String(out.blksize) });
        break;
      case 'timeout':
        // RFC 2349 §3.1: "If the server is willing to accept the timeout option, it sends an
        // OACK to the client. The specified timeout value must match the value specified by
        // the client." Out of 1..255: not accepted.
        if (!(n >= MIN_TIMEOUT_S && n <= MAX_TIMEOUT_S)) {
          out.ignored.push({ name, value, why: `not a number in ${MIN_TIMEOUT_S}..${MAX_TIMEOUT_S}` });
          break;
        }
        out.timeoutS = n;
        oack.push({ name, value: String(n) });
        break;
      case 'tsize':
        // RFC 2349 §4: "In Read Request packets, a size of "0" is specified in the request and
        // the size of the file, in octets, is returned in the OACK."
        if (Number.isNaN(n)) {
          out.ignored.push({ name, value, why: 'not a number' });
          break;
        }
        out.tsize = limits.fileSize;
        oack.push({ name, value: String(limits.fileSize) });
        break;
      default:
        out.ignored.push({ name, value, why: 'unsupported option' });
    }
  }
  if (oack.length > 0) out.oack = oack;
  return out;
}

/** RFC 1350 §6: the transfer ends with a DATA packet shorter than the block size. */
export function blockCount(fileSize: number, blksize: number): number {
  return Math.floor(fileSize / blksize) + 1;
}

/**
 * Block numbers are 16 bits (RFC 1350 §5). Files of 65535 blocks or more need them to wrap;
 * RFC 1350 does not define it, RFC 2348 §1 notes the limit. Like tftp-hpa and most PXE ROMs we
 * wrap to 0 after 65535, so the n-th block (1-based) goes out as n mod 65536.
 */
export function wireBlock(n: number): number {
  return n & 0xffff;
}
