// OpenTelemetry for the OPI lab's collector: traces of onboarding jobs (a span per job, a child
// per step), of every Redfish exchange (child of the step that made it) and of bootstrap RPCs;
// progress reports as log records. Exported over OTLP/HTTP (JSON) when the standard environment
// asks for it (OTEL_EXPORTER_OTLP_ENDPOINT, or the _TRACES_/_LOGS_ variants); otherwise nothing
// is loaded and every call here is a cheap no-op. No global provider is registered: each suite
// owns its providers, so tests can run several suites in one process.
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type * as OtelApi from '@opentelemetry/api';
import type { Attributes, Context, Span, SpanKind as OtelSpanKind, SpanStatusCode as OtelSpanStatusCode, Tracer } from '@opentelemetry/api';
import type { Logger as OtelLogger } from '@opentelemetry/api-logs';
import type { Logger } from './log.js';
import { REDFISH_EXCHANGE_CHANNEL, type RedfishExchangeMessage } from './redfish/diagnostics.js';

export type { Span };

// The API's two enums, with the numbers the OTLP protocol fixes (test/unit/telemetry.test.ts
// compares them with the API's): defined here so that a suite without a collector never loads
// @opentelemetry/api (~17 ms of CPU and ~6 MB at start, issue 12).
export const SpanKind = { INTERNAL: 0, SERVER: 1, CLIENT: 2, PRODUCER: 3, CONSUMER: 4 } as unknown as typeof OtelSpanKind;
export type SpanKind = OtelSpanKind;
export const SpanStatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as unknown as typeof OtelSpanStatusCode;
export type SpanStatusCode = OtelSpanStatusCode;

export type LogSeverity = 'INFO' | 'WARN' | 'ERROR';

export interface Telemetry {
  readonly enabled: boolean;
  /** Starts a span, child of `parent` or of the span active in this async context. */
  startSpan(name: string, attributes?: Attributes, options?: { kind?: SpanKind; parent?: Span }): Span | undefined;
  /** Runs `fn` with `span` active: spans started inside (Redfish exchanges) become its children. */
  withSpan<T>(span: Span | undefined, fn: () => T): T;
  /** One OTLP log record (progress reports). */
  emitLog(body: string, severity: LogSeverity, attributes?: Attributes): void;
  /** Flushes what is batched and stops exporting. */
  shutdown(): Promise<void>;
}

const EXPORT_TIMEOUT_MS = 5000;
const SHUTDOWN_FLUSH_MS = 2000;

const SEVERITY_NUMBER: Record<LogSeverity, number> = { INFO: 9, WARN: 13, ERROR: 17 };

/** Telemetry that does nothing (no endpoint configured, tests). */
export const noTelemetry: Telemetry = {
  enabled: false,
  startSpan: () => undefined,
  withSpan: (_span, fn) => fn(),
  emitLog: () => undefined,
  shutdown: async () => undefined,
};

/** Whether the OTEL environment asks for export (OTEL_SDK_DISABLED=true wins). */
export function otlpRequested(env: NodeJS.ProcessEnv): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT);
}

/**
 * Starts OTLP/HTTP export when the environment asks for it. The SDK is imported only then, so a
 * suite without a collector pays nothing at start-up.
 */
export async function startTelemetry(env: NodeJS.ProcessEnv, log: Logger, version = '0'): Promise<Telemetry> {
  if (!otlpRequested(env)) return noTelemetry;
  const [api, { BasicTracerProvider, BatchSpanProcessor }, { LoggerProvider, BatchLogRecordProcessor }, { OTLPTraceExporter }, { OTLPLogExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/sdk-logs'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/exporter-logs-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const headers = parseOtlpHeaders(env.OTEL_EXPORTER_OTLP_HEADERS);
  // A collector that hangs must not hold up an export for long, nor `ztp serve`'s shutdown.
  const exporterOptions = (signal: 'traces' | 'logs') => ({ url: signalUrl(env, signal), headers, timeoutMillis: EXPORT_TIMEOUT_MS });
  const resource = resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'dpu-ztp', 'service.version': version });
  // Short export delays: a lab wants to see an onboarding step while it happens.
  const tracerProvider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(exporterOptions('traces')), { scheduledDelayMillis: 1000, exportTimeoutMillis: EXPORT_TIMEOUT_MS })] });
  const loggerProvider = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter(exporterOptions('logs')), scheduledDelayMillis: 1000, exportTimeoutMillis: EXPORT_TIMEOUT_MS })] });
  const telemetry = new OtlpTelemetry(api, tracerProvider.getTracer('dpu-ztp', version), loggerProvider.getLogger('dpu-ztp', version), async () => {
    // The last flush gets SHUTDOWN_FLUSH_MS; what a silent collector has not taken by then is lost.
    let timer: NodeJS.Timeout | undefined;
    const flushed = Promise.allSettled([tracerProvider.shutdown(), loggerProvider.shutdown()]).then(() => true);
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), SHUTDOWN_FLUSH_MS).unref()));
    if (!(await Promise.race([flushed, late]))) log.warn({ waitedMs: SHUTDOWN_FLUSH_MS }, 'OpenTelemetry: the collector did not take the last batch in time; shutting down without it');
    clearTimeout(timer);
  });
  log.info({ traces: signalUrl(env, 'traces'), logs: signalUrl(env, 'logs') }, 'OpenTelemetry: exporting traces and logs over OTLP/HTTP');
  return telemetry;
}

/**
 * OTLP/HTTP signal URL per the OpenTelemetry spec: OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT as is,
 * else OTEL_EXPORTER_OTLP_ENDPOINT with /v1/<signal> appended. Read from the env we were given
 * (the exporters would read process.env themselves).
 */
export function signalUrl(env: NodeJS.ProcessEnv, signal: 'traces' | 'logs'): string {
  const specific = signal === 'traces' ? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT : env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT;
  if (specific) return specific;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://localhost:4318';
  return `${base.replace(/\/+$/, '')}/v1/${signal}`;
}

/** OTEL_EXPORTER_OTLP_HEADERS: "k1=v1,k2=v2", values URL-encoded (W3C baggage style). Never logged. */
export function parseOtlpHeaders(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (text ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    try {
      out[decodeURIComponent(part.slice(0, eq).trim())] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      // a malformed pair is skipped, as the SDK does
    }
  }
  return out;
}

class OtlpTelemetry implements Telemetry {
  readonly enabled = true;
  // The active span per async context. Our own store, not a global context manager: nothing
  // outside this suite sees or changes it.
  private readonly active = new AsyncLocalStorage<Span>();
  private readonly redfishSpans = new WeakMap<object, Span>();
  private readonly onRedfish = (message: unknown) => this.redfishExchange(message as RedfishExchangeMessage);

  constructor(
    private readonly api: Pick<typeof OtelApi, 'trace' | 'ROOT_CONTEXT'>,
    private readonly tracer: Tracer,
    private readonly logger: OtelLogger,
    private readonly stop: () => Promise<void>,
  ) {
    subscribe(REDFISH_EXCHANGE_CHANNEL, this.onRedfish);
  }

  startSpan(name: string, attributes: Attributes = {}, options: { kind?: SpanKind; parent?: Span } = {}): Span {
    const parent = options.parent ?? this.active.getStore();
    const { trace, ROOT_CONTEXT } = this.api;
    const ctx: Context = parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    return this.tracer.startSpan(name, { attributes, kind: options.kind ?? SpanKind.INTERNAL }, ctx);
  }

  withSpan<T>(span: Span | undefined, fn: () => T): T {
    return span ? this.active.run(span, fn) : fn();
  }

  emitLog(body: string, severity: LogSeverity, attributes: Attributes = {}): void {
    const parent = this.active.getStore();
    this.logger.emit({
      body,
      severityText: severity,
      severityNumber: SEVERITY_NUMBER[severity],
      attributes,
      ...(parent ? { context: this.api.trace.setSpan(this.api.ROOT_CONTEXT, parent) } : {}),
    });
  }

  async shutdown(): Promise<void> {
    unsubscribe(REDFISH_EXCHANGE_CHANNEL, this.onRedfish);
    await this.stop();
  }

  /** A CLIENT span per BMC exchange, child of the onboarding step active where it was made. */
  private redfishExchange(m: RedfishExchangeMessage): void {
    if (m.phase === 'start') {
      const span = this.startSpan(`redfish ${m.method}`, { 'http.request.method': m.method, 'url.path': m.path, 'server.address': m.bmc, ...(m.step ? { 'ztp.operation': m.step } : {}) }, { kind: SpanKind.CLIENT });
      this.redfishSpans.set(m.id, span);
      return;
    }
    const span = this.redfishSpans.get(m.id);
    if (!span) return;
    this.redfishSpans.delete(m.id);
    if (m.status !== undefined) {
      span.setAttribute('http.response.status_code', m.status);
      if (m.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${m.status}` });
    } else {
      span.setAttribute('error.type', m.errorCode ?? 'error');
      span.setStatus({ code: SpanStatusCode.ERROR, message: m.errorCode ?? 'error' });
    }
    span.end();
  }
}
