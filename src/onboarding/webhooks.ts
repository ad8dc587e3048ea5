// Outgoing webhooks for fleet scripts: every onboarding transition POSTed as JSON to each
// configured receiver, signed with HMAC-SHA256 over the exact body
// (X-Ztp-Signature: sha256=<hex>), retried with capped exponential back-off. Deliveries run on
// their own queue: the conductor never waits for a receiver, and a dead receiver costs a bounded
// queue (oldest dropped, logged), never memory without end.
import { createHmac } from 'node:crypto';
import type { Config } from '../config.js';
import type { DeviceStore, HistoryEvent } from '../devices/store.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

export interface WebhookTarget {
  url: string;
  secret?: string;
  /** statuses or steps to send (empty: every transition) */
  events?: string[];
}

export interface WebhookOptions {
  /** attempts per delivery, first included (default 6) */
  attempts?: number;
  /** first retry delay (default 1 s), doubled each time up to maxDelayMs (default 60 s) */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** per POST (default 10 s) */
  timeoutMs?: number;
  /** deliveries waiting per receiver before the oldest is dropped (default 10,000) */
  maxQueue?: number;
  fetch?: typeof fetch;
}

export function webhookTargets(settings: Config['onboarding']): WebhookTarget[] {
  const targets: WebhookTarget[] = settings.webhooks.map((w) => ({ url: w.url, ...(w.secret ? { secret: w.secret } : {}), ...(w.events ? { events: w.events } : {}) }));
  if (settings.webhookUrl) targets.unshift({ url: settings.webhookUrl, ...(settings.webhookSecret ? { secret: settings.webhookSecret } : {}) });
  return targets;
}

/** The signature header value for a body: sha256=<hex HMAC-SHA256(secret, body)>. */
export function signBody(secret: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

interface Delivery {
  id: number;
  body: string;
  attempt: number;
}

class Receiver {
  private readonly queue: Delivery[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private controller: AbortController | undefined;
  stopped = false;
  delivered = 0;
  dropped = 0;

  constructor(
    readonly target: WebhookTarget,
    private readonly opts: Required<Omit<WebhookOptions, 'fetch'>> & { fetch: typeof fetch },
    private readonly log: Logger,
  ) {}

  push(d: Delivery): void {
    if (this.stopped) return;
    if (this.queue.length >= this.opts.maxQueue) {
      this.queue.shift();
      this.dropped++;
      if (this.dropped === 1 || this.dropped % 1000 === 0) this.log.warn({ url: this.target.url, dropped: this.dropped }, 'webhook receiver is behind: oldest deliveries dropped');
    }
    this.queue.push(d);
    this.kick();
  }

  private kick(): void {
    if (this.busy || this.timer || this.stopped || this.queue.length === 0) return;
    this.busy = true;
    void this.sendHead().finally(() => {
      this.busy = false;
      this.kick();
    });
  }

  private async sendHead(): Promise<void> {
    const d = this.queue[0]!;
    d.attempt++;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'dpu-ztp', 'x-ztp-event': 'onboarding.transition', 'x-ztp-delivery': String(d.id) };
    if (this.target.secret) headers['x-ztp-signature'] = signBody(this.target.secret, d.body);
    this.controller = new AbortController();
    const timeout = setTimeout(() => this.controller?.abort(), this.opts.timeoutMs);
    timeout.unref();
    let ok = false;
    let why = '';
    try {
      const res = await this.opts.fetch(this.target.url, { method: 'POST', headers, body: d.body, signal: this.controller.signal, redirect: 'manual' });
      await res.body?.cancel().catch(() => undefined);
      ok = res.status >= 200 && res.status < 300;
      why = `HTTP ${res.status}`;
    } catch (err) {
      why = errorMessage(err);
    } finally {
      clearTimeout(timeout);
      this.controller = undefined;
    }
    if (ok) {
      this.queue.shift();
      this.delivered++;
      return;
    }
    if (this.stopped) return;
    if (d.attempt >= this.opts.attempts) {
      this.queue.shift();
      this.log.warn({ url: this.target.url, delivery: d.id, attempts: d.attempt, why }, 'webhook delivery given up');
      return;
    }
    const delay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (d.attempt - 1));
    this.log.info({ url: this.target.url, delivery: d.id, attempt: d.attempt, why, retryInMs: delay }, 'webhook delivery failed; will retry');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, delay);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.controller?.abort();
  }

  pending(): number {
    return this.queue.length;
  }
}

export class WebhookSender {
  private readonly receivers: Receiver[];
  private readonly onEvent = (e: HistoryEvent) => this.notice(e);
  private store: DeviceStore | undefined;

  constructor(targets: WebhookTarget[], log: Logger, options: WebhookOptions = {}) {
    const opts = {
      attempts: options.attempts ?? 6,
      baseDelayMs: options.baseDelayMs ?? 1000,
      maxDelayMs: options.maxDelayMs ?? 60_000,
      timeoutMs: options.timeoutMs ?? 10_000,
      maxQueue: options.maxQueue ?? 10_000,
      fetch: options.fetch ?? fetch,
    };
    this.receivers = targets.map((t) => new Receiver(t, opts, log.child({ service: 'webhooks' })));
  }

  get size(): number {
    return this.receivers.length;
  }

  attach(store: DeviceStore): void {
    if (this.receivers.length === 0) return;
    this.store = store;
    store.events.on('event', this.onEvent);
  }

  /** Queues a transition for every receiver that wants it; returns at once. */
  notice(e: HistoryEvent): void {
    if (e.source !== 'onboarding' || e.type !== 'transition') return;
    const body = JSON.stringify({ id: e.id, at: e.at, serial: e.serial, event: 'onboarding.transition', data: e.data });
    for (const r of this.receivers) {
      const wanted = r.target.events;
      if (wanted?.length && !wanted.includes(String(e.data.status)) && !wanted.includes(String(e.data.step))) continue;
      r.push({ id: e.id, body, attempt: 0 });
    }
  }

  stats(): { url: string; delivered: number; pending: number; dropped: number }[] {
    return this.receivers.map((r) => ({ url: r.target.url, delivered: r.delivered, pending: r.pending(), dropped: r.dropped }));
  }

  stop(): void {
    this.store?.events.off('event', this.onEvent);
    for (const r of this.receivers) r.stop();
  }
}
