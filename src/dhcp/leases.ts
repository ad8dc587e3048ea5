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
      VALUES (@family, @address, @clientKey, @mac, @hostname, @subnet, @state, @startsAt, @expiresAt, @serial)
      ON CONFLICT (family, address) DO UPDATE SET client_key = excluded.client_key, mac = excluded.mac, hostname = excluded.hostname,
        subnet = excluded.subnet, state = excluded.state, starts_at = excluded.starts_at, expires_at = excluded.expires_at, serial = excluded.serial`);
    this.saveMany = db.transaction((leases: Lease[]) => {
      for (const l of leases) this.upsert.run(l);
    });
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
    for (const l of leases) this.upsert.run(l);
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

export class LeaseTable {
  private readonly byAddress = new Map<string, Lease>();
  private readonly byClient = new Map<string, Lease>();
  private readonly holds = new Map<string, Hold>();
  private readonly holdByClient = new Map<string, string>();
  private readonly reserved = new Map<string, string>();
  private readonly cursors = new Map<Pool, number>();

  constructor(readonly family: 4 | 6, leases: Lease[] = []) {
    for (const l of leases) this.index(l);
  }

  private index(l: Lease): void {
    this.byAddress.set(l.address, l);
    const prev = this.byClient.get(l.clientKey);
    if (l.state !== 'declined' && (!prev || prev.startsAt <= l.startsAt)) this.byClient.set(l.clientKey, l);
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
   * Picks an address: the client's current one, then `requested`, then the next free one in the
   * pools (rotating cursor, so recently released addresses are reused last). undefined = dry.
   */
  allocate(pools: Pool[], clientKey: string, now: number, requested?: string): string | undefined {
    const inPools = (addr: string) => pools.some((p) => p.indexOf(addr) >= 0);
    const held = this.holdByClient.get(clientKey);
    if (held && inPools(held) && this.isFreeFor(held, clientKey, now)) return held;
    const current = this.byClient.get(clientKey);
    if (current && current.state !== 'declined' && inPools(current.address) && this.isFreeFor(current.address, clientKey, now)) return current.address;
    if (requested && inPools(requested) && this.isFreeFor(requested, clientKey, now)) return requested;
    for (const pool of pools) {
      let cursor = this.cursors.get(pool) ?? 0;
      for (let n = 0; n < pool.size; n++) {
        const addr = pool.addressAt(cursor);
        cursor = cursor + 1 >= pool.size ? 0 : cursor + 1;
        const lease = this.byAddress.get(addr);
        // Prefer never-used or long-expired addresses: skip ones still within their lease.
        if (this.isFreeFor(addr, clientKey, now) && (!lease || lease.clientKey === clientKey || lease.expiresAt <= now || lease.state === 'released')) {
          this.cursors.set(pool, cursor);
          return addr;
        }
      }
      this.cursors.set(pool, cursor);
    }
    return undefined;
  }

  hold(address: string, clientKey: string, until: number, now = until): void {
    // Offers to clients that never REQUEST must not accumulate: sweep expired holds now and then.
    if (this.holds.size > 4096 && this.holds.size % 1024 === 0) {
      for (const [addr, h] of this.holds) {
        if (h.expiresAt <= now) {
          this.holds.delete(addr);
          if (this.holdByClient.get(h.clientKey) === addr) this.holdByClient.delete(h.clientKey);
        }
      }
    }
    const prev = this.holdByClient.get(clientKey);
    if (prev !== undefined && prev !== address) this.holds.delete(prev);
    this.holds.set(address, { clientKey, expiresAt: until });
    this.holdByClient.set(clientKey, address);
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
    }
    this.dropHold(lease.clientKey);
    this.byAddress.set(lease.address, lease);
    this.byClient.set(lease.clientKey, lease);
    return changed;
  }

  release(address: string, clientKey: string, now: number): Lease | undefined {
    const lease = this.byAddress.get(address);
    if (!lease || lease.clientKey !== clientKey || lease.state !== 'bound') return undefined;
    const released: Lease = { ...lease, state: 'released', expiresAt: now };
    this.byAddress.set(address, released);
    this.byClient.set(clientKey, released);
    return released;
  }

  /** RFC 2131 §4.3.3: a declined address is marked unusable for `probationMs`. */
  decline(address: string, clientKey: string, subnet: string, now: number, probationMs: number): Lease {
    const declined: Lease = { family: this.family, address, clientKey, mac: null, hostname: null, subnet, state: 'declined', startsAt: now, expiresAt: now + probationMs, serial: null };
    this.byAddress.set(address, declined);
    if (this.byClient.get(clientKey)?.address === address) this.byClient.delete(clientKey);
    this.dropHold(clientKey);
    return declined;
  }
}
