// Failed bootstrap requests per (serial, source address): coalesced for the history and
// rate-limited (issue 11: every failed attempt appended a row; one device reached 19,904).
// Policy with an injected clock and a writer port (tests drive windows by hand); the history
// adapter is historyFailureWriter at the end.
//
// Per key, a fixed window opens at the first failure. The first failure of each kind (code, and
// for access-denied the reason: wrong password, expired certificate, ...) is written at once, so
// the audit trail never loses the start of a burst nor a new reason; repeats are counted and
// written as one summary row when the window closes (sweep, next failure after it, or close()).
// 429 refusals are only ever counted. Once a key has
// `limit` failed authentications in its window, further requests are refused with 429 and
// Retry-After until the window ends, before any password is checked.
// Per source address alone, a second budget (`sourceLimit`, same window length): one host
// rotating serials gets a new (serial, address) key per guess, each worth a ~90 ms scrypt
// (issue 11: 100 guesses/s from one address), so past `sourceLimit` failed authentications
// the address is refused too, for any serial that would cost a password check.

import type { DeviceStore } from '../devices/store.js';
import type { Logger } from '../log.js';

export interface FailureRecord {
  serial: string;
  ip: string;
  rpc: string;
  code: string;
  error: string;
}

export interface FailureSummary {
  serial: string;
  ip: string;
  /** failures not written on their own (repeats of a kind, 429s), written only here */
  count: number;
  /** of which refused with 429 before authentication */
  rateLimited: number;
  codes: Record<string, number>;
  rpcs: Record<string, number>;
  firstAt: string;
  lastAt: string;
  windowSeconds: number;
}

/** Port: where the first failure and the summaries go (the device history in production). */
export interface FailureWriter {
  first(record: FailureRecord): void;
  summary(summary: FailureSummary): void;
}

export interface FailureLimiterOptions {
  windowMs: number;
  /** failed authentications per key and window before 429 */
  limit: number;
  /** failed authentications per source address and window, any serial, before 429 (default: no such limit) */
  sourceLimit?: number;
  /** keys tracked at most; the oldest windows are closed early beyond it */
  maxKeys?: number;
  now?: () => number;
}

/** Distinct kinds written individually per window, at most (reasons come from a small set). */
const MAX_KINDS_PER_WINDOW = 8;

interface Window {
  kinds: Set<string>;
  serial: string;
  ip: string;
  start: number;
  last: number;
  authFailures: number;
  count: number;
  rateLimited: number;
  codes: Record<string, number>;
  rpcs: Record<string, number>;
}

export class FailureLimiter {
  private readonly windows = new Map<string, Window>();
  /** per source address: when its window opened and the failed authentications in it */
  private readonly sources = new Map<string, { start: number; authFailures: number }>();
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(
    private readonly writer: FailureWriter,
    private readonly options: FailureLimiterOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  /** Seconds until the key may try again, when it is over its limit; undefined otherwise. */
  retryAfter(serial: string, ip: string): number | undefined {
    const w = this.current(serial, ip);
    if (!w || w.authFailures < this.options.limit) return undefined;
    return Math.max(1, Math.ceil((w.start + this.options.windowMs - this.now()) / 1000));
  }

  /** Seconds until the address may have passwords checked again, when it is over `sourceLimit`. */
  sourceRetryAfter(ip: string): number | undefined {
    const limit = this.options.sourceLimit;
    const w = limit === undefined ? undefined : this.currentSource(ip);
    if (!w || w.authFailures < limit!) return undefined;
    return Math.max(1, Math.ceil((w.start + this.options.windowMs - this.now()) / 1000));
  }

  /**
   * Notes one failure. `authentication` marks failed credentials (what the limit counts);
   * `rateLimited` marks a 429 refusal (counted in the summary, never written on its own).
   */
  failed(record: FailureRecord, kind: { authentication: boolean; rateLimited?: boolean }): void {
    const t = this.now();
    let w = this.current(record.serial, record.ip);
    if (!w) {
      if (this.windows.size >= this.maxKeys) this.closeOldest();
      w = { kinds: new Set(), serial: record.serial, ip: record.ip, start: t, last: t, authFailures: 0, count: 0, rateLimited: 0, codes: {}, rpcs: {} };
      this.windows.set(keyOf(record.serial, record.ip), w);
    }
    w.last = t;
    if (kind.authentication) {
      w.authFailures++;
      if (this.options.sourceLimit !== undefined) this.countSource(record.ip, t);
    }
    const k = record.code === 'SZTP_ACCESS_DENIED' ? `${record.code}:${record.error}` : record.code;
    if (!kind.rateLimited && !w.kinds.has(k) && w.kinds.size < MAX_KINDS_PER_WINDOW) {
      w.kinds.add(k);
      this.writer.first(record);
      return;
    }
    w.count++;
    if (kind.rateLimited) w.rateLimited++;
    w.codes[record.code] = (w.codes[record.code] ?? 0) + 1;
    w.rpcs[record.rpc] = (w.rpcs[record.rpc] ?? 0) + 1;
  }

  /** Closes every window that has ended, writing its summary. */
  sweep(): void {
    const t = this.now();
    for (const [ip, w] of this.sources) if (t - w.start >= this.options.windowMs) this.sources.delete(ip);
    for (const [key, w] of this.windows) {
      if (t - w.start >= this.options.windowMs) this.close(key, w);
    }
  }

  /** Closes every window (shutdown): nothing counted is lost. */
  flush(): void {
    for (const [key, w] of this.windows) this.close(key, w);
  }

  get size(): number {
    return this.windows.size;
  }

  private current(serial: string, ip: string): Window | undefined {
    const key = keyOf(serial, ip);
    const w = this.windows.get(key);
    if (w && this.now() - w.start >= this.options.windowMs) {
      this.close(key, w);
      return undefined;
    }
    return w;
  }

  private currentSource(ip: string): { start: number; authFailures: number } | undefined {
    const w = this.sources.get(ip);
    if (w && this.now() - w.start >= this.options.windowMs) {
      this.sources.delete(ip);
      return undefined;
    }
    return w;
  }

  private countSource(ip: string, t: number): void {
    const w = this.currentSource(ip);
    if (w) {
      w.authFailures++;
      return;
    }
    // Bounded like the keys: the window opened longest ago goes first.
    if (this.sources.size >= this.maxKeys) this.sources.delete(this.sources.keys().next().value!);
    this.sources.set(ip, { start: t, authFailures: 1 });
  }

  private closeOldest(): void {
    // Map iteration is insertion order: the first entry opened longest ago.
    const first = this.windows.entries().next();
    if (!first.done) this.close(first.value[0], first.value[1]);
  }

  private close(key: string, w: Window): void {
    this.windows.delete(key);
    if (w.count === 0) return;
    this.writer.summary({
      serial: w.serial, ip: w.ip, count: w.count, rateLimited: w.rateLimited, codes: w.codes, rpcs: w.rpcs,
      firstAt: new Date(w.start).toISOString(), lastAt: new Date(w.last).toISOString(), windowSeconds: Math.round(this.options.windowMs / 1000),
    });
  }
}

function keyOf(serial: string, ip: string): string {
  return `${serial}\0${ip}`;
}

/** Adapter: rows in the device history, for registered devices only (unknown serials have none). */
export function historyFailureWriter(store: DeviceStore, log: Logger): FailureWriter {
  const registered = (serial: string) => store.passwordHashOf(serial) !== undefined;
  return {
    first(r) {
      if (registered(r.serial)) store.record({ serial: r.serial, source: 'bootstrap', type: 'request', data: { rpc: r.rpc, result: 'error', code: r.code, ip: r.ip, error: r.error } });
    },
    summary(s) {
      if (!registered(s.serial)) return;
      store.record({
        serial: s.serial, source: 'bootstrap', type: 'request',
        data: { rpc: 'summary', result: 'error', repeated: s.count, rateLimited: s.rateLimited, codes: s.codes, rpcs: s.rpcs, ip: s.ip, firstAt: s.firstAt, lastAt: s.lastAt, windowSeconds: s.windowSeconds },
      });
      log.warn({ serial: s.serial, ip: s.ip, repeated: s.count, rateLimited: s.rateLimited, codes: s.codes }, 'repeated failed bootstrap requests');
    },
  };
}
