// Conditional requests (RFC 9110 §13) for immutable, content-addressed images: the entity tag is
// the sha256 (a strong validator), Last-Modified is when the catalogue entry was written. Pure.
//
// RFC 9110 §8.8.3 ETag:  entity-tag = [ weak ] opaque-tag ; weak = %s"W/" ;
//   opaque-tag = DQUOTE *etagc DQUOTE ; etagc = %x21 / %x23-7E / obs-text
// §8.8.3.2 Comparison: "Strong comparison: two entity tags are equivalent if both are not weak
//   and their opaque-tags match character-by-character. Weak comparison: two entity tags are
//   equivalent if their opaque-tags match character-by-character, regardless of either or both
//   being tagged as "weak"."
//
// §13.2.2 Precedence of Preconditions (for a GET or HEAD on an existing resource):
//   1. If-Match present: if none of its tags match strongly → 412.
//   2. Else If-Unmodified-Since present (a valid HTTP-date): if Last-Modified is later → 412.
//   3. If-None-Match present: if a tag matches weakly (or is "*") → 304 for GET/HEAD.
//   4. Else, GET/HEAD with If-Modified-Since (a valid HTTP-date): if Last-Modified is not later
//      → 304.
//   5. GET with Range and If-Range: if If-Range does not match → ignore Range (200 full).
//   6. Otherwise perform the method.
// §13.1.4 If-Modified-Since: "A recipient MUST ignore the If-Modified-Since header field if the
//   received field value is not a valid HTTP-date, [or] the field value has more than one member".
// §13.1.5 If-Range: "A client MUST NOT generate an If-Range header field containing an entity
//   tag that is marked as weak." The condition is true when "the HTTP-date validator provided
//   exactly matches the Last-Modified field value" (and that is strong) or "the entity-tag
//   validator provided exactly matches the ETag field value ... using the strong comparison
//   function"; otherwise the server "MUST ignore the Range header field".
// §8.8.2.2: a Last-Modified date is a strong validator only if it is at least one second before
//   the Date of the response; our images are written once, so a date older than "now - 1 s" is.

export interface Validators {
  /** the strong entity tag including quotes, e.g. "\"<sha256>\"" */
  etag: string;
  /** epoch milliseconds of the representation's last modification */
  lastModified: number;
}

export interface ConditionalHeaders {
  ifMatch?: string | undefined;
  ifNoneMatch?: string | undefined;
  ifModifiedSince?: string | undefined;
  ifUnmodifiedSince?: string | undefined;
  ifRange?: string | undefined;
}

export type ConditionalOutcome =
  | { status: 412 }
  | { status: 304 }
  /** proceed; `useRange` false means a Range header must be ignored (If-Range failed) */
  | { status: 200; useRange: boolean };

interface EntityTag {
  weak: boolean;
  opaque: string;
}

const ETAG = /^(W\/)?("[\x21\x23-\x7e\x80-\xff]*")$/;

/** Parses `#entity-tag` (or "*" → 'any'); members that are not entity tags are skipped. */
export function parseEntityTags(value: string): EntityTag[] | 'any' {
  if (value.trim() === '*') return 'any';
  const tags: EntityTag[] = [];
  // opaque-tags cannot hold DQUOTE, so a tag ends at the next quote: scan instead of splitting on ','.
  const re = /\s*(W\/)?("[^"]*")\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value)) !== null) {
    if (m[0] === '') break;
    const full = (m[1] ?? '') + m[2]!;
    if (ETAG.test(full)) tags.push({ weak: m[1] !== undefined, opaque: m[2]! });
  }
  return tags;
}

function parseTag(value: string): EntityTag | undefined {
  const m = ETAG.exec(value.trim());
  return m ? { weak: m[1] !== undefined, opaque: m[2]! } : undefined;
}

/**
 * HTTP-date (§5.6.7): IMF-fixdate, or the obsolete RFC 850 and asctime forms, which recipients
 * must accept. Returns epoch ms, or undefined when the value is not one date.
 */
export function parseHttpDate(value: string): number | undefined {
  const v = value.trim();
  if (v.includes(',') && !/^[A-Za-z]{3,9}, /.test(v)) return undefined;
  const imf = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
  const rfc850 = /^[A-Z][a-z]{5,8}, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
  const asctime = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;
  if (!imf.test(v) && !rfc850.test(v) && !asctime.test(v)) return undefined;
  const t = Date.parse(asctime.test(v) ? v + ' GMT' : v);
  return Number.isNaN(t) ? undefined : t;
}

/** IMF-fixdate of an epoch time, whole seconds. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

const seconds = (ms: number) => Math.floor(ms / 1000);

/**
 * Evaluates the preconditions of a GET or HEAD (§13.2.2) on an existing image.
 * `now` is the response's Date, used to decide whether Last-Modified is a strong validator.
 */
export function evaluateConditionals(h: ConditionalHeaders, v: Validators, now: number): ConditionalOutcome {
  const current = parseTag(v.etag);
  // step 1
  if (h.ifMatch !== undefined) {
    const tags = parseEntityTags(h.ifMatch);
    const ok = tags === 'any' || (current !== undefined && !current.weak && tags.some((t) => !t.weak && t.opaque === current.opaque));
    if (!ok) return { status: 412 };
  } else if (h.ifUnmodifiedSince !== undefined) {
    // step 2
    const date = parseHttpDate(h.ifUnmodifiedSince);
    if (date !== undefined && seconds(v.lastModified) > seconds(date)) return { status: 412 };
  }
  // step 3
  if (h.ifNoneMatch !== undefined) {
    const tags = parseEntityTags(h.ifNoneMatch);
    const matched = tags === 'any' || (current !== undefined && tags.some((t) => t.opaque === current.opaque));
    if (matched) return { status: 304 };
  } else if (h.ifModifiedSince !== undefined) {
    // step 4
    const date = parseHttpDate(h.ifModifiedSince);
    if (date !== undefined && seconds(v.lastModified) <= seconds(date)) return { status: 304 };
  }
  // step 5
  if (h.ifRange !== undefined) return { status: 200, useRange: ifRangeMatches(h.ifRange, v, now) };
  return { status: 200, useRange: true };
}

/** §13.1.5: strong comparison for an entity tag; exact match of a strong date. */
export function ifRangeMatches(value: string, v: Validators, now: number): boolean {
  const trimmed = value.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith('W/')) {
    const tag = parseTag(trimmed);
    const current = parseTag(v.etag);
    return tag !== undefined && current !== undefined && !tag.weak && !current.weak && tag.opaque === current.opaque;
  }
  const date = parseHttpDate(trimmed);
  if (date === undefined) return false;
  const strongDate = seconds(now) - seconds(v.lastModified) >= 1;
  return strongDate && seconds(date) === seconds(v.lastModified);
}
