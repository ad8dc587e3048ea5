// What `ztp serve` composes: each service binds its own ports in start() and releases every
// socket and timer in stop(). Apps are built without listening (buildXxxApp) so tests inject().
import type { Config } from './config.js';
import type { Db } from './db/database.js';
import type { DeviceStore, Clock } from './devices/store.js';
import type { HttpListeners } from './http/listener.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { SuitePki } from './pki/material.js';
import type { Telemetry } from './telemetry.js';

export interface ListenInfo {
  service: string;
  protocol: 'http' | 'https' | 'udp4' | 'udp6';
  address: string;
  port: number;
  url?: string;
}

export interface Service {
  readonly name: string;
  start(): Promise<ListenInfo[]>;
  stop(): Promise<void>;
}

/** Everything a service may depend on; built once by the composition root. */
export interface SuiteContext {
  config: Config;
  log: Logger;
  db: Db;
  store: DeviceStore;
  pki: SuitePki;
  clock: Clock;
  /** host name or address devices and BMCs use to reach this machine */
  publicHost: string;
  /** Prometheus families of this suite (absent in tests that do not scrape) */
  metrics?: Metrics;
  /** OpenTelemetry export (absent or no-op unless OTEL_EXPORTER_OTLP_* is set) */
  telemetry?: Telemetry;
  /** timeouts, connection cap, rate limit and health routes for HTTP listeners (absent in unit tests) */
  http?: HttpListeners;
}

/** One service's readiness, as /readyz reports it. */
export interface ServiceReadiness {
  ready: boolean;
  state: string;
  reason?: string | undefined;
  /** per-interface detail when DHCP serves several interfaces */
  interfaces?: { interface: string; state: string; reason?: string; address?: string }[];
}
