// Byte ranges (RFC 9110 §14): parsing a Range header into satisfiable byte spans, the policy for
// hostile range sets, and the framing of single- and multi-part 206 responses. Pure: no I/O.
//
// RFC 9110 §14.1.1 Range Specifiers
//   ranges-specifier = range-unit "=" range-set
//   range-set        = 1#range-spec
//   range-spec       = int-range / suffix-range / other-range
//   int-range        = first-pos "-" [ last-pos ]
//   first-pos        = 1*DIGIT
//   last-pos         = 1*DIGIT
//   suffix-range     = "-" suffix-length
//   suffix-length    = 1*DIGIT
//   "A range-spec is invalid if the last-pos value is present and less than the first-pos."
//   "An int-range is satisfiable if the first-pos is less than the current length of the
//    selected representation. A suffix-range is satisfiable if the suffix-length is non-zero."
//   "A range-set is satisfiable if at least one range-spec within it is satisfiable."
//
// RFC 9110 §14.1.2 Byte Ranges: "If the selected representation is shorter than the specified
//   suffix-length, the entire representation is used." "If the last-pos value is absent, or if the
//   value is greater than or equal to the current length of the representation data, the byte
//   range is interpreted as the remainder of the representation."
//
// RFC 9110 §14.2 Range: "A server MUST ignore a Range header field received with a request method
//   that is unrecognized or for which range handling is not defined. For this specification, GET is
//   the only method for which range handling is defined." "An origin server MUST ignore a Range
//   header field that contains a range unit it does not understand." "A server that supports range
//   requests MAY ignore or reject a Range header field that contains an invalid ranges-specifier,
//   a ranges-specifier with more than two overlapping ranges, or a set of many small ranges that
//   are not listed in ascending order, since these are indications of either a broken client or a
//   deliberate denial-of-service attack." "A server MAY ignore the Range header field." "When
//   multiple ranges are requested, a server MAY coalesce any of the ranges that overlap, or that
//   are separated by a gap that is smaller than the overhead of sending multiple parts".
//
// RFC 9110 §15.3.7 206 Partial Content, §14.6 multipart/byteranges, §15.5.17 416 Range Not
//   Satisfiable: "the server SHOULD generate a Content-Range header field specifying the current
//   length of the selected representation" (Content-Range: bytes */<length>).
//
// Our policy (the same as nginx's and Apache's): syntax errors, unknown units and too many ranges
// make us ignore the header (200 with the whole file); overlapping or adjacent ranges are
// coalesced, so a client can never make us send more bytes than the file holds.

/** A satisfiable byte span; `end` is inclusive, as on the wire. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeResult =
  /** serve the whole representation (no header, header ignored: why says which) */
  | { kind: 'ignore'; why: 'absent' | 'syntax' | 'unit' | 'too-many' }
  /** 416 with Content-Range: bytes *\/size */
  | { kind: 'unsatisfiable' }
  /** 206; one range → single part, several → multipart/byteranges */
  | { kind: 'ranges'; ranges: ByteRange[]; coalesced: boolean };

export interface RangePolicy {
  /** more range-specs than this and the header is ignored (nginx max_ranges, Apache MaxRanges) */
  maxRanges: number;
  /** longest Range header we parse; beyond it the header is ignored */
  maxHeaderLength: number;
}

export const DEFAULT_RANGE_POLICY: RangePolicy = { maxRanges: 64, maxHeaderLength: 4096 };

const DIGITS = /^[0-9]+$/;

/** 1*DIGIT as a number; digits beyond 2^53 saturate, which only ever makes a range larger. */
function pos(text: string): number {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

/**
 * Evaluates a Range header value against a representation of `size` bytes. Never throws.
 * The caller decides applicability (GET only, If-Range); this is only §14.1 and §14.2.
 */
export function parseRange(header: string | undefined, size: number, policy: RangePolicy = DEFAULT_RANGE_POLICY): RangeResult {
  if (header === undefined) return { kind: 'ignore', why: 'absent' };
  if (header.length > policy.maxHeaderLength) return { kind: 'ignore', why: 'too-many' };
  const eq = header.indexOf('=');
  if (eq < 0) return { kind: 'ignore', why: 'syntax' };
  const unit = header.slice(0, eq).trim();
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(unit)) return { kind: 'ignore', why: 'syntax' };
  // range units are case-insensitive (§14.1)
  if (unit.toLowerCase() !== 'bytes') return { kind: 'ignore', why: 'unit' };
  // 1#element: empty list elements are allowed and ignored (§5.6.1), at least one must be present.
  const specs = header
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (specs.length === 0) return { kind: 'ignore', why: 'syntax' };
  if (specs.length > policy.maxRanges) return { kind: 'ignore', why: 'too-many' };

  const satisfiable: ByteRange[] = [];
  for (const spec of specs) {
    const dash = spec.indexOf('-');
    if (dash < 0) return { kind: 'ignore', why: 'syntax' };
    const first = spec.slice(0, dash);
    const last = spec.slice(dash + 1);
    if (first === '') {
      // suffix-range
      if (!DIGITS.test(last)) return { kind: 'ignore', why: 'syntax' };
      const suffix = pos(last);
      if (suffix === 0 || size === 0) continue;
      satisfiable.push({ start: Math.max(0, size - suffix), end: size - 1 });
      continue;
    }
    if (!DIGITS.test(first) || (last !== '' && !DIGITS.test(last))) return { kind: 'ignore', why: 'syntax' };
    const start = pos(first);
    const end = last === '' ? Number.MAX_SAFE_INTEGER : pos(last);
    if (end < start) return { kind: 'ignore', why: 'syntax' };
    if (start >= size) continue;
    satisfiable.push({ start, end: Math.min(end, size - 1) });
  }
  if (satisfiable.length === 0) return { kind: 'unsatisfiable' };
  const merged = coalesce(satisfiable);
  return { kind: 'ranges', ranges: merged, coalesced: merged.length !== satisfiable.length };
}

/**
 * Merges overlapping and adjacent ranges (§14.2 "MAY coalesce"). Ranges that overlap nothing keep
 * the client's order, as §14.2 asks ("in the same order that the corresponding range-spec
 * appeared"); once anything was merged the result is in ascending order.
 */
export function coalesce(ranges: ByteRange[]): ByteRange[] {
  if (ranges.length < 2) return ranges.slice();
  const sorted = ranges.slice().sort((a, b) => a.start - b.start || a.end - b.end);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev && r.start <= prev.end + 1) prev.end = Math.max(prev.end, r.end);
    else out.push({ ...r });
  }
  return out.length === ranges.length ? ranges.map((r) => ({ ...r })) : out;
}

/** Content-Range for one part (§14.4): `bytes 0-499/1234`. */
export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}

/** Content-Range of a 416 (§15.5.17): `bytes *\/1234`. */
export function unsatisfiedRange(size: number): string {
  return `bytes */${size}`;
}

export function rangeLength(r: ByteRange): number {
  return r.end - r.start + 1;
}

/**
 * multipart/byteranges framing (RFC 9110 §14.6, RFC 2046 §5.1.1): each part is
 *   CRLF "--" boundary CRLF  Content-Type: <type> CRLF  Content-Range: <range> CRLF  CRLF  <bytes>
 * and the body ends with  CRLF "--" boundary "--" CRLF.
 * The part headers are computed up front so the response carries an exact Content-Length.
 */
export interface MultipartPlan {
  contentType: string;
  /** the header block preceding each part's bytes, in order */
  heads: string[];
  tail: string;
  contentLength: number;
}

export function planMultipart(ranges: ByteRange[], size: number, partType: string, boundary: string): MultipartPlan {
  const heads = ranges.map((r) => `\r\n--${boundary}\r\nContent-Type: ${partType}\r\nContent-Range: ${contentRange(r, size)}\r\n\r\n`);
  const tail = `\r\n--${boundary}--\r\n`;
  let contentLength = Buffer.byteLength(tail);
  ranges.forEach((r, i) => (contentLength += Buffer.byteLength(heads[i]!) + rangeLength(r)));
  return { contentType: `multipart/byteranges; boundary=${boundary}`, heads, tail, contentLength };
}
