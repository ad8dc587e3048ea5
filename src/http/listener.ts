// What every HTTP listener of the suite gets before it listens (bootstrap, images HTTP and
// HTTPS, admin API): timeouts on every phase of a connection, a connection cap, an optional
// per-source request budget, and /healthz + /readyz. Services call `harden(app, name)` between
// building their app and listen(); HTTPS listeners also spread `tlsOptions()` into their
// https.createServer options (the handshake timeout can only be given at construction).
//
// Which Node setting closes which slow client:
//   raw TCP that sends nothing, partial headers  → headersTimeout (408, close)
//   headers sent, body trickling                 → requestTimeout (408, close)
//   TLS ClientHello never sent or never finished  → handshakeTimeout (tls.Server, close)
//   connection silent in both directions         → idleTimeout (socket timeout, close)
//   keep-alive connection between requests       → keepAliveTimeout (close)
// Node checks the header and request timeouts on a timer (connectionsCheckingInterval, 30 s by
// default), so the interval is shortened to keep the closing time near the configured one.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RateLimitedLog, type Logger } from '../log.js';
import type { ServiceReadiness } from '../service.js';
import type { HttpSettings } from './config-schema.js';
import { TokenBuckets } from './rate-limit.js';

export const HEALTH_PATHS = new Set(['/healthz', '/readyz']);

export interface HardenOptions {
  /** whole-request timeout for this listener, seconds (default: http.requestTimeout) */
  requestTimeout?: number;
}

export interface HttpListeners {
  readonly settings: HttpSettings;
  /** Options for https.createServer that only exist at construction (TLS handshake timeout). */
  tlsOptions(): { handshakeTimeout: number };
  /** Applies timeouts, the connection cap, the rate limit and the health routes; call before listen(). */
  harden(app: FastifyInstance, listener: string, options?: HardenOptions): void;
}

export type Readiness = () => Record<string, ServiceReadiness>;

/** The readiness answer every listener gives: 200 when every service is ready, else 503 saying which and why. */
export function readinessReport(readiness: Readiness): { status: number; body: { status: 'ready' | 'not-ready'; services: Record<string, ServiceReadiness> } } {
  const services = readiness();
  const ready = Object.values(services).every((s) => s.ready);
  return { status: ready ? 200 : 503, body: { status: ready ? 'ready' : 'not-ready', services } };
}

/** /healthz (the process answers) and /readyz (every service is ready), where the app has none yet. */
export function registerHealthRoutes(app: FastifyInstance, readiness: Readiness): void {
  if (!app.hasRoute({ method: 'GET', url: '/healthz' })) {
    app.get('/healthz', async (_req, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  }
  if (!app.hasRoute({ method: 'GET', url: '/readyz' })) {
    app.get('/readyz', async (_req, reply) => {
      const { status, body } = readinessReport(readiness);
      return reply.code(status).header('cache-control', 'no-store').send(body);
    });
  }
}

/**
 * At most `cap` open connections per source address. Checked on accept, so a TLS listener drops
 * the extra connection before paying for its handshake (which a request-rate limit cannot do:
 * a client that opens a connection per request costs a handshake each time).
 */
export function limitConnectionsPerSource(server: Server, cap: number, listener: string, log: Logger): void {
  const open = new Map<string, number>();
  const refused = new RateLimitedLog(log, 1, 10_000);
  server.on('connection', (socket: Socket) => {
    const source = socket.remoteAddress ?? 'unknown';
    const count = (open.get(source) ?? 0) + 1;
    if (count > cap) {
      refused.warn({ listener, remote: source, maxConnectionsPerSource: cap }, `${listener}: connection refused, source holds http.maxConnectionsPerSource connections`);
      socket.destroy();
      return;
    }
    open.set(source, count);
    socket.once('close', () => {
      const left = (open.get(source) ?? 1) - 1;
      if (left > 0) open.set(source, left);
      else open.delete(source);
    });
  });
}

/** Applies the timeouts and the connection cap to a Node server (before it listens). */
export function applyServerLimits(server: Server, s: HttpSettings, requestTimeoutSeconds = s.requestTimeout): void {
  const ms = (seconds: number) => Math.round(seconds * 1000);
  server.headersTimeout = ms(s.headersTimeout);
  server.requestTimeout = ms(requestTimeoutSeconds);
  server.keepAliveTimeout = ms(s.keepAliveTimeout);
  server.setTimeout(ms(s.idleTimeout));
  server.maxConnections = s.maxConnections;
  // Read by Node when the server starts listening; between 250 ms and 1 s.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.min(1000, Math.max(250, ms(s.headersTimeout) / 4));
}

export function createHttpListeners(settings: HttpSettings, log: Logger, readiness: Readiness): HttpListeners {
  return {
    settings,
    tlsOptions: () => ({ handshakeTimeout: Math.round(settings.handshakeTimeout * 1000) }),
    harden(app, listener, options = {}) {
      applyServerLimits(app.server, settings, options.requestTimeout);
      // A TLS client error (handshake timeout, garbage instead of a ClientHello) always ends the
      // connection: Node hands it to the app's clientError handler, and one that answers with an
      // HTTP 400 on a socket still waiting for its handshake leaves the socket open for good.
      app.server.prependListener('tlsClientError', (_err: Error, socket: Duplex) => socket.destroy());
      const dropped = new RateLimitedLog(log, 1, 10_000);
      app.server.on('drop', (data?: { remoteAddress?: string }) => {
        dropped.warn({ listener, remote: data?.remoteAddress, maxConnections: settings.maxConnections }, `${listener}: connection refused, http.maxConnections reached`);
      });
      if (settings.maxConnectionsPerSource > 0) limitConnectionsPerSource(app.server, settings.maxConnectionsPerSource, listener, log);
      if (settings.rateLimit > 0) {
        const buckets = new TokenBuckets(settings.rateLimit, settings.rateBurst);
        app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
          if (HEALTH_PATHS.has(req.url)) return;
          const source = req.socket.remoteAddress ?? 'unknown';
          const decision = buckets.take(source);
          if (decision.allowed) return;
          if (decision.firstRefusal) log.warn({ listener, remote: source, rateLimit: settings.rateLimit, rateBurst: settings.rateBurst }, `${listener}: source over its request budget, answering 429`);
          return reply
            .code(429)
            .header('retry-after', String(decision.retryAfter))
            .header('cache-control', 'no-store')
            .send({ error: { code: 'HTTP_RATE_LIMITED', message: `too many requests from this address; retry after ${decision.retryAfter} s` } });
        });
      }
      registerHealthRoutes(app, readiness);
    },
  };
}

/**
 * listen() without fastify's own "Server listening at" line, for apps built with a logger:
 * `ztp serve` logs each listener once, in one format. Binds exactly the configured host.
 */
export async function listenQuietly(app: FastifyInstance, host: string, port: number): Promise<void> {
  await app.ready();
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    app.server.once('error', onError);
    app.server.listen({ host, port }, () => {
      app.server.off('error', onError);
      resolve();
    });
  });
}
