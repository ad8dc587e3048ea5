// What every HTTP listener of the suite reports: a request counter and latency histogram per
// service (Prometheus) and, where a service asks for it, a SERVER span per request (OpenTelemetry).
// Hooks only: the apps stay free of metrics code, and inject() tests see the same hooks.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Attributes } from '@opentelemetry/api';
import type { Metrics } from './metrics.js';
import { SpanKind, SpanStatusCode, noTelemetry, type Span, type Telemetry } from './telemetry.js';

/** Metrics and telemetry of one suite; either may be absent in tests. */
export interface Observability {
  metrics?: Metrics | undefined;
  telemetry?: Telemetry | undefined;
}

export interface ObserveHttpOptions {
  /** a span per request, named by spanName (bootstrap RPCs; not every image range read) */
  spans?: boolean;
  spanName?: (req: FastifyRequest) => string;
  /** attributes known once the request is answered (serial, RPC, profile) */
  describe?: (req: FastifyRequest, reply: FastifyReply) => Attributes;
}

export function observeHttp(app: FastifyInstance, service: string, obs: Observability, options: ObserveHttpOptions = {}): void {
  const { metrics } = obs;
  const telemetry = obs.telemetry ?? noTelemetry;
  const spans = options.spans && telemetry.enabled ? new WeakMap<FastifyRequest, Span>() : undefined;
  if (!metrics && !spans) return;
  if (spans) {
    app.addHook('onRequest', async (req) => {
      const span = telemetry.startSpan(options.spanName?.(req) ?? `${service} ${req.method}`, { 'http.request.method': req.method, 'url.path': req.url.split('?')[0]!, 'client.address': req.ip }, { kind: SpanKind.SERVER });
      if (span) spans.set(req, span);
    });
  }
  app.addHook('onResponse', async (req, reply) => {
    const status = reply.statusCode;
    if (metrics) {
      metrics.httpRequests.inc({ service, method: req.method, status: String(status) });
      metrics.httpDuration.observe({ service }, reply.elapsedTime / 1000);
    }
    const span = spans?.get(req);
    if (span) {
      span.setAttribute('http.response.status_code', status);
      const extra = options.describe?.(req, reply);
      if (extra) span.setAttributes(extra);
      if (status >= 400) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${status}` });
      span.end();
      spans!.delete(req);
    }
  });
}
