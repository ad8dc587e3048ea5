// Per-source token buckets: each source address may spend `burst` requests at once and earns
// `rate` more per second. A request without a token is refused before any work is done for it,
// with the seconds until the next token (the Retry-After of RFC 9110 §10.2.3 / RFC 6585 §4).
// Pure: the clock is injected; the map of buckets is bounded (full, idle buckets are dropped).

export interface RateDecision {
  allowed: boolean;
  /** whole seconds until a request would be allowed (0 when allowed) */
  retryAfter: number;
  /** the first refusal of this source for a minute: worth one log line (later ones are not) */
  firstRefusal: boolean;
}

interface Bucket {
  tokens: number;
  at: number;
  /** when this source was last refused (-Infinity: never) */
  refusedAt: number;
}

/** A source over its budget is logged once per this window, however it alternates. */
const QUIET_MS = 60_000;

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
    /** past this many sources, buckets that have refilled completely are forgotten */
    private readonly maxSources = 10_000,
  ) {}

  get sources(): number {
    return this.buckets.size;
  }

  take(source: string): RateDecision {
    const now = this.now();
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= this.maxSources) this.sweep(now);
      b = { tokens: this.burst, at: now, refusedAt: Number.NEGATIVE_INFINITY };
      this.buckets.set(source, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, retryAfter: 0, firstRefusal: false };
    }
    const firstRefusal = now - b.refusedAt >= QUIET_MS;
    b.refusedAt = now;
    return { allowed: false, retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / this.rate)), firstRefusal };
  }

  /** Drops the buckets that are full again (their sources are as good as new). */
  private sweep(now: number): void {
    for (const [source, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(source);
    }
    // Every source is still busy: forget the oldest rather than grow without bound.
    if (this.buckets.size >= this.maxSources) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
  }
}
