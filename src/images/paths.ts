// Request targets of the image server, and image names. Pure.
//
// Traversal is impossible by construction: a request target is parsed into a catalogue lookup
// (an image name or a sha256 digest), never joined onto a filesystem path. The file served is
// always <imagesDir>/sha256/<64 lowercase hex> with the digest taken from the catalogue row.
// On top of that the parser refuses, before any lookup, everything a traversal attempt looks
// like (RFC 3986 §3.3 segments "." / "..", percent-encoded "/", "\" or NUL, dotfiles, absolute-form
// targets, empty segments), so the access log shows the attempt as such (400 IMAGES_BAD_PATH).
//
// URL forms (names are catalogue names, digests lowercase hex):
//   /images/<name>                         by name
//   /sha256/<hex>                          by digest (immutable)
//   /by-mac/<mac>/<name>                   by name, attributed to the device with that MAC
//   /by-mac/<mac>/sha256/<hex>             by digest, attributed
//   /by-serial/<serial>/<name>             by name, attributed by serial number

/** Catalogue names: start with a letter or digit (no dotfiles), then a conservative set, no '/'. */
export const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
export const SHA256_HEX = /^[0-9a-f]{64}$/;
const SERIAL = /^[A-Za-z0-9._:-]{1,64}$/;

export function isImageName(name: string): boolean {
  return IMAGE_NAME.test(name) && !name.includes('..');
}

/** Lowercase colon-separated MAC from aa:bb:.., aa-bb-.., aabb.ccdd.eeff or aabbccddeeff. */
export function normalizeMac(text: string): string | undefined {
  const hex = text.toLowerCase().replace(/[:.-]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) return undefined;
  if (!/^([0-9a-f]{2}([:-]?)){5}[0-9a-f]{2}$/i.test(text) && !/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i.test(text)) return undefined;
  return hex.match(/../g)!.join(':');
}

export type ImageTarget =
  | { kind: 'image'; by: 'name' | 'sha256'; key: string; mac?: string; serial?: string }
  | { kind: 'health' };

export type TargetResult = { ok: true; target: ImageTarget } | { ok: false; status: 400 | 404; reason: string };

const bad = (reason: string): TargetResult => ({ ok: false, status: 400, reason });
const none = (reason: string): TargetResult => ({ ok: false, status: 404, reason });

/**
 * Parses a request target (origin-form, RFC 9112 §3.2.1) into a catalogue lookup.
 * The query string is ignored. Never throws.
 */
export function parseTarget(rawUrl: string): TargetResult {
  if (!rawUrl.startsWith('/')) return bad('not origin-form');
  const q = rawUrl.search(/[?#]/);
  const path = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  if (path.length > 1024) return bad('path too long');
  if (path === '/') return none('no image named');
  if (path.startsWith('//')) return bad('empty segment');
  const rawSegments = path.slice(1).split('/');
  const segments: string[] = [];
  for (const raw of rawSegments) {
    // Encoded separators or NUL inside a segment: a classic way past a '/'-splitting router.
    if (/%(2f|5c|00)/i.test(raw)) return bad('encoded separator');
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return bad('malformed percent-encoding');
    }
    if (seg === '') return bad('empty segment');
    if (seg === '.' || seg === '..') return bad('dot segment');
    if (seg.startsWith('.')) return bad('dotfile');
    if (/[\\/]/.test(seg) || [...seg].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return bad('control or separator character');
    segments.push(seg);
  }
  const [head, a] = segments;
  switch (head) {
    case 'healthz':
      return segments.length === 1 ? { ok: true, target: { kind: 'health' } } : none('unknown path');
    case 'images':
      if (segments.length !== 2 || !isImageName(a!)) return segments.length === 2 ? bad('not an image name') : none('unknown path');
      return { ok: true, target: { kind: 'image', by: 'name', key: a! } };
    case 'sha256':
      if (segments.length !== 2) return none('unknown path');
      return SHA256_HEX.test(a!.toLowerCase()) ? { ok: true, target: { kind: 'image', by: 'sha256', key: a!.toLowerCase() } } : bad('not a sha256 digest');
    case 'by-mac': {
      if (segments.length < 3) return none('unknown path');
      const mac = normalizeMac(a!);
      if (!mac) return bad('not a MAC address');
      return attributed(segments.slice(2), { mac });
    }
    case 'by-serial': {
      if (segments.length < 3) return none('unknown path');
      if (!SERIAL.test(a!)) return bad('not a serial number');
      return attributed(segments.slice(2), { serial: a! });
    }
    default:
      return none('unknown path');
  }
}

function attributed(rest: string[], who: { mac?: string; serial?: string }): TargetResult {
  if (rest.length === 1) {
    return isImageName(rest[0]!) ? { ok: true, target: { kind: 'image', by: 'name', key: rest[0]!, ...who } } : bad('not an image name');
  }
  if (rest.length === 2 && rest[0] === 'sha256') {
    const hex = rest[1]!.toLowerCase();
    return SHA256_HEX.test(hex) ? { ok: true, target: { kind: 'image', by: 'sha256', key: hex, ...who } } : bad('not a sha256 digest');
  }
  return none('unknown path');
}

/** Path of an image by name or digest, with optional attribution: the inverse of parseTarget. */
export function imagePath(by: 'name' | 'sha256', key: string, attribution?: { mac?: string; serial?: string }): string {
  const tail = by === 'name' ? encodeURIComponent(key) : `sha256/${key}`;
  if (attribution?.mac) return `/by-mac/${attribution.mac}/${tail}`;
  if (attribution?.serial) return `/by-serial/${encodeURIComponent(attribution.serial)}/${tail}`;
  return by === 'name' ? `/images/${tail}` : `/${tail}`;
}
