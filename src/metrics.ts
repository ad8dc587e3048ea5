// Prometheus metrics of one suite (prom-client, one Registry per suite so tests can run several in
// one process). Two kinds of family:
//   - counted where it happens (requests, Redfish calls, step durations): Counter/Histogram;
//   - read at scrape time from what already keeps the fact (device states and history in SQLite,
//     DHCP counters mirrored from its worker thread): collect() callbacks, so nothing is counted
//     twice and another process's writes (the `ztp` CLI) show up too.
// Every family has HELP text; names follow Prometheus conventions (_total, _seconds, _bytes).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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

export class Metrics {
  readonly registry = new Registry();
  private sources: MetricSources = {};
  private readonly onRedfish = (message: unknown) => this.redfishExchange(message as RedfishExchangeMessage);
  private subscribed = false;

  readonly bootstrapRequests = new Counter({
    name: 'ztp_bootstrap_requests_total',
    help: 'RFC 8572 RPCs answered by the bootstrap server, by RPC, outcome (ok or the HTTP status) and wire profile of the device',
    labelNames: ['rpc', 'outcome', 'profile'] as const,
    registers: [this.registry],
  });
  readonly bootstrapResponses = new Counter({
    name: 'ztp_bootstrap_responses_total',
    help: 'get-bootstrapping-data replies served, by conveyed-information kind and whether they were signed',
    labelNames: ['response', 'signed'] as const,
    registers: [this.registry],
  });
  readonly bootstrapAuth = new Counter({
    name: 'ztp_bootstrap_auth_total',
    help: 'Devices authenticated by the bootstrap server, by method (cert, basic, cert+basic)',
    labelNames: ['method'] as const,
    registers: [this.registry],
  });
  readonly progressReports = new Counter({
    name: 'ztp_bootstrap_progress_reports_total',
    help: 'report-progress notifications committed, by progress-type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'ztp_http_requests_total',
    help: 'HTTP requests answered, by service (bootstrap, images, api), method and status code',
    labelNames: ['service', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'ztp_http_request_duration_seconds',
    help: 'Time from request to the last byte of the answer, by service',
    labelNames: ['service'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [this.registry],
  });
  readonly imageBytes = new Counter({
    name: 'ztp_image_bytes_served_total',
    help: 'Image body bytes handed to clients, by protocol (http covers https; tftp) and reader (bmc: virtual media, device: the DPU itself)',
    labelNames: ['protocol', 'view'] as const,
    registers: [this.registry],
  });
  readonly redfishCalls = new Counter({
    name: 'ztp_redfish_requests_total',
    help: 'HTTP exchanges with BMCs, by method, operation (login, discover, insert, reset, eject, ...) and outcome (HTTP status or error code)',
    labelNames: ['method', 'operation', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly redfishDuration = new Histogram({
    name: 'ztp_redfish_request_duration_seconds',
    help: 'Latency of one HTTP exchange with a BMC, by method and operation',
    labelNames: ['method', 'operation'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [this.registry],
  });
  readonly stepDuration = new Histogram({
    name: 'ztp_onboarding_step_duration_seconds',
    help: 'How long an onboarding step took, by step and how it ended (done, failed, timed-out, aborted)',
    labelNames: ['step', 'outcome'] as const,
    buckets: STEP_BUCKETS,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const src = () => this.sources;
    const dhcpKeys = () => Object.entries(src().dhcpStats?.() ?? {});
    this.scraped('gauge', 'ztp_devices', 'Registered devices by onboarding state (read from the device records at scrape time)', ['state'], () =>
      Object.entries(src().deviceStates?.() ?? {}).map(([state, n]) => [{ state }, n]));
    this.scraped('gauge', 'ztp_onboarding_jobs', 'Onboarding jobs by status (latest attempt per device)', ['status'], () =>
      Object.entries(src().jobStatuses?.() ?? {}).map(([status, n]) => [{ status }, n]));
    this.scraped('counter', 'ztp_history_events_total', 'Events in the device histories by source and type (read from the history at scrape time)', ['source', 'type'], () =>
      (src().historyEvents?.() ?? []).map((r) => [{ source: r.source, type: r.type }, r.n]));
    this.scraped('counter', 'ztp_dhcp_packets_total', 'DHCP packets by family and outcome: received, sent, dropped (by reason), rate-limited, nak, ... (counted by the DHCP thread)', ['family', 'outcome'], () =>
      // keys with a colon are per message type: ztp_dhcp_messages_total
      dhcpKeys().filter(([key]) => !key.includes(':')).map(([key, n]) => [key.startsWith('v6-') ? { family: '6', outcome: key.slice(3) } : { family: '4', outcome: key }, n]));
    this.scraped('counter', 'ztp_dhcp_messages_total', 'DHCP messages by family, direction (rx: received, tx: sent) and message type (DISCOVER, OFFER, SOLICIT, REPLY, ...)', ['family', 'direction', 'type'], () =>
      dhcpKeys().flatMap(([key, n]): Sample[] => {
        const m = /^(v6-)?(rx|tx):(.+)$/.exec(key);
        return m ? [[{ family: m[1] ? '6' : '4', direction: m[2]!, type: m[3]! }, n]] : [];
      }));
    this.scraped('gauge', 'ztp_dhcp_leases_bound', 'Bound, unexpired DHCP leases by address family', ['family'], () =>
      (src().leasesBound?.() ?? []).map((r) => [{ family: String(r.family) }, r.n]));
    // process_* and nodejs_* (CPU, memory, event-loop lag, GC), as every Node exporter names them.
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** A family whose samples are read at scrape time (replacing the previous scrape's). */
  private scraped(kind: 'gauge' | 'counter', name: string, help: string, labelNames: string[], read: () => Sample[]): void {
    const common = { name, help, labelNames, registers: [this.registry] };
    if (kind === 'gauge') {
      new Gauge({ ...common, collect() { this.reset(); for (const [labels, n] of read()) this.set(labels, n); } });
    } else {
      new Counter({ ...common, collect() { this.reset(); for (const [labels, n] of read()) this.inc(labels, n); } });
    }
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

  /** The text exposition format (0.0.4) of every family. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private redfishExchange(m: RedfishExchangeMessage): void {
    if (m.phase !== 'end') return;
    const operation = m.step ?? 'none';
    this.redfishCalls.inc({ method: m.method, operation, outcome: m.status !== undefined ? String(m.status) : (m.errorCode ?? 'error') });
    this.redfishDuration.observe({ method: m.method, operation }, m.durationMs / 1000);
  }
}
