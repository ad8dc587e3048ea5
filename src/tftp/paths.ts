// TFTP file names → catalogue lookups. Pure.
//
// A TFTP file name is never joined onto a filesystem path: like the image server (see
// src/images/paths.ts), it is parsed into a catalogue lookup (a name or a sha256 digest), and the
// bytes served are always the catalogue blob of that entry. Before any lookup the parser refuses
// what a traversal attempt looks like ("." / ".." segments, "\" separators as Windows-style PXE
// menus send them, "%" escapes, NUL and control characters, dotfiles, empty segments), so the log
// records the attempt as an access violation (TFTP error 2).
//
// Accepted names (one optional leading "/"):
//   <name>                            a catalogue image by name (what a DHCP class rule names)
//   images/<name>, sha256/<hex>       the image server's paths
//   by-mac/<mac>/<name>               the per-device path (downloads attributed to that device)
//   by-mac/<mac>/sha256/<hex>, by-serial/<serial>/<name>
import { parseTarget, type ImageTarget } from '../images/paths.js';

export type TftpTarget = Extract<ImageTarget, { kind: 'image' }>;

export type TftpPathResult = { ok: true; target: TftpTarget } | { ok: false; refused: boolean; reason: string };

/** RFC 1350 file names are netascii; anything longer than this is not one of ours. */
const MAX_NAME_LENGTH = 255;

export function parseTftpPath(filename: string): TftpPathResult {
  const refuse = (reason: string): TftpPathResult => ({ ok: false, refused: true, reason });
  if (filename.length > MAX_NAME_LENGTH) return refuse('file name too long');
  for (let i = 0; i < filename.length; i++) {
    const c = filename.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f) return refuse('control or non-ASCII character');
  }
  if (filename.includes('\\')) return refuse('backslash separator');
  // TFTP names are not percent-encoded: a "%" could only smuggle a separator past the checks.
  if (filename.includes('%')) return refuse('percent sign');
  const path = filename.startsWith('/') ? filename.slice(1) : filename;
  if (path === '') return { ok: false, refused: false, reason: 'no file named' };
  const segments = path.split('/');
  for (const seg of segments) {
    if (seg === '') return refuse('empty segment');
    if (seg === '.' || seg === '..') return refuse('dot segment');
    if (seg.startsWith('.')) return refuse('dotfile');
  }
  const parsed = parseTarget('/' + (segments.length === 1 ? `images/${path}` : path));
  if (!parsed.ok) return { ok: false, refused: parsed.status === 400, reason: parsed.reason };
  if (parsed.target.kind !== 'image') return { ok: false, refused: false, reason: 'not an image' };
  return { ok: true, target: parsed.target };
}

/** The TFTP file name of a catalogue image for one device: the inverse of parseTftpPath. */
export function tftpPathFor(name: string, mac?: string): string {
  return mac ? `by-mac/${mac}/${name}` : name;
}
