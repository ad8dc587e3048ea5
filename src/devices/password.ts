// Device passwords (HTTP Basic, RFC 8572 §5.3) stored as scrypt hashes, compared in constant time.
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEY_LEN = 32;

export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, KEY_LEN, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * A hash no password matches, with the same parameters as hashPassword: verifying against it
 * costs what a real check costs, so an unknown serial answers as slowly as a wrong password
 * (issue 11: 2.7 ms vs 97.7 ms told known serials from unknown ones).
 */
export const DUMMY_PASSWORD_HASH = `scrypt$${N}$${R}$${P}$${randomBytes(16).toString('base64')}$${randomBytes(KEY_LEN).toString('base64')}`;

interface ParsedHash {
  salt: Buffer;
  expected: Buffer;
  params: { N: number; r: number; p: number };
}

function parseHash(stored: string): ParsedHash | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64');
  // An empty or truncated hash would compare equal to a derivation of the same (zero) length.
  if (expected.length < 16) return undefined;
  return { salt: Buffer.from(salt, 'base64'), expected, params: { N: Number(n), r: Number(r), p: Number(p) } };
}

/** Synchronous check, for the CLI and imports (one at a time); servers use verifyPasswordAsync. */
export function verifyPassword(password: string, stored: string): boolean {
  const h = parseHash(stored);
  if (!h) return false;
  let actual: Buffer;
  try {
    actual = scryptSync(password, h.salt, h.expected.length, h.params);
  } catch {
    return false; // impossible parameters match nothing
  }
  return h.expected.length === actual.length && timingSafeEqual(h.expected, actual);
}

/** The same check on the libuv thread pool: the event loop keeps serving while scrypt runs. */
export function verifyPasswordAsync(password: string, stored: string): Promise<boolean> {
  const h = parseHash(stored);
  if (!h) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      scrypt(password, h.salt, h.expected.length, h.params, (err, actual) => {
        resolve(!err && h.expected.length === actual.length && timingSafeEqual(h.expected, actual));
      });
    } catch {
      // A stored hash with impossible parameters (validated synchronously) matches nothing.
      resolve(false);
    }
  });
}
