// The image catalogue: named, content-addressed images in SQLite (table `images`, migration 002)
// with their bytes in a BlobStore under <dataDir>/images/. Several names may share one digest;
// content is stored once. Lookups are by name or by digest only: nothing here takes a path.
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Db } from '../db/database.js';
import { systemClock, type Clock } from '../devices/store.js';
import { ZtpError } from '../errors.js';
import { BlobStore, type IngestOptions } from './blobs.js';
import { isImageName, SHA256_HEX } from './paths.js';

export interface ImageEntry {
  name: string;
  /** lowercase hex */
  sha256: string;
  /** bytes */
  size: number;
  osName: string | null;
  osVersion: string | null;
  /** where it was added from (file path or URL), informational */
  source: string | null;
  /** HTTPS with a trusted device certificate required (on top of images.requireClientCert) */
  requireClientCert: boolean;
  /** ISO 8601 */
  createdAt: string;
  /** ISO 8601; when this name last changed content: the Last-Modified of its URLs */
  updatedAt: string;
}

export interface AddImageInput {
  name: string;
  /** declared digest: the content must match it */
  sha256?: string | undefined;
  osName?: string | null | undefined;
  osVersion?: string | null | undefined;
  source?: string | null | undefined;
  requireClientCert?: boolean | undefined;
  /** allow giving an existing name new content */
  replace?: boolean | undefined;
}

export type AddOutcome = 'created' | 'updated' | 'unchanged';

export interface AddResult {
  entry: ImageEntry;
  outcome: AddOutcome;
  /** false when the content was already stored under another name (deduplicated) */
  storedNewContent: boolean;
}

export interface RemoveResult {
  removed: boolean;
  /** the blob was deleted too (no other name held it) */
  contentDeleted: boolean;
  /** devices that referenced the image (removal needed force) */
  referencedBy: string[];
}

interface ImageRow {
  name: string;
  sha256: string;
  size: number;
  os_name: string | null;
  os_version: string | null;
  source: string | null;
  require_client_cert: number;
  created_at: string;
  updated_at: string;
}

function rowToEntry(r: ImageRow): ImageEntry {
  return {
    name: r.name,
    sha256: r.sha256,
    size: r.size,
    osName: r.os_name,
    osVersion: r.os_version,
    source: r.source,
    requireClientCert: r.require_client_cert === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Validates a catalogue name: no '/', no leading dot, not digest-shaped (lookups would be ambiguous). */
export function checkImageName(name: string): void {
  if (!isImageName(name) || SHA256_HEX.test(name)) {
    throw new ZtpError('IMAGES_INVALID', `image name "${name}" is not allowed: use 1-128 of A-Z a-z 0-9 . _ + -, starting with a letter or digit, no "..", not a bare sha256`, {
      details: { field: 'name', name },
    });
  }
}

/** A name for content added without --name: the last path or URL segment, cleaned. */
export function defaultImageName(source: string): string {
  let base = source;
  try {
    if (/^https?:\/\//i.test(source)) base = decodeURIComponent(new URL(source).pathname);
  } catch {
    // keep the raw text
  }
  base = base.split(/[/\\]/).filter(Boolean).pop() ?? '';
  const cleaned = base.replace(/[^A-Za-z0-9._+-]/g, '_').replace(/\.{2,}/g, '.').replace(/^[^A-Za-z0-9]+/, '').slice(0, 128);
  return cleaned || 'image';
}

export class ImageCatalogue {
  readonly blobs: BlobStore;
  private readonly stmts;

  constructor(
    private readonly db: Db,
    readonly imagesDir: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.blobs = new BlobStore(imagesDir);
    this.stmts = {
      byName: db.prepare(`SELECT * FROM images WHERE name = ?`),
      bySha: db.prepare(`SELECT * FROM images WHERE sha256 = ? ORDER BY created_at, name LIMIT 1`),
      list: db.prepare(`SELECT * FROM images ORDER BY name`),
      countSha: db.prepare(`SELECT count(*) AS n FROM images WHERE sha256 = ?`),
      insert: db.prepare(`INSERT INTO images (name, sha256, size, os_name, os_version, source, require_client_cert, created_at, updated_at)
        VALUES (@name, @sha256, @size, @os_name, @os_version, @source, @require_client_cert, @now, @now)`),
      update: db.prepare(`UPDATE images SET sha256=@sha256, size=@size, os_name=@os_name, os_version=@os_version, source=@source,
        require_client_cert=@require_client_cert, updated_at=CASE WHEN sha256 = @sha256 THEN updated_at ELSE @now END WHERE name=@name`),
      remove: db.prepare(`DELETE FROM images WHERE name = ?`),
      // A device references an image by catalogue name, or by the digest of its content.
      references: db.prepare(`SELECT serial FROM devices WHERE boot_image = ? OR (boot_image = ? AND ? = 1) ORDER BY serial`),
    };
  }

  /** By catalogue name, or by sha256 (64 hex digits, any case). */
  get(nameOrSha256: string): ImageEntry | undefined {
    const lower = nameOrSha256.toLowerCase();
    if (SHA256_HEX.test(lower)) return this.getBySha256(lower);
    return this.getByName(nameOrSha256);
  }

  getByName(name: string): ImageEntry | undefined {
    const row = this.stmts.byName.get(name) as ImageRow | undefined;
    return row ? rowToEntry(row) : undefined;
  }

  getBySha256(sha256: string): ImageEntry | undefined {
    const row = this.stmts.bySha.get(sha256.toLowerCase()) as ImageRow | undefined;
    return row ? rowToEntry(row) : undefined;
  }

  require(nameOrSha256: string): ImageEntry {
    const entry = this.get(nameOrSha256);
    if (!entry) throw new ZtpError('IMAGES_NOT_FOUND', `no image "${nameOrSha256}" in the catalogue`, { details: { image: nameOrSha256 } });
    return entry;
  }

  list(): ImageEntry[] {
    return (this.stmts.list.all() as ImageRow[]).map(rowToEntry);
  }

  /** Absolute path of an entry's content; derived from the digest only. */
  pathOf(entry: Pick<ImageEntry, 'sha256'>): string {
    return this.blobs.pathOf(entry.sha256);
  }

  /**
   * Streams content into the catalogue under `input.name`. Idempotent: the same name with the
   * same content is 'unchanged'; the same content under a new name is stored once. A name that
   * holds other content is refused (IMAGES_NAME_TAKEN) unless `replace`.
   */
  async add(source: Readable, input: AddImageInput, options: Omit<IngestOptions, 'expectedSha256'> = {}): Promise<AddResult> {
    checkImageName(input.name);
    const declared = input.sha256?.toLowerCase();
    if (declared !== undefined && !SHA256_HEX.test(declared)) throw new ZtpError('IMAGES_INVALID', 'sha256 must be 64 hex digits', { details: { field: 'sha256' } });
    const existing = this.getByName(input.name);
    if (existing && !input.replace && declared !== undefined && existing.sha256 !== declared) throw nameTaken(existing);
    const ingested = await this.blobs.ingest(source, { ...options, expectedSha256: declared });
    try {
      return this.commit(input, ingested.sha256, ingested.size, ingested.stored);
    } catch (err) {
      // The row was refused: drop content we just stored if nothing else holds it.
      if (ingested.stored && this.countSha(ingested.sha256) === 0) await this.blobs.remove(ingested.sha256).catch(() => undefined);
      throw err;
    }
  }

  /** Convenience for the CLI: adds a local file (streamed, hashed once). */
  async addFile(path: string, input: AddImageInput): Promise<AddResult> {
    const stream = createReadStream(path, { highWaterMark: 1024 * 1024 });
    return this.add(stream, { source: path, ...input });
  }

  /** Updates metadata of an existing image (no content change). */
  updateMeta(name: string, meta: { osName?: string | null; osVersion?: string | null; requireClientCert?: boolean }): ImageEntry {
    const e = this.getByName(name);
    if (!e) throw new ZtpError('IMAGES_NOT_FOUND', `no image "${name}" in the catalogue`, { details: { image: name } });
    this.stmts.update.run({
      name, sha256: e.sha256, size: e.size, os_name: meta.osName !== undefined ? meta.osName : e.osName, os_version: meta.osVersion !== undefined ? meta.osVersion : e.osVersion,
      source: e.source, require_client_cert: (meta.requireClientCert ?? e.requireClientCert) ? 1 : 0, now: this.clock.now().toISOString(),
    });
    return this.getByName(name)!;
  }

  private commit(input: AddImageInput, sha256: string, size: number, storedNewContent: boolean): AddResult {
    return this.db.transaction((): AddResult => {
      const existing = this.getByName(input.name);
      const now = this.clock.now().toISOString();
      const params = {
        name: input.name,
        sha256,
        size,
        os_name: input.osName !== undefined ? input.osName : (existing?.osName ?? null),
        os_version: input.osVersion !== undefined ? input.osVersion : (existing?.osVersion ?? null),
        source: input.source !== undefined ? input.source : (existing?.source ?? null),
        require_client_cert: (input.requireClientCert ?? existing?.requireClientCert ?? false) ? 1 : 0,
        now,
      };
      if (!existing) {
        this.stmts.insert.run(params);
        return { entry: this.getByName(input.name)!, outcome: 'created', storedNewContent };
      }
      if (existing.sha256 !== sha256 && !input.replace) throw nameTaken(existing);
      const same =
        existing.sha256 === sha256 && existing.osName === params.os_name && existing.osVersion === params.os_version &&
        existing.requireClientCert === (params.require_client_cert === 1);
      if (same) return { entry: existing, outcome: 'unchanged', storedNewContent };
      this.stmts.update.run(params);
      return { entry: this.getByName(input.name)!, outcome: 'updated', storedNewContent };
    })();
  }

  /** Serials of devices whose boot image is this entry (by name, or by digest). */
  referencedBy(entry: ImageEntry): string[] {
    const lastHolder = this.countSha(entry.sha256) <= 1 ? 1 : 0;
    return (this.stmts.references.all(entry.name, entry.sha256, lastHolder) as { serial: string }[]).map((r) => r.serial);
  }

  /**
   * Removes a name; refuses (IMAGES_IN_USE) while a device references it unless `force`.
   * The content goes too when no other name holds it.
   */
  async remove(name: string, options: { force?: boolean } = {}): Promise<RemoveResult> {
    const entry = this.get(name);
    if (!entry) return { removed: false, contentDeleted: false, referencedBy: [] };
    const referencedBy = this.referencedBy(entry);
    if (referencedBy.length > 0 && !options.force) {
      throw new ZtpError('IMAGES_IN_USE', `image "${entry.name}" is the boot image of ${referencedBy.length} device(s): ${referencedBy.slice(0, 5).join(', ')}; use --force`, {
        details: { image: entry.name, devices: referencedBy },
      });
    }
    const remaining = this.db.transaction(() => {
      this.stmts.remove.run(entry.name);
      return this.countSha(entry.sha256);
    })();
    if (remaining === 0) await this.blobs.remove(entry.sha256);
    return { removed: true, contentDeleted: remaining === 0, referencedBy };
  }

  private countSha(sha256: string): number {
    return (this.stmts.countSha.get(sha256) as { n: number }).n;
  }

  /** Start-up housekeeping: temp files older than an hour (a crashed ingest) go. */
  sweep(): number {
    return this.blobs.sweepTemp(60 * 60 * 1000);
  }
}

function nameTaken(existing: ImageEntry): ZtpError {
  return new ZtpError('IMAGES_NAME_TAKEN', `image "${existing.name}" already holds other content (sha256 ${existing.sha256}); remove it first or replace it`, {
    details: { image: existing.name, sha256: existing.sha256 },
  });
}

/** <dataDir>/images */
export function imagesDirOf(dataDir: string): string {
  return join(dataDir, 'images');
}
