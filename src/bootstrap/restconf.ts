// RESTCONF (RFC 8040) wire codec for the two RFC 8572 RPCs: media types, input decoding
// (JSON and XML, strict per the YANG module, with the documented client quirks tolerated),
// output and error encoding. Pure: bytes and strings in, values out, no I/O.
import { createRequire } from 'node:module';
import type * as FastXmlParserModule from 'fast-xml-parser';
import { ZtpError, type ErrorCode } from '../errors.js';

export const NS_BOOTSTRAP = 'urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server';
export const NS_RESTCONF = 'urn:ietf:params:xml:ns:yang:ietf-restconf';
export const MODULE = 'ietf-sztp-bootstrap-server';

export type Encoding = 'json' | 'xml';

export const MEDIA_TYPE: Record<Encoding, string> = {
  json: 'application/yang-data+json',
  xml: 'application/yang-data+xml',
};

// RFC 8040 §5.2 names yang-data+json/+xml; RFC 8572's own examples once wrote "yang.data+xml".
// Plain application/json and application/xml are accepted from lenient clients.
const REQUEST_TYPES: Record<string, Encoding> = {
  'application/yang-data+json': 'json',
  'application/yang.data+json': 'json',
  'application/json': 'json',
  'application/yang-data+xml': 'xml',
  'application/yang.data+xml': 'xml',
  'application/xml': 'xml',
  'text/xml': 'xml',
};

/**
 * Header values already decided, per header: a fleet sends a handful of distinct Content-Type and
 * Accept values, parsed here once instead of on every request (issue 12). Refusals are not kept;
 * a map is cleared when full, so a client inventing values gains nothing but its own parsing.
 */
const decidedRequestTypes = new Map<string, Encoding | undefined>();
const decidedAccepts = new Map<string, Encoding>();
const MAX_DECIDED = 256;

function remember<V>(map: Map<string, V>, key: string, value: V): V {
  // Long values (up to the 16 KB header limit) are answered, not kept: the maps stay small.
  if (key.length > 200) return value;
  if (map.size >= MAX_DECIDED) map.clear();
  map.set(key, value);
  return value;
}

/** Encoding of a request body from its Content-Type; undefined header ⇒ undefined (no body expected). */
export function requestEncoding(contentType: string | undefined): Encoding | undefined {
  if (contentType === undefined) return undefined;
  const known = decidedRequestTypes.get(contentType);
  if (known !== undefined || decidedRequestTypes.has(contentType)) return known;
  return remember(decidedRequestTypes, contentType, parseRequestEncoding(contentType));
}

function parseRequestEncoding(contentType: string): Encoding | undefined {
  if (contentType.trim() === '') return undefined;
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  const enc = REQUEST_TYPES[base];
  if (!enc) throw new ZtpError('SZTP_UNSUPPORTED_MEDIA_TYPE', `unsupported media type "${base}"; use ${MEDIA_TYPE.json} or ${MEDIA_TYPE.xml}`);
  return enc;
}

/**
 * RFC 8040 §5.2: the response encoding follows Accept; a missing Accept (or * / *) means the
 * request's encoding, JSON when there was no body. An Accept naming neither is 406.
 */
export function responseEncoding(accept: string | undefined, requestEnc: Encoding | undefined): Encoding {
  const fallback = requestEnc ?? 'json';
  if (!accept) return fallback;
  // The answer depends on the fallback only through */* and application/*: part of the key.
  const key = fallback === 'json' ? accept : `xml\0${accept}`;
  return decidedAccepts.get(key) ?? remember(decidedAccepts, key, parseAccept(accept, fallback));
}

function parseAccept(accept: string, fallback: Encoding): Encoding {
  if (accept.trim() === '') return fallback;
  const ranges = accept
    .split(',')
    .map((part, index) => {
      const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      return { type: type ?? '', q: q ? Number(q.slice(2)) : 1, index };
    })
    .filter((r) => r.q > 0 && !Number.isNaN(r.q))
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const r of ranges) {
    if (r.type === '*/*' || r.type === 'application/*') return fallback;
    const enc = REQUEST_TYPES[r.type];
    if (enc) return enc;
  }
  throw new ZtpError('SZTP_NOT_ACCEPTABLE', `none of "${accept}" is available; use ${MEDIA_TYPE.json} or ${MEDIA_TYPE.xml}`);
}

// ---------------------------------------------------------------------------------------------
// Errors (RFC 8040 §7, §7.1 "ietf-restconf:errors")

interface RestconfErrorShape {
  status: number;
  type: 'transport' | 'rpc' | 'protocol' | 'application';
  tag: string;
}

/** RFC 8040 §7 maps error-tag to status; the catalogue code picks the tag. */
const RESTCONF_ERRORS: Partial<Record<ErrorCode, RestconfErrorShape>> = {
  SZTP_ACCESS_DENIED: { status: 401, type: 'protocol', tag: 'access-denied' },
  SZTP_MALFORMED_MESSAGE: { status: 400, type: 'rpc', tag: 'malformed-message' },
  SZTP_INVALID_VALUE: { status: 400, type: 'application', tag: 'invalid-value' },
  SZTP_UNKNOWN_ELEMENT: { status: 400, type: 'application', tag: 'unknown-element' },
  SZTP_MISSING_ELEMENT: { status: 400, type: 'application', tag: 'missing-element' },
  SZTP_UNSUPPORTED_MEDIA_TYPE: { status: 415, type: 'protocol', tag: 'invalid-value' },
  SZTP_NOT_ACCEPTABLE: { status: 406, type: 'protocol', tag: 'invalid-value' },
  SZTP_BODY_TOO_LARGE: { status: 413, type: 'transport', tag: 'too-big' },
  SZTP_NOT_FOUND: { status: 404, type: 'protocol', tag: 'invalid-value' },
  SZTP_METHOD_NOT_ALLOWED: { status: 405, type: 'protocol', tag: 'operation-not-supported' },
  SZTP_NO_BOOTSTRAP_DATA: { status: 404, type: 'application', tag: 'data-missing' },
  // RFC 8040 §7 has no tag for 429/503; resource-denied ("insufficient resources") is the
  // nearest, and the status plus Retry-After say the rest.
  SZTP_RATE_LIMITED: { status: 429, type: 'protocol', tag: 'resource-denied' },
  SZTP_BUSY: { status: 503, type: 'transport', tag: 'resource-denied' },
};
const INTERNAL: RestconfErrorShape = { status: 500, type: 'application', tag: 'operation-failed' };

export interface RestconfErrorReply {
  status: number;
  body: string;
  contentType: string;
}

/**
 * Each error entry carries only error-type, error-tag and error-message: the OPI agent decodes
 * strictly and the list is never empty. Below 500 the message says what was wrong; at 500 it is
 * generic (details go to the log, never to the peer).
 */
export function restconfError(err: unknown, enc: Encoding): RestconfErrorReply {
  const zerr = err instanceof ZtpError ? err : undefined;
  const shape = (zerr && RESTCONF_ERRORS[zerr.code]) ?? INTERNAL;
  // Busy is not a failure of ours worth hiding: say so, like any refusal below 500.
  const message = zerr && (shape.status < 500 || zerr.code === 'SZTP_BUSY') ? zerr.message : 'internal error';
  const entry = { 'error-type': shape.type, 'error-tag': shape.tag, 'error-message': message };
  const body =
    enc === 'xml'
      ? `<errors xmlns="${NS_RESTCONF}"><error><error-type>${entry['error-type']}</error-type><error-tag>${entry['error-tag']}</error-tag><error-message>${xmlEscape(message)}</error-message></error></errors>`
      : JSON.stringify({ 'ietf-restconf:errors': { error: [entry] } });
  return { status: shape.status, body, contentType: MEDIA_TYPE[enc] };
}

export function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

// ---------------------------------------------------------------------------------------------
// Input decoding

export const PROGRESS_TYPES = [
  'bootstrap-initiated', 'parsing-initiated', 'parsing-warning', 'parsing-error', 'parsing-complete',
  'boot-image-initiated', 'boot-image-warning', 'boot-image-error', 'boot-image-mismatch',
  'boot-image-installed-rebooting', 'boot-image-complete', 'pre-script-initiated', 'pre-script-warning',
  'pre-script-error', 'pre-script-complete', 'config-initiated', 'config-warning', 'config-error',
  'config-complete', 'post-script-initiated', 'post-script-warning', 'post-script-error',
  'post-script-complete', 'bootstrap-warning', 'bootstrap-error', 'bootstrap-complete', 'informational',
] as const;
export type ProgressType = (typeof PROGRESS_TYPES)[number];

export interface BootstrapRequest {
  signedDataPreferred: boolean;
  hwModel?: string;
  osName?: string;
  osVersion?: string;
  /** RFC 8572 §7.1 nonce, 16..32 bytes, echoed into a fresh voucher */
  nonce?: Buffer;
  /** quirks tolerated, for the bootstrapping log */
  warnings: string[];
}

export interface SshHostKey {
  algorithm: string;
  keyData: string;
}

export interface ProgressReport {
  progressType: ProgressType;
  message?: string;
  sshHostKeys: SshHostKey[];
  /** base64 CMS, as sent */
  trustAnchorCerts: string[];
  warnings: string[];
}

const MAX_STRING = 8 * 1024;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function invalid(message: string): never {
  throw new ZtpError('SZTP_INVALID_VALUE', message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON: body must be one object whose single member is the module-qualified "input". */
function jsonInput(body: Buffer): Record<string, unknown> | undefined {
  if (body.length === 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ZtpError('SZTP_MALFORMED_MESSAGE', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new ZtpError('SZTP_MALFORMED_MESSAGE', 'request body must be a JSON object');
  const keys = Object.keys(parsed);
  if (keys.length === 0) return undefined;
  const extra = keys.find((k) => k !== INPUT_MEMBER);
  if (extra !== undefined) throw new ZtpError('SZTP_UNKNOWN_ELEMENT', `unknown element "${extra}"; expected "${INPUT_MEMBER}"`);
  const input = parsed[INPUT_MEMBER];
  if (!isObject(input)) throw new ZtpError('SZTP_MALFORMED_MESSAGE', `"${INPUT_MEMBER}" must be an object`);
  // RFC 7951 §4: members may also be module-qualified; strip our own module's prefix (the
  // object is kept as parsed when no member has it, the usual case).
  if (!Object.keys(input).some((k) => k.startsWith(MODULE_PREFIX))) return input;
  return Object.fromEntries(Object.entries(input).map(([k, v]) => [k.startsWith(MODULE_PREFIX) ? k.slice(MODULE_PREFIX.length) : k, v]));
}

const INPUT_MEMBER = `${MODULE}:input`;
const MODULE_PREFIX = `${MODULE}:`;

// ---------------------------------------------------------------------------------------------
// XML hardening (issue 11). A cheap pre-scan bounds the document before any parser sees it:
// XML 1.0 lets a document declare a DTD (§2.8) and entities (§4.2): both refused, since
// RESTCONF inputs never need them; §4.6 predefines exactly five entities (lt, gt, amp, apos,
// quot) and §4.1 allows character references "&#" [0-9]+ ";" | "&#x" [0-9a-fA-F]+ ";" whose
// value must be a legal Char (§2.2) — anything else is an undeclared entity, refused.
// The YANG input is at most 4 elements deep (input/ssh-host-keys/ssh-host-key/key-data).

/** Deepest element nesting accepted; the parser itself throws a plain Error past 100. */
export const MAX_XML_DEPTH = 16;
/** Names that would reach an object's prototype chain once prefixes are stripped. */
const PROTOTYPE_NAMES = new Set(['__proto__', 'constructor', 'prototype']);
const PREDEFINED_ENTITIES = new Set(['lt', 'gt', 'amp', 'apos', 'quot']);

function malformed(message: string): never {
  throw new ZtpError('SZTP_MALFORMED_MESSAGE', message);
}

/** XML 1.0 §2.2 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]. */
function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Every "&" in character data or an attribute value must start one of the §4.6/§4.1 references. */
function checkReferences(text: string): void {
  let at = text.indexOf('&');
  while (at !== -1) {
    // The longest legal reference is "&#x10FFFF;": look no further than that for the ";".
    const semicolon = text.slice(at + 1, at + 34).indexOf(';');
    const end = semicolon === -1 ? -1 : at + 1 + semicolon;
    const ref = end === -1 ? '' : text.slice(at + 1, end);
    if (ref.startsWith('#')) {
      const cp = /^#[0-9]{1,7}$/.test(ref) ? Number(ref.slice(1)) : /^#x[0-9a-fA-F]{1,6}$/.test(ref) ? parseInt(ref.slice(2), 16) : NaN;
      if (!isXmlChar(cp)) malformed(`character reference "&${ref.slice(0, 12)};" is not a legal XML character`);
    } else if (!PREDEFINED_ENTITIES.has(ref)) {
      malformed(end === -1 ? 'a bare "&" must be written &amp;' : `entity "&${ref};" is not declared (only &lt; &gt; &amp; &apos; &quot; and character references are)`);
    }
    at = text.indexOf('&', end);
  }
}

/** Index just past an XML name starting at `from` (stops at whitespace, "/", ">", "=", "<"). */
function nameEnd(text: string, from: number): number {
  let i = from;
  while (i < text.length && !/[\s/>=<]/.test(text[i]!)) i++;
  return i;
}

function checkName(name: string, what: string): void {
  const local = name.slice(name.indexOf(':') + 1);
  if (PROTOTYPE_NAMES.has(local) || PROTOTYPE_NAMES.has(name)) malformed(`${what} name "${name}" is refused`);
}

/**
 * Linear pre-scan of an XML body: refuses DTDs and entity declarations, undeclared entity
 * references, prototype names and nesting deeper than MAX_XML_DEPTH, each as malformed-message.
 * Well-formedness beyond that is left to the validator that runs next.
 */
export function prescanXml(text: string, maxDepth = MAX_XML_DEPTH): void {
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    checkReferences(lt === -1 ? text.slice(i) : text.slice(i, lt));
    if (lt === -1) return;
    if (text.startsWith('<?', lt)) {
      const end = text.indexOf('?>', lt + 2);
      i = end === -1 ? malformed('unterminated processing instruction') : end + 2;
    } else if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt + 4);
      i = end === -1 ? malformed('unterminated comment') : end + 3;
    } else if (text.startsWith('<![CDATA[', lt)) {
      // §2.7: CDATA content is literal; "&" inside it is not a reference.
      const end = text.indexOf(']]>', lt + 9);
      i = end === -1 ? malformed('unterminated CDATA section') : end + 3;
    } else if (text.startsWith('<!', lt)) {
      malformed('XML with a DTD or entity declarations is refused');
    } else if (text.startsWith('</', lt)) {
      const end = text.indexOf('>', lt);
      if (end === -1) malformed('unterminated end tag');
      depth--;
      i = end + 1;
    } else {
      i = scanStartTag(text, lt + 1);
      const selfClosing = text[i - 2] === '/';
      if (depth + 1 > maxDepth) malformed(`XML nesting deeper than ${maxDepth} elements is refused`);
      if (!selfClosing) depth++;
    }
  }
}

/** From just after "<" to just after the tag's ">": checks element and attribute names and values. */
function scanStartTag(text: string, from: number): number {
  let i = from;
  const elementEnd = nameEnd(text, i);
  if (elementEnd === i) malformed('element without a name');
  checkName(text.slice(i, elementEnd), 'element');
  i = elementEnd;
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) malformed('unterminated start tag');
    if (text[i] === '>') return i + 1;
    if (text.startsWith('/>', i)) return i + 2;
    const attrEnd = nameEnd(text, i);
    if (attrEnd === i) malformed('start tag is not well-formed');
    checkName(text.slice(i, attrEnd), 'attribute');
    i = attrEnd;
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text[i] !== '=') malformed('attribute without a value');
    i++;
    while (i < text.length && /\s/.test(text[i]!)) i++;
    const quote = text[i];
    if (quote !== '"' && quote !== "'") malformed('attribute value is not quoted');
    const close = text.indexOf(quote, i + 1);
    if (close === -1) malformed('unterminated attribute value');
    const value = text.slice(i + 1, close);
    if (value.includes('<')) malformed('"<" in an attribute value');
    checkReferences(value);
    i = close + 1;
  }
}

// fast-xml-parser is loaded on the first XML body, as its one-file CommonJS bundle: its ES module
// build (many files) cost every start 38–50 ms of CPU and 7–10 MB whether or not a device ever
// speaks XML, the bundle ~8 ms / 1.3 MB once (issue 12, bench/startup/imports.js). require() keeps
// the decode synchronous.
type FastXmlParser = typeof FastXmlParserModule;
let xml: { parser: InstanceType<FastXmlParser['XMLParser']>; validator: FastXmlParser['XMLValidator'] } | undefined;
function xmlCodec(): NonNullable<typeof xml> {
  if (xml) return xml;
  const { XMLParser, XMLValidator } = createRequire(import.meta.url)('fast-xml-parser') as FastXmlParser;
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    removeNSPrefix: false,
    // The pre-scan has admitted only the five predefined entities and character references:
    // decode those (htmlEntities enables numeric references; named HTML ones never get here).
    processEntities: true,
    htmlEntities: true,
    parseTagValue: false,
    trimValues: true,
    maxNestedTags: MAX_XML_DEPTH + 1,
    isArray: (name) => ['ssh-host-key', 'trust-anchor-cert'].includes(name.slice(name.indexOf(':') + 1)),
  });
  return (xml = { parser, validator: XMLValidator });
}

/** XML: one <input> element in the module namespace (RFC 8040 §3.6.1). No DTDs, no entities. */
function xmlInput(body: Buffer): Record<string, unknown> | undefined {
  const text = body.toString('utf8').trim();
  if (text.length === 0) return undefined;
  prescanXml(text);
  const { parser, validator } = xmlCodec();
  const valid = validator.validate(text);
  if (valid !== true) throw new ZtpError('SZTP_MALFORMED_MESSAGE', `request body is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(text) as Record<string, unknown>;
  } catch (err) {
    // Whatever the pre-scan missed, the parser's refusal is the client's mistake, not a 500.
    throw new ZtpError('SZTP_MALFORMED_MESSAGE', `request body is refused by the XML parser: ${(err as Error).message}`, { cause: err });
  }
  const roots = Object.keys(doc).filter((k) => k !== '?xml');
  const root = roots[0] ?? '';
  const [prefix, local] = root.includes(':') ? root.split(':', 2) as [string, string] : ['', root];
  if (roots.length !== 1 || local !== 'input') throw new ZtpError('SZTP_UNKNOWN_ELEMENT', `unknown element "${root}"; expected <input xmlns="${NS_BOOTSTRAP}">`);
  const input = doc[root];
  const element = isObject(input) ? input : {};
  const namespace = element[prefix ? `@xmlns:${prefix}` : '@xmlns'];
  if (namespace !== NS_BOOTSTRAP) throw new ZtpError('SZTP_UNKNOWN_ELEMENT', `<input> must be in namespace ${NS_BOOTSTRAP}`);
  return stripPrefixes(element) as Record<string, unknown>;
}

/** Element names without their prefix, attributes (xmlns and others) dropped, recursively. */
function stripPrefixes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripPrefixes);
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k.startsWith('@')) continue;
    // defineProperty: a stripped name never reaches a setter such as __proto__.
    Object.defineProperty(out, k.includes(':') ? k.slice(k.indexOf(':') + 1) : k, { value: stripPrefixes(v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function decodeInput(body: Buffer, enc: Encoding | undefined): Record<string, unknown> | undefined {
  if (enc === undefined) {
    if (body.length > 0) throw new ZtpError('SZTP_UNSUPPORTED_MEDIA_TYPE', `a request body needs Content-Type ${MEDIA_TYPE.json} or ${MEDIA_TYPE.xml}`);
    return undefined;
  }
  return enc === 'json' ? jsonInput(body) : xmlInput(body);
}

function optionalString(input: Record<string, unknown>, name: string): string | undefined {
  const v = input[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') invalid(`"${name}" must be a string`);
  if (v.length > MAX_STRING) invalid(`"${name}" is longer than ${MAX_STRING} characters`);
  return v;
}

function rejectUnknown(input: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(input)) {
    if (!allowed.includes(key)) throw new ZtpError('SZTP_UNKNOWN_ELEMENT', `unknown element "${key}"`);
  }
}

/** RFC 8572 §7.1 get-bootstrapping-data input. */
export function decodeBootstrapRequest(body: Buffer, enc: Encoding | undefined): BootstrapRequest {
  const input = decodeInput(body, enc) ?? {};
  rejectUnknown(input, ['signed-data-preferred', 'hw-model', 'os-name', 'os-version', 'nonce']);
  const out: BootstrapRequest = { signedDataPreferred: false, warnings: [] };
  if ('signed-data-preferred' in input) {
    // type empty: JSON [null] (RFC 7951 §6.9); XML an empty element (parsed as '').
    const v = input['signed-data-preferred'];
    const isEmpty = (Array.isArray(v) && v.length === 1 && v[0] === null) || v === '' || v === null;
    if (!isEmpty) invalid('"signed-data-preferred" is of type empty: send [null] in JSON or an empty element in XML');
    out.signedDataPreferred = true;
  }
  const hwModel = optionalString(input, 'hw-model');
  const osName = optionalString(input, 'os-name');
  const osVersion = optionalString(input, 'os-version');
  if (hwModel !== undefined) out.hwModel = hwModel;
  if (osName !== undefined) out.osName = osName;
  if (osVersion !== undefined) out.osVersion = osVersion;
  const nonce = optionalString(input, 'nonce');
  if (nonce !== undefined) {
    if (nonce === '') {
      // The OPI agent always sends "nonce": "" (YANG length 16..32 fails): treat as absent.
      out.warnings.push('empty nonce ignored');
    } else {
      if (!BASE64_RE.test(nonce)) invalid('"nonce" must be base64');
      const bytes = Buffer.from(nonce, 'base64');
      if (bytes.length < 16 || bytes.length > 32) invalid(`"nonce" must be 16 to 32 bytes (got ${bytes.length})`);
      out.nonce = bytes;
    }
  }
  return out;
}

function asList(v: unknown): unknown[] {
  if (v === undefined || v === '' || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** RFC 8572 §7.2 report-progress input. */
export function decodeProgressReport(body: Buffer, enc: Encoding | undefined): ProgressReport {
  const input = decodeInput(body, enc);
  if (!input) throw new ZtpError('SZTP_MISSING_ELEMENT', 'report-progress needs an input with "progress-type"');
  rejectUnknown(input, ['progress-type', 'message', 'ssh-host-keys', 'trust-anchor-certs']);
  const type = input['progress-type'];
  if (type === undefined) throw new ZtpError('SZTP_MISSING_ELEMENT', 'missing element "progress-type"');
  if (typeof type !== 'string' || !(PROGRESS_TYPES as readonly string[]).includes(type)) invalid(`"progress-type" must be one of the 27 RFC 8572 values (got ${JSON.stringify(type)})`);
  const out: ProgressReport = { progressType: type as ProgressType, sshHostKeys: [], trustAnchorCerts: [], warnings: [] };
  const message = optionalString(input, 'message');
  if (message !== undefined) out.message = message;

  const keysContainer = input['ssh-host-keys'];
  const keys = isObject(keysContainer) ? asList(keysContainer['ssh-host-key']) : keysContainer === undefined || keysContainer === '' ? [] : invalid('"ssh-host-keys" must be a container');
  const anchorsContainer = input['trust-anchor-certs'];
  const anchors = isObject(anchorsContainer) ? asList(anchorsContainer['trust-anchor-cert']) : anchorsContainer === undefined || anchorsContainer === '' ? [] : invalid('"trust-anchor-certs" must be a container');
  if (isObject(keysContainer)) rejectUnknown(keysContainer, ['ssh-host-key']);
  if (isObject(anchorsContainer)) rejectUnknown(anchorsContainer, ['trust-anchor-cert']);

  if (type !== 'bootstrap-complete') {
    // YANG `when "../progress-type = 'bootstrap-complete'"`. The OPI agent sends these empty with
    // every report: drop empty ones quietly, refuse non-empty ones.
    if (keys.length > 0 || anchors.length > 0) invalid('"ssh-host-keys" and "trust-anchor-certs" are only allowed with progress-type bootstrap-complete');
    if (keysContainer !== undefined || anchorsContainer !== undefined) out.warnings.push('empty ssh-host-keys/trust-anchor-certs dropped');
    return out;
  }
  for (const [i, k] of keys.entries()) {
    if (!isObject(k)) invalid(`ssh-host-key[${i}] must be an object`);
    rejectUnknown(k, ['algorithm', 'key-data']);
    const algorithm = k.algorithm;
    const keyData = k['key-data'];
    if (typeof algorithm !== 'string' || algorithm === '') throw new ZtpError('SZTP_MISSING_ELEMENT', `ssh-host-key[${i}] needs "algorithm"`);
    if (typeof keyData !== 'string' || !BASE64_RE.test(keyData) || keyData === '') invalid(`ssh-host-key[${i}] "key-data" must be base64`);
    out.sshHostKeys.push({ algorithm, keyData });
  }
  for (const [i, c] of anchors.entries()) {
    if (typeof c !== 'string' || !BASE64_RE.test(c) || c === '') invalid(`trust-anchor-cert[${i}] must be base64 CMS`);
    // A CMS ContentInfo starts with SEQUENCE (0x30). The OPI agent may send a placeholder: keep it, warn.
    if (Buffer.from(c, 'base64')[0] !== 0x30) out.warnings.push(`trust-anchor-cert[${i}] is not CMS; stored as sent`);
    out.trustAnchorCerts.push(c);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output encoding (RFC 8572 §7.1 output)

export interface BootstrapOutput {
  reportingLevel?: 'minimal' | 'verbose';
  conveyedInformation: Buffer;
  ownerCertificate?: Buffer;
  ownershipVoucher?: Buffer;
}

export function encodeBootstrapOutput(out: BootstrapOutput, enc: Encoding): string {
  if (enc === 'xml') {
    const parts = [
      out.reportingLevel ? `<reporting-level>${out.reportingLevel}</reporting-level>` : '',
      `<conveyed-information>${out.conveyedInformation.toString('base64')}</conveyed-information>`,
      out.ownerCertificate ? `<owner-certificate>${out.ownerCertificate.toString('base64')}</owner-certificate>` : '',
      out.ownershipVoucher ? `<ownership-voucher>${out.ownershipVoucher.toString('base64')}</ownership-voucher>` : '',
    ];
    return `<output xmlns="${NS_BOOTSTRAP}">${parts.join('')}</output>`;
  }
  const body: Record<string, string> = {};
  if (out.reportingLevel) body['reporting-level'] = out.reportingLevel;
  body['conveyed-information'] = out.conveyedInformation.toString('base64');
  if (out.ownerCertificate) body['owner-certificate'] = out.ownerCertificate.toString('base64');
  if (out.ownershipVoucher) body['ownership-voucher'] = out.ownershipVoucher.toString('base64');
  return JSON.stringify({ [`${MODULE}:output`]: body });
}
