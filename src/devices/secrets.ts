// Secrets at rest (BMC passwords): AES-256-GCM under one key kept in <dataDir>/secret.key (0600).
// The device serial is the additional authenticated data, so a sealed password copied onto
// another device's row does not open. The database alone (a backup, a copied ztp.db) reveals no
// BMC password; the key file and the database together do, which is why the key is 0600 and
// never leaves the data directory.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type Database from 'better-sqlite3';
import { ZtpError } from '../errors.js';
import { writeSecretFile } from '../pki/lab.js';

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;

export const SECRET_KEY_FILE = 'secret.key';

export class SecretBox {
  private constructor(
    private readonly key: Buffer,
    /** where the key lives; '' for an in-memory key */
    readonly file: string,
  ) {}

  /** The data directory's key, created on first use (0600). */
  static forDataDir(dataDir: string): SecretBox {
    const file = join(dataDir, SECRET_KEY_FILE);
    if (existsSync(file)) {
      const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
      if (key.length !== KEY_BYTES) throw new ZtpError('SECRETS_KEY_INVALID', `${file} does not hold a ${KEY_BYTES}-byte base64 key`, { details: { file } });
      return new SecretBox(key, file);
    }
    const key = randomBytes(KEY_BYTES);
    writeSecretFile(file, key.toString('base64') + '\n');
    return new SecretBox(key, file);
  }

  /** A key that lives only in this process: for ':memory:' databases (tests, dry runs). */
  static ephemeral(): SecretBox {
    return new SecretBox(randomBytes(KEY_BYTES), '');
  }

  /** "v1.<iv>.<tag>.<ciphertext>" in base64url; `context` (the serial) is authenticated. */
  seal(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  /** Throws SECRETS_UNREADABLE when the value was sealed under another key or context, or is damaged. */
  open(sealed: string, context: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== VERSION) throw new ZtpError('SECRETS_UNREADABLE', 'sealed secret has an unknown format');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(parts[1]!, 'base64url'));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(Buffer.from(parts[2]!, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(parts[3]!, 'base64url')), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new ZtpError('SECRETS_UNREADABLE', 'sealed secret does not open with this data directory\'s key', { cause: err });
    }
  }
}

const boxes = new WeakMap<object, SecretBox>();

/**
 * The key that goes with a database: <dir of ztp.db>/secret.key, or one in-memory key per
 * ':memory:' database, so every store and migration on the same database seals alike.
 */
export function secretBoxFor(db: { memory: boolean; name: string }): SecretBox {
  let box = boxes.get(db);
  if (!box) {
    box = db.memory ? SecretBox.ephemeral() : SecretBox.forDataDir(dirname(db.name));
    boxes.set(db, box);
  }
  return box;
}

/** Migration 004: seal every clear BMC password still in devices.bmc. */
export function sealStoredBmcPasswords(db: Database.Database): void {
  const rows = db.prepare(`SELECT serial, bmc FROM devices WHERE bmc IS NOT NULL`).all() as { serial: string; bmc: string }[];
  const update = db.prepare(`UPDATE devices SET bmc = ? WHERE serial = ?`);
  for (const row of rows) {
    const bmc = JSON.parse(row.bmc) as Record<string, unknown>;
    if (typeof bmc.password !== 'string') continue;
    const { password, ...rest } = bmc;
    update.run(JSON.stringify({ ...rest, passwordSealed: secretBoxFor(db).seal(password, row.serial) }), row.serial);
  }
}
