// SQLite storage for the whole suite: one file, WAL, numbered migrations gated by
// PRAGMA user_version, each applied in its own transaction (STYLE.md, better-sqlite3 docs).
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ZtpError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

export interface OpenOptions {
  /** ':memory:' for tests */
  file: string;
}

export function openDatabase({ file }: OpenOptions): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode: a committed transaction survives a process crash; an OS crash may
  // lose the last few. Acknowledged records are committed before the reply is sent.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

export function migrate(db: Db): void {
  const current = schemaVersion(db);
  if (current > MIGRATIONS.length) {
    throw new ZtpError('DB_NEWER_SCHEMA', `database schema version ${current} is newer than this dpu-ztp (${MIGRATIONS.length})`);
  }
  for (let version = current + 1; version <= MIGRATIONS.length; version++) {
    const migration = MIGRATIONS[version - 1]!;
    try {
      db.transaction(() => {
        if (migration.sql) db.exec(migration.sql);
        migration.run?.(db);
        db.pragma(`user_version = ${version}`);
      })();
    } catch (err) {
      throw new ZtpError('DB_MIGRATION_FAILED', `migration ${version} (${migration.name}) failed: ${(err as Error).message}`, { cause: err });
    }
  }
}
