// Admin API (/api/v1, bearer token), the live dashboard (/), metrics (/metrics) and the
// OpenAPI document (/api/v1/openapi.json). Built without listening; tests use inject().
import { timingSafeEqual, createHash } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from 'fastify';
import { importDevices, importRowNumber, parseImport } from '../devices/import.js';
import { admitDevices } from '../onboarding/admission.js';
import { parseDeviceInput, publicDevice } from '../devices/model.js';
import type { DeviceStore, HistoryEvent } from '../devices/store.js';
import { isZtpError, ZtpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Counters } from '../metrics.js';
import { labelText } from '../metrics.js';
import { ONBOARDING_STATES } from '../onboarding/state.js';
import { DASHBOARD_CSP, DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from './dashboard.js';
import { OPENAPI } from './openapi.js';

export interface ApiPlugin {
  prefix: string;
  plugin: FastifyPluginAsync<Record<string, unknown>>;
  options?: Record<string, unknown>;
}

export interface ApiAppDeps {
  store: DeviceStore;
  log: Logger;
  token: string;
  counters: Counters;
  /** extra authenticated routes from other services (e.g. images upload), mounted under /api/v1 */
  plugins?: ApiPlugin[];
  /** longest accepted JSON/CSV body for device operations */
  bodyLimit?: number;
  /** per-service readiness for /readyz (e.g. DHCP waiting for its interface); absent = ready */
  readiness?: () => Record<string, ServiceReadiness>;
  /** is a boot image name in the catalogue? (registrations naming an unknown image are refused) */
  imageKnown?: (nameOrSha256: string) => boolean;
}

export interface ServiceReadiness {
  ready: boolean;
  state: string;
  reason?: string | undefined;
}

function tokenMatches(expected: string, given: string | undefined): boolean {
  if (!given) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

export function buildApiApp(deps: ApiAppDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: deps.bodyLimit ?? 16 * 1024 * 1024, return503OnClosing: true });
  const log = deps.log;
  app.addContentTypeParser(['text/csv', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, req, reply) => {
    const zerr = isZtpError(error)
      ? error
      : error.statusCode && error.statusCode < 500
        ? new ZtpError('API_BAD_REQUEST', error.message, { status: error.statusCode })
        : undefined;
    if (!zerr || zerr.status >= 500) {
      log.error({ err: error, url: req.url, method: req.method }, 'admin API request failed');
      return reply.code(zerr?.status ?? 500).send({ error: { code: zerr?.code ?? 'INTERNAL', message: 'internal error' } });
    }
    log.warn({ code: zerr.code, url: req.url, method: req.method, status: zerr.status }, zerr.message);
    return reply.code(zerr.status).send({ error: { code: zerr.code, message: zerr.message, ...(zerr.details ? { details: zerr.details } : {}) } });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  // Readiness (unauthenticated, like /healthz, for probes): 503 while a service waits, e.g. DHCP
  // for its interface; the body says which and why.
  app.get('/readyz', async (_req, reply) => {
    const services = deps.readiness?.() ?? {};
    const ready = Object.values(services).every((s) => s.ready);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not-ready', services });
  });
  // The dashboard (dashboard.ts): a page, its script and its style, all under a strict CSP.
  const dashboard = (type: string, body: string) => async (_req: FastifyRequest, reply: FastifyReply) =>
    reply.type(type).header('cache-control', 'no-store').header('content-security-policy', DASHBOARD_CSP).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').send(body);
  app.get('/', dashboard('text/html; charset=utf-8', DASHBOARD_HTML));
  app.get('/dashboard.js', dashboard('text/javascript; charset=utf-8', DASHBOARD_JS));
  app.get('/dashboard.css', dashboard('text/css; charset=utf-8', DASHBOARD_CSS));
  app.get('/api/v1/openapi.json', async () => OPENAPI);

  app.get('/metrics', async (_req, reply) => {
    const counts = deps.store.stateCounts();
    let body = '# HELP ztp_devices Registered devices by onboarding state\n# TYPE ztp_devices gauge\n';
    for (const state of ONBOARDING_STATES) body += `ztp_devices${labelText({ state })} ${counts[state] ?? 0}\n`;
    body += '# HELP ztp_history_events_total Events in the device history by source and type\n# TYPE ztp_history_events_total counter\n';
    for (const row of deps.store.eventCounts()) body += `ztp_history_events_total${labelText({ source: row.source, type: row.type })} ${row.n}\n`;
    body += deps.counters.render({
      ztp_bootstrap_requests_total: 'get-bootstrapping-data replies by response kind',
      ztp_bootstrap_errors_total: 'bootstrap server error replies by RPC and status',
      ztp_bootstrap_progress_total: 'progress reports stored by type',
    });
    return reply.type('text/plain; version=0.0.4').send(body);
  });

  // Everything under /api/v1 except the OpenAPI document needs the bearer token.
  app.register(async (api) => {
    api.addHook('onRequest', async (req: FastifyRequest) => {
      if (req.url.startsWith('/api/v1/openapi.json')) return;
      const header = req.headers.authorization;
      const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
      // EventSource cannot send headers: the dashboard's event stream passes ?token=.
      const query = (req.query as { token?: string } | undefined)?.token;
      if (!tokenMatches(deps.token, bearer ?? (req.url.startsWith('/api/v1/events') ? query : undefined))) {
        throw new ZtpError('API_UNAUTHORIZED');
      }
    });

    api.get('/devices', async (req) => {
      const state = (req.query as { state?: string }).state;
      if (state !== undefined && state !== '' && !(ONBOARDING_STATES as readonly string[]).includes(state)) {
        throw new ZtpError('DEVICE_INVALID', `state "${state}" is not a state; one of: ${ONBOARDING_STATES.join(', ')}`, { details: { field: 'state', states: [...ONBOARDING_STATES] } });
      }
      return { devices: deps.store.list().filter((d) => !state || d.state === state).map(publicDevice) };
    });

    api.post('/devices', async (req, reply) => {
      const input = parseDeviceInput(req.body);
      admitDevices(deps.store, [input], deps.imageKnown);
      const outcome = deps.store.upsert(input, 'api');
      return reply.code(outcome === 'created' ? 201 : 200).send({ outcome, device: publicDevice(deps.store.require(input.serial)) });
    });

    api.put('/devices/:serial', async (req, reply) => {
      const { serial } = req.params as { serial: string };
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (body.serial !== undefined && body.serial !== serial) throw new ZtpError('DEVICE_INVALID', 'serial: body and URL disagree');
      const input = parseDeviceInput({ ...body, serial });
      admitDevices(deps.store, [input], deps.imageKnown);
      const outcome = deps.store.upsert(input, 'api');
      return reply.code(outcome === 'created' ? 201 : 200).send({ outcome, device: publicDevice(deps.store.require(serial)) });
    });

    api.get('/devices/:serial', async (req) => {
      const { serial } = req.params as { serial: string };
      const limit = clampInt((req.query as { limit?: string }).limit, 100, 1, 1000);
      return { device: publicDevice(deps.store.require(serial)), history: deps.store.recentHistory(serial, limit) };
    });

    api.get('/devices/:serial/history', async (req) => {
      const { serial } = req.params as { serial: string };
      deps.store.require(serial);
      const q = req.query as { after?: string; limit?: string };
      return { events: deps.store.history(serial, clampInt(q.after, 0, 0, Number.MAX_SAFE_INTEGER), clampInt(q.limit, 1000, 1, 10_000)) };
    });

    api.get('/devices/:serial/progress', async (req) => {
      const { serial } = req.params as { serial: string };
      deps.store.require(serial);
      return { reports: deps.store.recentHistory(serial, 1000, 'progress') };
    });

    api.delete('/devices/:serial', async (req) => {
      const { serial } = req.params as { serial: string };
      return { serial, removed: deps.store.remove(serial, 'api') };
    });

    api.post('/devices/import', async (req) => {
      const body = typeof req.body === 'string' ? req.body : JSON.stringify(req.body ?? null);
      const format = req.headers['content-type']?.includes('csv') ? 'csv' : 'auto';
      const inputs = parseImport(body, format);
      admitDevices(deps.store, inputs, deps.imageKnown, importRowNumber(body, format));
      const result = importDevices(deps.store, inputs, 'api-import');
      return result;
    });

    api.get('/status', async () => ({ devices: deps.store.count(), states: deps.store.stateCounts() }));

    // The live feed: Server-Sent Events of every history event (dashboard, `ztp watch`);
    // plain JSON paging with ?after= for scripts.
    api.get('/events', async (req, reply) => {
      const q = req.query as { after?: string; limit?: string };
      const after = clampInt(q.after, 0, 0, Number.MAX_SAFE_INTEGER);
      if (!(req.headers.accept ?? '').includes('text/event-stream')) {
        return { events: deps.store.eventsAfter(after, clampInt(q.limit, 1000, 1, 10_000)) };
      }
      return streamEvents(req, reply, deps.store, after);
    });

    for (const p of deps.plugins ?? []) await api.register(p.plugin, { prefix: p.prefix, ...(p.options ?? {}) });
  }, { prefix: '/api/v1' });

  return app;
}

function clampInt(value: string | undefined, fallback: number, min: number, max: number): number {
  const n = value === undefined ? fallback : Number.parseInt(value, 10);
  if (!Number.isFinite(n)) return fallback;
  return Math.min(max, Math.max(min, n));
}

function streamEvents(req: FastifyRequest, reply: FastifyReply, store: DeviceStore, after: number): FastifyReply {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  const send = (e: HistoryEvent) => res.write(`id: ${e.id}\nevent: history\ndata: ${JSON.stringify(e)}\n\n`);
  for (const e of store.eventsAfter(after, 500)) send(e);
  const onEvent = (e: HistoryEvent) => {
    if (e.id > after) send(e);
  };
  store.events.on('event', onEvent);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  keepAlive.unref();
  const close = () => {
    clearInterval(keepAlive);
    store.events.off('event', onEvent);
  };
  req.raw.on('close', close);
  res.on('error', close);
  return reply;
}
