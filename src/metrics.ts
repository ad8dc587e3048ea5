// Prometheus metrics of one suite (prom-client, one Registry per suite so tests can run several in
// one process). Two kinds of family:
//   - counted where it happens (requests, Redfish calls, step durations): Counter/Histogram;
//   - read at scrape time from what already keeps the fact (device states and history in SQLite,
//     DHCP counters mirrored from its worker thread): collect() callbacks, so nothing is counted
//     twice and another process's writes (the `ztp` CLI) show up too.
// Every family has HELP text; names follow Prometheus conventions (_total, _seconds, _bytes).
//
// prom-client (~40 ms of CPU and ~10 MB at start, issue 12) is imported on the first count or the
// first scrape, whichever comes first, not at start: a suite nobody has asked anything yet has
// nothing to count. Counts made while it loads wait in order and are applied once it has, so
// no count is lost; the default process_* / nodejs_* families start then (process CPU and
// memory are read from the process at scrape time either way; GC and event-loop figures cover
// the time since the first request or scrape).
import type * as PromClient from 'prom-client';
import type { Counter, Histogram, Registry } from 'prom-client';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Db } from './db/database.js';
import type { Clock } from './devices/store.js';
import { REDFISH_EXCHANGE_CHANNEL, type RedfishExchangeMessage } from './redfish/diagnostics.js';

/** Facts read at scrape time; each is optional so a partial suite (tests) still scrapes. */
export interface MetricSources {
  deviceStates?: () => Record<string, number>;
  historyEvents?: () => { source: string; type: string; n: number }[];
  /** cumulative DHCP counters (received, sent, drop-*, v6-*) as the service keeps them */
  dhcpStats?: () => Record<string, number>;
  /** bound, unexpired leases per address family */
  leasesBound?: () => { family: number; n: number }[];
  /** onboarding jobs per status */
  jobStatuses?: () => Record<string, number>;
}

/** Lease and job counts straight from the database (any process's writes count). */
export function databaseMetricSources(db: Db, clock: Clock): Pick<MetricSources, 'leasesBound' | 'jobStatuses'> {
  const leases = db.prepare("SELECT family, count(*) AS n FROM dhcp_leases WHERE state = 'bound' AND expires_at > ? GROUP BY family");
  const jobs = db.prepare('SELECT status, count(*) AS n FROM onboarding_jobs GROUP BY status');
  return {
    leasesBound: () => leases.all(clock.now().getTime()) as { family: number; n: number }[],
    jobStatuses: () => Object.fromEntries((jobs.all() as { status: string; n: number }[]).map((r) => [r.status, r.n])),
  };
}

/** One sample of a scrape-time family: its labels and value. */
type Sample = [Record<string, string>, number];

const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STEP_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

type Labels<L extends string> = Partial<Record<L, string | number>>;

/** What the services call to count: the family is created in prom-client when it has loaded. */
export interface CounterFamily<L extends string> {
  inc(labels: Labels<L>, value?: number): void;
}
export interface HistogramFamily<L extends string> {
  observe(labels: Labels<L>, value: number): void;
}

interface FamilySpec {
  kind: 'counter' | 'histogram';
  name: string;
  help: string;
  labelNames: readonly string[];
  buckets?: number[];
}

/** prom-client, loaded: the registry and the counted families by name. */
interface Loaded {
  registry: Registry;
  families: Map<string, Counter | Histogram>;
}

export class Metrics {
  private sources: MetricSources = {};
  private readonly onRedfish = (message: unknown) => this.redfishExchange(message as RedfishExchangeMessage);
  private subscribed = false;
  private readonly specs: FamilySpec[] = [];
  private loaded: Loaded | undefined;
  private loading: Promise<Loaded> | undefined;
  /** counts made before prom-client finished loading, applied in order once it has */
  private waiting: ((loaded: Loaded) => void)[] = [];
  /** the first count prom-client refused while waiting (a label the family does not have): the next render() reports it */
  private refused: unknown;
  private readonly defaultMetrics: boolean;

  readonly bootstrapRequests = this.counter('ztp_bootstrap_requests_total', 'RFC 8572 RPCs answered by the bootstrap server, by RPC, outcome (ok or the HTTP status) and wire profile of the device', ['rpc', 'outcome', 'profile']);
  readonly bootstrapResponses = this.counter('ztp_bootstrap_responses_total', 'get-bootstrapping-data replies served, by conveyed-information kind and whether they were signed', ['response', 'signed']);
  readonly bootstrapAuth = this.counter('ztp_bootstrap_auth_total', 'Devices authenticated by the bootstrap server, by method (cert, basic, cert+basic)', ['method']);
  readonly progressReports = this.counter('ztp_bootstrap_progress_reports_total', 'report-progress notifications committed, by progress-type', ['type']);
  readonly httpRequests = this.counter('ztp_http_requests_total', 'HTTP requests answered, by service (bootstrap, images, api), method and status code', ['service', 'method', 'status']);
  readonly httpDuration = this.histogram('ztp_http_request_duration_seconds', 'Time from request to the last byte of the answer, by service', ['service'], SECONDS_BUCKETS);
  readonly imageBytes = this.counter('ztp_image_bytes_served_total', 'Image body bytes handed to clients, by protocol (http covers https; tftp) and reader (bmc: virtual media, device: the DPU itself)', ['protocol', 'view']);
  readonly redfishCalls = this.counter('ztp_redfish_requests_total', 'HTTP exchanges with BMCs, by method, operation (login, discover, insert, reset, eject, ...) and outcome (HTTP status or error code)', ['method', 'operation', 'outcome']);
  readonly redfishDuration = this.histogram('ztp_redfish_request_duration_seconds', 'Latency of one HTTP exchange with a BMC, by method and operation', ['method', 'operation'], SECONDS_BUCKETS);
  readonly stepDuration = this.histogram('ztp_onboarding_step_duration_seconds', 'How long an onboarding step took, by step and how it ended (done, failed, timed-out, aborted)', ['step', 'outcome'], STEP_BUCKETS);

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.defaultMetrics = options.defaultMetrics !== false;
  }

  private counter<const L extends string>(name: string, help: string, labelNames: readonly L[]): CounterFamily<L> {
    this.specs.push({ kind: 'counter', name, help, labelNames });
    return { inc: (labels, value = 1) => this.count((f) => (f.get(name) as Counter).inc(labels, value)) };
  }

  private histogram<const L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): HistogramFamily<L> {
    this.specs.push({ kind: 'histogram', name, help, labelNames, buckets });
    return { observe: (labels, value) => this.count((f) => (f.get(name) as Histogram).observe(labels, value)) };
  }

  /** Applies a count now, or once prom-client has loaded (the first count starts loading it). */
  private count(apply: (families: Map<string, Counter | Histogram>) => void): void {
    if (this.loaded) {
      apply(this.loaded.families);
      return;
    }
    this.waiting.push((loaded) => apply(loaded.families));
    // A failed import is reported by render(); counts made meanwhile are dropped with it.
    this.load().catch(() => undefined);
  }

  private load(): Promise<Loaded> {
    this.loading ??= import('prom-client').then(
      (prom) => {
        const registry = new prom.Registry();
        const families = new Map<string, Counter | Histogram>();
        for (const spec of this.specs) {
          const common = { name: spec.name, help: spec.help, labelNames: spec.labelNames, registers: [registry] };
          families.set(spec.name, spec.kind === 'counter' ? new prom.Counter(common) : new prom.Histogram({ ...common, buckets: spec.buckets! }));
        }
        this.scrapedFamilies(prom, registry);
        // process_* and nodejs_* (CPU, memory, event-loop lag, GC), as every Node exporter names them.
        if (this.defaultMetrics) prom.collectDefaultMetrics({ register: registry });
        const loaded = { registry, families };
        for (const apply of this.waiting) {
          try {
            apply(loaded);
          } catch (err) {
            this.refused ??= err;
          }
        }
        this.waiting = [];
        this.loaded = loaded;
        return loaded;
      },
      (err: unknown) => {
        this.waiting = [];
        throw err;
      },
    );
    return this.loading;
  }

  /** Families whose samples are read at scrape time (replacing the previous scrape's). */
  private scrapedFamilies(prom: typeof PromClient, registry: Registry): void {
    const src = () => this.sources;
    const dhcpKeys = () => Object.entries(src().dhcpStats?.() ?? {});
    const scraped = (kind: 'gauge' | 'counter', name: string, help: string, labelNames: string[], read: () => Sample[]) => {
      const common = { name, help, labelNames, registers: [registry] };
      if (kind === 'gauge') {
        new prom.Gauge({ ...common, collect() { this.reset(); for (const [labels, n] of read()) this.set(labels, n); } });
      } else {
        new prom.Counter({ ...common, collect() { this.reset(); for (const [labels, n] of read()) this.inc(labels, n); } });
      }
    };
    scraped('gauge', 'ztp_devices', 'Registered devices by onboarding state (read from the device records at scrape time)', ['state'], () =>
      Object.entries(src().deviceStates?.() ?? {}).map(([state, n]) => [{ state }, n]));
    scraped('gauge', 'ztp_onboarding_jobs', 'Onboarding jobs by status (latest attempt per device)', ['status'], () =>
      Object.entries(src().jobStatuses?.() ?? {}).map(([status, n]) => [{ status }, n]));
    scraped('counter', 'ztp_history_events_total', 'Events in the device histories by source and type (read from the history at scrape time)', ['source', 'type'], () =>
      (src().historyEvents?.() ?? []).map((r) => [{ source: r.source, type: r.type }, r.n]));
    scraped('counter', 'ztp_dhcp_packets_total', 'DHCP packets by family and outcome: received, sent, dropped (by reason), rate-limited, nak, ... (counted by the DHCP thread)', ['family', 'outcome'], () =>
      // keys with a colon are per message type: ztp_dhcp_messages_total
      dhcpKeys().filter(([key]) => !key.includes(':')).map(([key, n]) => [key.startsWith('v6-') ? { family: '6', outcome: key.slice(3) } : { family: '4', outcome: key }, n]));
    scraped('counter', 'ztp_dhcp_messages_total', 'DHCP messages by family, direction (rx: received, tx: sent) and message type (DISCOVER, OFFER, SOLICIT, REPLY, ...)', ['family', 'direction', 'type'], () =>
      dhcpKeys().flatMap(([key, n]): Sample[] => {
        const m = /^(v6-)?(rx|tx):(.+)$/.exec(key);
        return m ? [[{ family: m[1] ? '6' : '4', direction: m[2]!, type: m[3]! }, n]] : [];
      }));
    scraped('gauge', 'ztp_dhcp_leases_bound', 'Bound, unexpired DHCP leases by address family', ['family'], () =>
      (src().leasesBound?.() ?? []).map((r) => [{ family: String(r.family) }, r.n]));
  }

  /** Sets where the scrape-time families read from (the composition root calls it once). */
  readFrom(sources: MetricSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** Counts the suite's Redfish exchanges (published by the transport) until close(). */
  watchRedfish(): void {
    if (this.subscribed) return;
    subscribe(REDFISH_EXCHANGE_CHANNEL, this.onRedfish);
    this.subscribed = true;
  }

  close(): void {
    if (this.subscribed) unsubscribe(REDFISH_EXCHANGE_CHANNEL, this.onRedfish);
    this.subscribed = false;
  }

  /** The text exposition format (0.0.4) of every family (loads prom-client on the first scrape). */
  async render(): Promise<{ contentType: string; body: string }> {
    const { registry } = await this.load();
    // Reported by one scrape, as a count refused after loading throws at its call site once;
    // the scrapes after it serve the families again.
    const refused = this.refused;
    this.refused = undefined;
    if (refused) throw refused;
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  private redfishExchange(m: RedfishExchangeMessage): void {
    if (m.phase !== 'end') return;
    const operation = m.step ?? 'none';
    this.redfishCalls.inc({ method: m.method, operation, outcome: m.status !== undefined ? String(m.status) : (m.errorCode ?? 'error') });
    this.redfishDuration.observe({ method: m.method, operation }, m.durationMs / 1000);
  }
}
