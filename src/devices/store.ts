// SQLite adapter for the device registry and the one append-only history. Every service writes
// history through `record()`, which appends the event and advances the onboarding state in one
// transaction, so the state machine, CLI, API, dashboard and metrics read the same facts.
import { EventEmitter } from 'node:events';
import type { Db } from '../db/database.js';
import { ZtpError } from '../errors.js';
import { isOnboardingState, nextState, type OnboardingState } from '../onboarding/state.js';
import type { BmcInfo, Device, DeviceInput, RedirectServer } from './model.js';
import { hashPassword, verifyPassword } from './password.js';
import { secretBoxFor, type SecretBox } from './secrets.js';

export type EventSource = 'dhcp' | 'images' | 'redfish' | 'bootstrap' | 'admin' | 'onboarding';

export interface HistoryEvent {
  id: number;
  at: string;
  serial: string | null;
  source: EventSource;
  type: string;
  data: Record<string, unknown>;
  /** set when this event moved the device's onboarding state */
  stateChange?: { from: OnboardingState; to: OnboardingState };
}

export interface NewEvent {
  serial: string | null;
  source: EventSource;
  type: string;
  data?: Record<string, unknown>;
}

export type UpsertOutcome = 'created' | 'updated' | 'unchanged';

export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

interface DeviceRow {
  serial: string;
  profile: string;
  password_hash: string | null;
  signing: string;
  boot_image: string | null;
  boot_image_sha256: string | null;
  os_name: string | null;
  os_version: string | null;
  config: string | null;
  pre_script: string | null;
  post_script: string | null;
  redirect: string | null;
  bmc: string | null;
  parent_host: string | null;
  hw_model: string | null;
  onboarding_timeouts: string | null;
  state: string;
  state_changed_at: string;
  revision: number;
  created_at: string;
  updated_at: string;
  macs: string | null;
}

interface EventRow {
  id: number;
  at: string;
  serial: string | null;
  source: string;
  type: string;
  data: string;
}

const DEVICE_SELECT = `SELECT d.*, (SELECT json_group_array(mac) FROM (SELECT mac FROM device_macs m WHERE m.serial = d.serial ORDER BY mac)) AS macs FROM devices d`;

/** Fields compared to decide whether an upsert changed anything (password handled apart). */
const COMPARED: (keyof DeviceInput & keyof Device)[] = [
  'profile', 'signing', 'macs', 'bootImage', 'bootImageSha256', 'osName', 'osVersion', 'config', 'preScript',
  'postScript', 'redirect', 'bmc', 'parentHost', 'hwModel', 'onboardingTimeouts',
];

export class DeviceStore {
  /** 'event' (HistoryEvent) after each committed append; 'device' (serial) after each registry change. */
  readonly events = new EventEmitter();
  private readonly stmts;

  private readonly secrets: SecretBox;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock = systemClock,
    secrets?: SecretBox,
  ) {
    this.secrets = secrets ?? secretBoxFor(db);
    this.transact = db.transaction((fn: () => unknown) => fn());
    this.events.setMaxListeners(0);
    this.stmts = {
      get: db.prepare(`${DEVICE_SELECT} WHERE d.serial = ?`),
      list: db.prepare(`${DEVICE_SELECT} ORDER BY d.serial`),
      page: db.prepare(`${DEVICE_SELECT} WHERE d.serial > @after AND (@state IS NULL OR d.state = @state) ORDER BY d.serial LIMIT @limit`),
      byMac: db.prepare(`SELECT serial FROM device_macs WHERE mac = ?`),
      allMacs: db.prepare(`SELECT mac, serial FROM device_macs`),
      dataVersion: db.prepare(`PRAGMA data_version`).pluck(),
      countMacs: db.prepare(`SELECT count(*) AS n FROM device_macs`),
      passwordHash: db.prepare(`SELECT password_hash FROM devices WHERE serial = ?`),
      insert: db.prepare(`INSERT INTO devices (serial, profile, password_hash, signing, boot_image, boot_image_sha256, os_name, os_version, config,
          pre_script, post_script, redirect, bmc, parent_host, hw_model, onboarding_timeouts, state, state_changed_at, created_at, updated_at)
        VALUES (@serial, @profile, @password_hash, @signing, @boot_image, @boot_image_sha256, @os_name, @os_version, @config,
          @pre_script, @post_script, @redirect, @bmc, @parent_host, @hw_model, @onboarding_timeouts, 'registered', @now, @now, @now)`),
      update: db.prepare(`UPDATE devices SET profile=@profile, password_hash=@password_hash, signing=@signing, boot_image=@boot_image,
          boot_image_sha256=@boot_image_sha256, os_name=@os_name, os_version=@os_version, config=@config, pre_script=@pre_script,
          post_script=@post_script, redirect=@redirect, bmc=@bmc, parent_host=@parent_host, hw_model=@hw_model, onboarding_timeouts=@onboarding_timeouts,
          revision = revision + 1, updated_at=@now WHERE serial=@serial`),
      deleteMacs: db.prepare(`DELETE FROM device_macs WHERE serial = ?`),
      insertMac: db.prepare(`INSERT INTO device_macs (mac, serial) VALUES (?, ?)`),
      macOwner: db.prepare(`SELECT serial FROM device_macs WHERE mac = ? AND serial != ?`),
      remove: db.prepare(`DELETE FROM devices WHERE serial = ?`),
      setState: db.prepare(`UPDATE devices SET state = ?, state_changed_at = ? WHERE serial = ?`),
      stateOf: db.prepare(`SELECT state FROM devices WHERE serial = ?`),
      append: db.prepare(`INSERT INTO events (at, serial, source, type, data) VALUES (?, ?, ?, ?, ?)`),
      history: db.prepare(`SELECT * FROM events WHERE serial = ? AND id > ? ORDER BY id LIMIT ?`),
      historyDesc: db.prepare(`SELECT * FROM (SELECT * FROM events WHERE serial = ? AND (? = '' OR type = ?) ORDER BY id DESC LIMIT ?) ORDER BY id`),
      recent: db.prepare(`SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?`),
      countByState: db.prepare(`SELECT state, count(*) AS n FROM devices GROUP BY state`),
      // kept by a trigger (migration 006): a scrape reads a few rows, not the whole history
      countEvents: db.prepare(`SELECT source, type, n FROM event_counts ORDER BY source, type`),
      count: db.prepare(`SELECT count(*) AS n FROM devices`),
      lastEventId: db.prepare(`SELECT coalesce(max(id), 0) FROM events`).pluck(),
      imageReads: db.prepare(`SELECT json_extract(data, '$.image') AS image, count(*) AS reads, count(DISTINCT serial) AS devices,
          coalesce(sum(json_extract(data, '$.bytes')), 0) AS bytes FROM events WHERE source = 'images' AND type = 'download' GROUP BY 1`),
    };
  }

  private unannounced: HistoryEvent[] = [];

  /**
   * One transaction function for every write, built once: db.transaction(fn) builds four wrapper
   * functions per call (issue 12). Nested calls become savepoints, as before.
   */
  private readonly transact: (fn: () => unknown) => unknown;

  /** Every write goes through here: one transaction (a savepoint when nested), then announce. */
  private commit<T>(fn: () => T): T {
    let result: T;
    try {
      result = this.transact(fn) as T;
    } catch (err) {
      if (!this.db.inTransaction) this.unannounced = [];
      throw err;
    }
    if (!this.db.inTransaction) {
      const events = this.unannounced;
      this.unannounced = [];
      for (const e of events) this.events.emit('event', e);
    }
    return result;
  }

  /**
   * Events another connection of this process committed (the DHCP worker thread's): announced to
   * this store's listeners as if committed here; a state change drops the device's cached entry.
   */
  announceCommitted(events: HistoryEvent[]): void {
    for (const e of events) if (e.serial !== null && e.stateChange) this.hot.delete(e.serial);
    for (const e of events) this.events.emit('event', e);
  }

  /** Runs fn in one transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.commit(fn);
  }

  get(serial: string): Device | undefined {
    const row = this.stmts.get.get(serial) as DeviceRow | undefined;
    return row ? rowToDevice(row, this.secrets) : undefined;
  }

  /**
   * The device and its password hash from a read-through cache, for per-request hot paths
   * (bootstrap server). Entries drop on every registry change and state change of that device,
   * all of which go through this store.
   */
  cached(serial: string): { device: Device; passwordHash: string | null } | undefined {
    let entry = this.hot.get(serial);
    if (entry) return entry;
    const row = this.stmts.get.get(serial) as DeviceRow | undefined;
    if (!row) return undefined;
    entry = { device: rowToDevice(row, this.secrets), passwordHash: row.password_hash };
    if (this.hot.size >= 50_000) this.hot.clear();
    this.hot.set(serial, entry);
    return entry;
  }

  private readonly hot = new Map<string, { device: Device; passwordHash: string | null }>();

  /**
   * The device owning a MAC, through the same cache, remembering misses too: a DHCP responder
   * asks for every packet, mostly about MACs that belong to no device. Cleared on every
   * registry change.
   */
  cachedByMac(mac: string): Device | undefined {
    const key = mac.toLowerCase();
    this.noticeForeignWrites();
    // The whole MAC index in memory (one query after each registry change) while it is small:
    // a flood of unknown MACs then never reaches SQLite.
    if (this.macIndex === undefined) this.macIndex = this.loadMacIndex();
    if (this.macIndex) {
      const owner = this.macIndex.get(key);
      return owner === undefined ? undefined : this.cached(owner)?.device;
    }
    let serial = this.macs.get(key);
    if (serial === undefined) {
      serial = (this.stmts.byMac.get(key) as { serial: string } | undefined)?.serial ?? null;
      if (this.macs.size >= 100_000) this.macs.clear();
      this.macs.set(key, serial);
    }
    return serial === null ? undefined : this.cached(serial)?.device;
  }

  private readonly macs = new Map<string, string | null>();
  /** mac → serial for every registered MAC; undefined = not loaded, null = too large (per-MAC lookups) */
  private macIndex: Map<string, string> | null | undefined;

  private dataVersion: number | undefined;
  private versionCheckedAt = 0;

  /**
   * Another process (the `ztp device` CLI writes the same database) may have changed the
   * registry: at most once a second, SQLite's data_version says whether any other connection
   * committed since; if so the caches start over.
   */
  private noticeForeignWrites(): void {
    const now = this.clock.now().getTime();
    if (now - this.versionCheckedAt < 1000) return;
    this.versionCheckedAt = now;
    const v = this.stmts.dataVersion.get() as number;
    if (this.dataVersion !== undefined && v !== this.dataVersion) {
      this.macs.clear();
      this.macIndex = undefined;
      this.hot.clear();
    }
    this.dataVersion = v;
  }

  private loadMacIndex(): Map<string, string> | null {
    if ((this.stmts.countMacs.get() as { n: number }).n > 200_000) return null;
    return new Map((this.stmts.allMacs.all() as { mac: string; serial: string }[]).map((r) => [r.mac, r.serial]));
  }

  require(serial: string): Device {
    const device = this.get(serial);
    if (!device) throw new ZtpError('DEVICE_NOT_FOUND', `no device with serial number "${serial}"`, { details: { serial } });
    return device;
  }

  getByMac(mac: string): Device | undefined {
    const row = this.stmts.byMac.get(mac.toLowerCase()) as { serial: string } | undefined;
    return row ? this.get(row.serial) : undefined;
  }

  list(): Device[] {
    return (this.stmts.list.all() as DeviceRow[]).map((r) => rowToDevice(r, this.secrets));
  }

  /** Up to `limit` devices after serial `after` (exclusive), in serial order; `state` filters. */
  page(options: { after?: string; limit: number; state?: string }): Device[] {
    const rows = this.stmts.page.all({ after: options.after ?? '', limit: options.limit, state: options.state ?? null }) as DeviceRow[];
    return rows.map((r) => rowToDevice(r, this.secrets));
  }

  count(): number {
    return (this.stmts.count.get() as { n: number }).n;
  }

  checkPassword(serial: string, password: string): boolean {
    const row = this.stmts.passwordHash.get(serial) as { password_hash: string | null } | undefined;
    return !!row?.password_hash && verifyPassword(password, row.password_hash);
  }

  /** The stored hash (null: device has no password; undefined: no such device). */
  passwordHashOf(serial: string): string | null | undefined {
    return this.cached(serial)?.passwordHash;
  }

  /**
   * Creates or updates a device; fields absent from the input keep their value. Idempotent:
   * the same input twice gives 'unchanged' the second time and writes nothing.
   */
  upsert(input: DeviceInput, actor = 'cli'): UpsertOutcome {
    // Hash outside the transaction: scrypt is slow and a transaction must not wait on it.
    const existingHash = (this.stmts.passwordHash.get(input.serial) as { password_hash: string | null } | undefined)?.password_hash ?? null;
    let passwordHash = existingHash;
    let passwordChanged = false;
    if (input.password === null) {
      passwordChanged = existingHash !== null;
      passwordHash = null;
    } else if (typeof input.password === 'string' && !(existingHash && verifyPassword(input.password, existingHash))) {
      passwordHash = hashPassword(input.password);
      passwordChanged = true;
    }
    const outcome = this.commit((): UpsertOutcome => {
      const existing = this.get(input.serial);
      const merged = mergeInput(existing, input);
      for (const mac of merged.macs) {
        const owner = this.stmts.macOwner.get(mac, input.serial) as { serial: string } | undefined;
        if (owner) throw new ZtpError('DEVICE_INVALID', `macs: ${mac} already belongs to device ${owner.serial}`, { details: { field: 'macs', mac } });
      }
      if (existing && !passwordChanged && COMPARED.every((k) => sameValue(existing[k], merged[k]))) return 'unchanged';
      const now = this.clock.now().toISOString();
      const params = deviceParams(merged, passwordHash, now, this.secrets);
      if (existing) this.stmts.update.run(params);
      else this.stmts.insert.run(params);
      this.stmts.deleteMacs.run(input.serial);
      for (const mac of merged.macs) this.stmts.insertMac.run(mac, input.serial);
      const changed = existing ? COMPARED.filter((k) => !sameValue(existing[k], merged[k])) : [];
      if (passwordChanged) changed.push('password' as never);
      this.appendInTx({ serial: input.serial, source: 'admin', type: existing ? 'device-updated' : 'device-added', data: { actor, fields: changed } });
      return existing ? 'updated' : 'created';
    });
    this.hot.delete(input.serial);
    this.macs.clear();
    this.macIndex = undefined;
    if (outcome !== 'unchanged') this.events.emit('device', input.serial);
    return outcome;
  }

  /** Keeps a BMC password the suite set itself (factory-default change on first login), sealed. */
  setBmcPassword(serial: string, password: string, actor = 'redfish'): void {
    const device = this.require(serial);
    if (!device.bmc) throw new ZtpError('DEVICE_INVALID', `bmc: device ${serial} has no BMC`, { details: { field: 'bmc' } });
    const { passwordUnreadable: _unreadable, ...bmc } = device.bmc;
    this.upsert({ serial, bmc: { ...bmc, password } }, actor);
  }

  remove(serial: string, actor = 'cli'): boolean {
    const removed = this.commit(() => {
      const info = this.stmts.remove.run(serial);
      if (info.changes > 0) this.appendInTx({ serial, source: 'admin', type: 'device-removed', data: { actor } });
      return info.changes > 0;
    });
    this.hot.delete(serial);
    this.macs.clear();
    this.macIndex = undefined;
    if (removed) this.events.emit('device', serial);
    return removed;
  }

  /** Appends one history event and advances the device's onboarding state, atomically. */
  record(event: NewEvent): HistoryEvent {
    const stored = this.commit(() => this.appendInTx(event));
    return stored;
  }

  /**
   * Group commit: appends the event in a transaction shared with every other event queued in
   * the same turn of the event loop, and resolves once that transaction has committed. Servers
   * acknowledge a request only after this resolves, so nothing acknowledged is ever lost, while
   * 200 concurrent devices cost one commit per batch instead of one each.
   */
  recordCommitted(event: NewEvent): Promise<HistoryEvent> {
    return new Promise((resolve, reject) => {
      this.pending.push({ event, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flushPending());
    });
  }

  private pending: { event: NewEvent; resolve: (e: HistoryEvent) => void; reject: (err: unknown) => void }[] = [];

  private flushPending(): void {
    const batch = this.pending;
    this.pending = [];
    let stored: HistoryEvent[];
    // The batch is one transaction and one instant: one timestamp for all its events.
    const at = this.clock.now().toISOString();
    try {
      stored = this.commit(() => batch.map((p) => this.appendInTx(p.event, at)));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(stored[i]!));
  }

  /** Appends several events in one transaction (one commit); used by batching writers. */
  recordMany(events: NewEvent[]): HistoryEvent[] {
    if (this.db.inTransaction) return events.map((e) => this.appendInTx(e)); // part of the caller's transaction()
    return this.commit(() => events.map((e) => this.appendInTx(e)));
  }

  private appendInTx(event: NewEvent, at = this.clock.now().toISOString()): HistoryEvent {
    const data = event.data ?? {};
    const info = this.stmts.append.run(at, event.serial, event.source, event.type, JSON.stringify(data));
    const stored: HistoryEvent = { id: Number(info.lastInsertRowid), at, serial: event.serial, source: event.source, type: event.type, data };
    if (event.serial !== null) {
      const row = this.stmts.stateOf.get(event.serial) as { state: string } | undefined;
      if (row) {
        const current: OnboardingState = isOnboardingState(row.state) ? row.state : 'registered';
        const next = nextState(current, stored);
        if (next !== current) {
          this.stmts.setState.run(next, at, event.serial);
          this.hot.delete(event.serial);
          stored.stateChange = { from: current, to: next };
        }
      }
    }
    // Emitted by commit() once the outermost transaction has committed: listeners never see
    // an event that a rollback undid.
    this.unannounced.push(stored);
    return stored;
  }

  /** A device's history, oldest first; `afterId` pages forward. */
  history(serial: string, afterId = 0, limit = 1000): HistoryEvent[] {
    return (this.stmts.history.all(serial, afterId, limit) as EventRow[]).map(rowToEvent);
  }

  /** The newest `limit` events of one device (optionally of one type), oldest first. */
  recentHistory(serial: string, limit = 100, type = ''): HistoryEvent[] {
    return (this.stmts.historyDesc.all(serial, type, type, limit) as EventRow[]).map(rowToEvent);
  }

  /** All events after `afterId`, any device: the feed for the dashboard and watchers. */
  eventsAfter(afterId: number, limit = 1000): HistoryEvent[] {
    return (this.stmts.recent.all(afterId, limit) as EventRow[]).map(rowToEvent);
  }

  /** The newest event id committed by any connection (0: none yet). */
  latestEventId(): number {
    return this.stmts.lastEventId.get() as number;
  }

  /**
   * SQLite's data_version: it changes whenever another connection (the `ztp` CLI, a standalone
   * DHCP process, the DHCP worker thread) commits, so a poller notices foreign writes for the
   * price of one pragma.
   */
  commitVersion(): number {
    return this.stmts.dataVersion.get() as number;
  }

  /** A device's onboarding state as stored now (undefined: no such device). */
  stateOf(serial: string): string | undefined {
    return (this.stmts.stateOf.get(serial) as { state: string } | undefined)?.state;
  }

  /** Image downloads recorded in the history, per image name. */
  imageReads(): { image: string | null; reads: number; devices: number; bytes: number }[] {
    return this.stmts.imageReads.all() as { image: string | null; reads: number; devices: number; bytes: number }[];
  }

  stateCounts(): Record<string, number> {
    return Object.fromEntries((this.stmts.countByState.all() as { state: string; n: number }[]).map((r) => [r.state, r.n]));
  }

  eventCounts(): { source: string; type: string; n: number }[] {
    return this.stmts.countEvents.all() as { source: string; type: string; n: number }[];
  }
}

/**
 * Field equality on opened values, whatever the key order: a stored BMC comes back with its
 * password (opened from the sealed column, whose ciphertext differs on every write) last, while
 * an imported one has it where the file had it.
 */
function sameValue(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

function mergeInput(existing: Device | undefined, input: DeviceInput): Device {
  const base: Device = existing ?? {
    serial: input.serial, profile: 'rfc8572', hasPassword: false, signing: 'auto', macs: [], bootImage: null, bootImageSha256: null,
    osName: null, osVersion: null, config: null, preScript: null, postScript: null, redirect: null, bmc: null, parentHost: null,
    hwModel: null, onboardingTimeouts: null, state: 'registered', stateChangedAt: '', revision: 0, createdAt: '', updatedAt: '',
  };
  const merged: Device = { ...base };
  for (const key of COMPARED) {
    if (input[key] !== undefined) (merged as unknown as Record<string, unknown>)[key] = input[key];
  }
  merged.macs = [...merged.macs].sort();
  // A BMC update without a password keeps the stored one: admins re-import lists without secrets.
  if (input.bmc && existing?.bmc && existing.bmc.address === input.bmc.address) {
    if (input.bmc.password === undefined && existing.bmc.password) merged.bmc = { ...merged.bmc!, password: existing.bmc.password };
    if (input.bmc.factoryPassword === undefined && existing.bmc.factoryPassword) merged.bmc = { ...merged.bmc!, factoryPassword: existing.bmc.factoryPassword };
  }
  return merged;
}

/** The BMC as stored: the password sealed under the data directory's key, never in clear. */
function bmcColumn(d: Device, secrets: SecretBox): string | null {
  if (!d.bmc) return null;
  const { password, factoryPassword, ...rest } = d.bmc;
  const out: Record<string, unknown> = { ...rest };
  if (password) out.passwordSealed = secrets.seal(password, d.serial);
  // Its own context: a sealed factory password does not open as the password, nor the reverse.
  if (factoryPassword) out.factoryPasswordSealed = secrets.seal(factoryPassword, `${d.serial}#factory`);
  return JSON.stringify(out);
}

function bmcFromColumn(serial: string, column: string | null, secrets: SecretBox): BmcInfo | null {
  if (!column) return null;
  const { passwordSealed, factoryPasswordSealed, ...bmc } = JSON.parse(column) as BmcInfo & { passwordSealed?: string; factoryPasswordSealed?: string };
  // An unreadable secret (key file replaced) surfaces as SECRETS_UNREADABLE when the BMC is used,
  // not here: listing devices must keep working.
  if (passwordSealed) {
    try {
      bmc.password = secrets.open(passwordSealed, serial);
    } catch {
      bmc.passwordUnreadable = true;
    }
  }
  if (factoryPasswordSealed) {
    try {
      bmc.factoryPassword = secrets.open(factoryPasswordSealed, `${serial}#factory`);
    } catch {
      bmc.passwordUnreadable = true;
    }
  }
  return bmc;
}

function deviceParams(d: Device, passwordHash: string | null, now: string, secrets: SecretBox) {
  return {
    serial: d.serial, profile: d.profile, password_hash: passwordHash, signing: d.signing, boot_image: d.bootImage,
    boot_image_sha256: d.bootImageSha256, os_name: d.osName, os_version: d.osVersion, config: d.config, pre_script: d.preScript,
    post_script: d.postScript, redirect: d.redirect ? JSON.stringify(d.redirect) : null, bmc: bmcColumn(d, secrets),
    parent_host: d.parentHost, hw_model: d.hwModel, onboarding_timeouts: d.onboardingTimeouts ? JSON.stringify(d.onboardingTimeouts) : null, now,
  };
}

function rowToDevice(row: DeviceRow, secrets: SecretBox): Device {
  return {
    serial: row.serial,
    profile: row.profile as Device['profile'],
    hasPassword: row.password_hash !== null,
    signing: row.signing as Device['signing'],
    macs: row.macs ? (JSON.parse(row.macs) as string[]) : [],
    bootImage: row.boot_image,
    bootImageSha256: row.boot_image_sha256,
    osName: row.os_name,
    osVersion: row.os_version,
    config: row.config,
    preScript: row.pre_script,
    postScript: row.post_script,
    redirect: row.redirect ? (JSON.parse(row.redirect) as RedirectServer[]) : null,
    bmc: bmcFromColumn(row.serial, row.bmc, secrets),
    parentHost: row.parent_host,
    hwModel: row.hw_model,
    onboardingTimeouts: row.onboarding_timeouts ? (JSON.parse(row.onboarding_timeouts) as Record<string, number>) : null,
    state: row.state,
    stateChangedAt: row.state_changed_at,
    revision: row.revision,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function rowToEvent(row: EventRow): HistoryEvent {
  return { id: row.id, at: row.at, serial: row.serial, source: row.source as EventSource, type: row.type, data: JSON.parse(row.data) as Record<string, unknown> };
}
