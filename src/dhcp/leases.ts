// Lease bookkeeping: an in-memory table (the hot path) in front of a persistence adapter
// (SQLite in production, memory in unit tests). One lease per address by construction; offers
// are held in memory for `offerHold` seconds and never persisted.
import type { Db } from '../db/database.js';
import { ipv4ToNumber, ipv6ToBytes, ipv6ToString, numberToIpv4 } from './codec/bytes.js';

export type LeaseState = 'bound' | 'released' | 'declined';

export interface Lease {
  family: 4 | 6;
  address: string;
  clientKey: string;
  mac: string | null;
  hostname: string | null;
  subnet: string;
  state: LeaseState;
  /** Unix ms */
  startsAt: number;
  expiresAt: number;
  serial: string | null;
}

export interface LeasePersistence {
  loadAll(family: 4 | 6): Lease[];
  /** Writes all in one transaction; called before the acknowledging replies are sent. */
  save(leases: Lease[]): void;
}

export class MemoryLeasePersistence implements LeasePersistence {
  readonly rows = new Map<string, Lease>();
  loadAll(family: 4 | 6): Lease[] {
    return [...this.rows.values()].filter((l) => l.family === family).map((l) => ({ ...l }));
  }
  save(leases: Lease[]): void {
    for (const l of leases) this.rows.set(`${l.family}/${l.address}`, { ...l });
  }
}

interface LeaseRow {
  family: number;
  address: string;
  client_key: string;
  mac: string | null;
  hostname: string | null;
  subnet: string;
  state: string;
  starts_at: number;
  expires_at: number;
  serial: string | null;
}

/** SQLite adapter over the dhcp_leases table (migration 002); statements prepared once. */
export class SqliteLeasePersistence implements LeasePersistence {
  private readonly load;
  private readonly upsert;
  private readonly saveMany;

  constructor(db: Db) {
    this.load = db.prepare(`SELECT * FROM dhcp_leases WHERE family = ?`);
    this.upsert = db.prepare(`INSERT INTO dhcp_leases (family, address, client_key, mac, hostname, subnet, state, starts_at, expires_at, serial)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (family, address) DO UPDATE SET client_key = excluded.client_key, mac = excluded.mac, hostname = excluded.hostname,
        subnet = excluded.subnet, state = excluded.state, starts_at = excluded.starts_at, expires_at = excluded.expires_at, serial = excluded.serial`);
    this.saveMany = db.transaction((leases: Lease[]) => this.saveInTransaction(leases));
  }

  loadAll(family: 4 | 6): Lease[] {
    return (this.load.all(family) as LeaseRow[]).map((r) => ({
      family: r.family as 4 | 6,
      address: r.address,
      clientKey: r.client_key,
      mac: r.mac,
      hostname: r.hostname,
      subnet: r.subnet,
      state: r.state as LeaseState,
      startsAt: r.starts_at,
      expiresAt: r.expires_at,
      serial: r.serial,
    }));
  }

  save(leases: Lease[]): void {
    if (leases.length > 0) this.saveMany(leases);
  }

  /** Inside an existing transaction (the service writes leases and history together). */
  saveInTransaction(leases: Lease[]): void {
    // Positional parameters: binding by name costs a property lookup per column per row.
    for (const l of leases) this.upsert.run(l.family, l.address, l.clientKey, l.mac, l.hostname, l.subnet, l.state, l.startsAt, l.expiresAt, l.serial);
  }
}

/** A contiguous address range. */
export interface Pool {
  subnet: string;
  size: number;
  addressAt(index: number): string;
  indexOf(address: string): number;
}

export function poolV4(subnet: string, start: string, end: string): Pool {
  const a = ipv4ToNumber(start);
  const b = ipv4ToNumber(end);
  return {
    subnet,
    size: b - a + 1,
    addressAt: (i) => numberToIpv4(a + i),
    indexOf: (addr) => {
      try {
        const n = ipv4ToNumber(addr);
        return n >= a && n <= b ? n - a : -1;
      } catch {
        return -1;
      }
    },
  };
}

function bytesToBig(b: Buffer): bigint {
  return BigInt('0x' + b.toString('hex'));
}

function bigToV6(n: bigint): string {
  return ipv6ToString(Buffer.from(n.toString(16).padStart(32, '0'), 'hex'));
}

/** IPv6 ranges are scanned over at most their first 2^20 addresses. */
export function poolV6(subnet: string, start: string, end: string): Pool {
  const a = bytesToBig(ipv6ToBytes(start));
  const b = bytesToBig(ipv6ToBytes(end));
  const size = Number(b - a + 1n > 1048576n ? 1048576n : b - a + 1n);
  return {
    subnet,
    size,
    addressAt: (i) => bigToV6(a + BigInt(i)),
    indexOf: (addr) => {
      try {
        const n = bytesToBig(ipv6ToBytes(addr));
        return n >= a && n < a + BigInt(size) ? Number(n - a) : -1;
      } catch {
        return -1;
      }
    },
  };
}

interface Hold {
  clientKey: string;
  expiresAt: number;
}

/** Binary min-heap of (time, address): when a taken address may become free again. */
class ExpiryHeap {
  private readonly at: number[] = [];
  private readonly addr: string[] = [];

  get size(): number {
    return this.at.length;
  }

  peek(): number {
    return this.at.length > 0 ? this.at[0]! : Infinity;
  }

  push(time: number, address: string): void {
    let i = this.at.length;
    this.at.push(time);
    this.addr.push(address);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.at[parent]! <= time) break;
      this.at[i] = this.at[parent]!;
      this.addr[i] = this.addr[parent]!;
      i = parent;
    }
    this.at[i] = time;
    this.addr[i] = address;
  }

  pop(): string {
    const top = this.addr[0]!;
    const lastAt = this.at.pop()!;
    const lastAddr = this.addr.pop()!;
    const n = this.at.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.at[r]! < this.at[l]! ? r : l;
        if (this.at[c]! >= lastAt) break;
        this.at[i] = this.at[c]!;
        this.addr[i] = this.addr[c]!;
        i = c;
      }
      this.at[i] = lastAt;
      this.addr[i] = lastAddr;
    }
    return top;
  }
}

/**
 * Per pool: a cursor over never-considered addresses, then a FIFO of addresses that became free
 * (released or expired), so the longest-free address is reused first. Each address enters the
 * FIFO once per time it is freed and leaves it once: allocation is amortised O(1), never a scan.
 */
interface PoolState {
  pool: Pool;
  fresh: number;
  queue: string[];
  head: number;
}

/** Pools up to this size (a reservation's single address) are searched directly. */
const SMALL_POOL = 64;

export class LeaseTable {
  private readonly byAddress = new Map<string, Lease>();
  private readonly byClient = new Map<string, Lease>();
  private readonly holds = new Map<string, Hold>();
  private readonly holdByClient = new Map<string, string>();
  private readonly reserved = new Map<string, string>();
  private readonly states = new Map<Pool, PoolState>();
  /** taken addresses, by the time they may be free; one entry per address (`scheduled`) */
  private readonly expiries = new ExpiryHeap();
  private readonly scheduled = new Set<string>();
  /** client keys per owner (mac:…, duid:…), for the per-client lease limit */
  private readonly byOwner = new Map<string, Set<string>>();

  constructor(readonly family: 4 | 6, leases: Lease[] = []) {
    for (const l of leases) {
      this.index(l);
      this.schedule(l.address, l.expiresAt);
    }
  }

  private index(l: Lease): void {
    this.byAddress.set(l.address, l);
    const prev = this.byClient.get(l.clientKey);
    if (l.state !== 'declined' && (!prev || prev.startsAt <= l.startsAt)) {
      this.byClient.set(l.clientKey, l);
      this.own(l.clientKey, l.mac);
    }
  }

  /** v4 keys are per MAC or client-id; v6 keys are duid:<hex>/<iaid>: both are limited per MAC and per DUID. */
  private owners(clientKey: string, mac: string | null | undefined): string[] {
    const out: string[] = [];
    if (mac) out.push(`mac:${mac}`);
    if (clientKey.startsWith('duid:')) out.push(clientKey.slice(0, clientKey.lastIndexOf('/')));
    return out;
  }

  private own(clientKey: string, mac: string | null | undefined): void {
    for (const o of this.owners(clientKey, mac)) {
      let set = this.byOwner.get(o);
      if (!set) this.byOwner.set(o, (set = new Set()));
      set.add(clientKey);
    }
  }

  /** Client keys of `owner` holding an unexpired lease or offer now, not counting `except`. */
  activeFor(owner: string, now: number, except?: string): number {
    const set = this.byOwner.get(owner);
    if (!set) return 0;
    let n = 0;
    for (const key of set) {
      const lease = this.byClient.get(key);
      const holdAddr = this.holdByClient.get(key);
      const hold = holdAddr !== undefined ? this.holds.get(holdAddr) : undefined;
      const active = (lease?.state === 'bound' && lease.expiresAt > now) || (hold !== undefined && hold.clientKey === key && hold.expiresAt > now);
      if (!active) set.delete(key);
      else if (key !== except) n++;
    }
    if (set.size === 0) this.byOwner.delete(owner);
    return n;
  }

  /** The most active leases/offers any owner (MAC, DUID) of this client has besides this key. */
  ownerLoad(clientKey: string, mac: string | null | undefined, now: number): number {
    let max = 0;
    for (const o of this.owners(clientKey, mac)) max = Math.max(max, this.activeFor(o, now, clientKey));
    return max;
  }

  private schedule(address: string, at: number): void {
    if (this.scheduled.has(address)) return;
    this.scheduled.add(address);
    this.expiries.push(at, address);
  }

  /** Pools allocate() will be asked about; responders register theirs at start. */
  register(pools: Pool[]): void {
    for (const p of pools) if (p.size > SMALL_POOL) this.stateFor(p);
  }

  private stateFor(pool: Pool): PoolState {
    let st = this.states.get(pool);
    if (!st) {
      st = { pool, fresh: 0, queue: [], head: 0 };
      this.states.set(pool, st);
      const rest: string[] = [];
      for (const a of this.orphans) (pool.indexOf(a) >= 0 ? st.queue : rest).push(a);
      this.orphans = rest;
    }
    return st;
  }

  /** freed addresses of pools nobody registered yet (kept until one is) */
  private orphans: string[] = [];

  private enqueueFree(address: string): void {
    for (const st of this.states.values()) {
      if (st.pool.indexOf(address) >= 0) {
        st.queue.push(address);
        return;
      }
    }
    if (this.orphans.length < 65_536) this.orphans.push(address);
  }

  /** When a blocked address may be free again, or undefined when it is free now. */
  private blockedUntil(address: string, now: number): number | undefined {
    let until = -Infinity;
    const lease = this.byAddress.get(address);
    if (lease && lease.state !== 'released' && lease.expiresAt > now) until = lease.expiresAt;
    const hold = this.holds.get(address);
    if (hold) {
      if (hold.expiresAt > now) until = Math.max(until, hold.expiresAt);
      else {
        // An offer nobody took: forget it here, the sweep for holds.
        this.holds.delete(address);
        if (this.holdByClient.get(hold.clientKey) === address) this.holdByClient.delete(hold.clientKey);
      }
    }
    return until > now ? until : undefined;
  }

  /** Moves addresses whose lease, offer or probation ended into their pool's free queue. */
  private expire(now: number): void {
    while (this.expiries.size > 0 && this.expiries.peek() <= now) {
      const address = this.expiries.pop();
      this.scheduled.delete(address);
      const until = this.blockedUntil(address, now);
      if (until !== undefined) this.schedule(address, until);
      else this.enqueueFree(address);
    }
  }

  /** Addresses reserved for a client (config reservations): never given to anyone else. */
  reserve(address: string, clientKey: string): void {
    this.reserved.set(address, clientKey);
  }

  get(address: string): Lease | undefined {
    return this.byAddress.get(address);
  }

  forClient(clientKey: string): Lease | undefined {
    return this.byClient.get(clientKey);
  }

  all(): Lease[] {
    return [...this.byAddress.values()];
  }

  activeCount(now: number): number {
    let n = 0;
    for (const l of this.byAddress.values()) if (l.state === 'bound' && l.expiresAt > now) n++;
    return n;
  }

  /** May `clientKey` use `address` now? */
  isFreeFor(address: string, clientKey: string, now: number): boolean {
    const owner = this.reserved.get(address);
    if (owner !== undefined && owner !== clientKey) return false;
    const lease = this.byAddress.get(address);
    if (lease && lease.clientKey !== clientKey && lease.expiresAt > now && lease.state !== 'released') return false;
    if (lease && lease.state === 'declined' && lease.expiresAt > now) return false;
    const hold = this.holds.get(address);
    if (hold && hold.clientKey !== clientKey && hold.expiresAt > now) return false;
    return true;
  }

  /**
   * Picks an address: the client's current offer or lease, then `requested`, then the next free
   * one in the pools (never-used first, then the longest-free). undefined = dry. O(1) amortised.
   */
  allocate(pools: Pool[], clientKey: string, now: number, requested?: string): string | undefined {
    const inPools = (addr: string) => pools.some((p) => p.indexOf(addr) >= 0);
    const held = this.holdByClient.get(clientKey);
    if (held && inPools(held) && this.isFreeFor(held, clientKey, now)) return held;
    const current = this.byClient.get(clientKey);
    if (current && current.state !== 'declined' && inPools(current.address) && this.isFreeFor(current.address, clientKey, now)) return current.address;
    if (requested && inPools(requested) && this.isFreeFor(requested, clientKey, now)) return requested;
    for (const pool of pools) if (pool.size > SMALL_POOL) this.stateFor(pool);
    this.expire(now);
    for (const pool of pools) {
      if (pool.size <= SMALL_POOL) {
        for (let i = 0; i < pool.size; i++) {
          const addr = pool.addressAt(i);
          if (this.isFreeFor(addr, clientKey, now)) return addr;
        }
        continue;
      }
      const st = this.stateFor(pool);
      while (st.fresh < pool.size) {
        const addr = pool.addressAt(st.fresh++);
        // Known addresses (loaded, held, reserved) are tracked by the heap or reserved: skip.
        if (!this.byAddress.has(addr) && !this.holds.has(addr) && !this.reserved.has(addr)) return addr;
      }
      while (st.head < st.queue.length) {
        const addr = st.queue[st.head++]!;
        if (st.head > 1024 && st.head * 2 > st.queue.length) {
          st.queue.splice(0, st.head);
          st.head = 0;
        }
        // Stale entries (taken again since, or reserved) are dropped: whoever took them scheduled them.
        if (this.isFreeFor(addr, clientKey, now)) return addr;
      }
    }
    return undefined;
  }

  hold(address: string, clientKey: string, until: number, now = until, mac?: string | null): void {
    const prev = this.holdByClient.get(clientKey);
    if (prev !== undefined && prev !== address) {
      this.holds.delete(prev);
      this.enqueueFree(prev);
    }
    this.holds.set(address, { clientKey, expiresAt: until });
    this.holdByClient.set(clientKey, address);
    this.own(clientKey, mac);
    this.schedule(address, Math.max(until, now));
  }

  dropHold(clientKey: string): void {
    const addr = this.holdByClient.get(clientKey);
    if (addr !== undefined) {
      this.holds.delete(addr);
      this.holdByClient.delete(clientKey);
    }
  }

  /** Binds (or renews) a lease; returns every row that changed, for persistence. */
  bind(lease: Lease): Lease[] {
    const changed: Lease[] = [lease];
    const prev = this.byClient.get(lease.clientKey);
    if (prev && prev.address !== lease.address && prev.state === 'bound') {
      const released: Lease = { ...prev, state: 'released', expiresAt: Math.min(prev.expiresAt, lease.startsAt) };
      this.byAddress.set(released.address, released);
      changed.push(released);
      this.enqueueFree(released.address);
    }
    this.dropHold(lease.clientKey);
    this.byAddress.set(lease.address, lease);
    this.byClient.set(lease.clientKey, lease);
    this.own(lease.clientKey, lease.mac);
    this.schedule(lease.address, lease.expiresAt);
    return changed;
  }

  release(address: string, clientKey: string, now: number): Lease | undefined {
    const lease = this.byAddress.get(address);
    if (!lease || lease.clientKey !== clientKey || lease.state !== 'bound') return undefined;
    const released: Lease = { ...lease, state: 'released', expiresAt: now };
    this.byAddress.set(address, released);
    this.byClient.set(clientKey, released);
    this.enqueueFree(address);
    return released;
  }

  /** RFC 2131 §4.3.3: a declined address is marked unusable for `probationMs`. */
  decline(address: string, clientKey: string, subnet: string, now: number, probationMs: number): Lease {
    const declined: Lease = { family: this.family, address, clientKey, mac: null, hostname: null, subnet, state: 'declined', startsAt: now, expiresAt: now + probationMs, serial: null };
    this.byAddress.set(address, declined);
    if (this.byClient.get(clientKey)?.address === address) this.byClient.delete(clientKey);
    this.dropHold(clientKey);
    this.schedule(address, declined.expiresAt);
    return declined;
  }
}
