// Per-client packet rate limiting for the DHCP responders: a token bucket per client (MAC for
// DHCPv4, DUID for DHCPv6) so one chatty or hostile client cannot monopolise the handler. Pure:
// time comes from the caller. Memory is bounded: past `maxClients` buckets, idle ones (full
// again) are forgotten, and if all are busy the table starts over.
export class ClientRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    /** packets per second, sustained */
    private readonly rate: number,
    /** packets allowed at once */
    private readonly burst: number,
    private readonly maxClients = 100_000,
  ) {}

  /** true when `key` may send one more packet at `now` (ms). */
  admit(key: string, now: number): boolean {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxClients) this.prune(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else if (now > b.at) {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.rate) / 1000);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }

  private prune(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) * this.rate) / 1000 >= this.burst) this.buckets.delete(k);
    if (this.buckets.size >= this.maxClients) this.buckets.clear();
  }
}
