// Shared fixtures of the image tests: a temp data dir with a real SQLite catalogue.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { validateConfig, type Config } from '../../src/config.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { ImageCatalogue, imagesDirOf } from '../../src/images/catalogue.js';

export interface ImagesEnv {
  dir: string;
  config: Config;
  db: Db;
  store: DeviceStore;
  catalogue: ImageCatalogue;
  cleanup(): void;
}

export function makeEnv(images: Partial<Config['images']> = {}): ImagesEnv {
  const dir = mkdtempSync(join(tmpdir(), 'ztp-images-'));
  const config = validateConfig({ dataDir: dir, images });
  const db = openDatabase({ file: join(dir, 'ztp.db') });
  const store = new DeviceStore(db);
  const catalogue = new ImageCatalogue(db, imagesDirOf(dir));
  return {
    dir,
    config,
    db,
    store,
    catalogue,
    cleanup() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Deterministic content: byte i is (i * 7 + i >> 8) & 0xff, so ranges are checkable by offset. */
export function pattern(size: number, seed = 0): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + (i >> 8) + seed) & 0xff;
  return b;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function addBuffer(env: ImagesEnv, name: string, data: Buffer, extra: Record<string, unknown> = {}) {
  return env.catalogue.add(Readable.from([data]), { name, ...extra });
}

export function writeTemp(env: ImagesEnv, name: string, data: Buffer): string {
  const p = join(env.dir, name);
  writeFileSync(p, data);
  return p;
}
