// Admin API (/api/v1, bearer token), the live dashboard (/), metrics (/metrics) and the
// OpenAPI document (/api/v1/openapi.json). Built without listening; tests use inject().
import { timingSafeEqual, createHash } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyRequest } from 'fastify';
import { importDevices, importRowNumber, parseImport } from '../devices/import.js';
import { admitDevices } from '../onboarding/admission.js';
import { parseDeviceInput, publicDevice } from '../devices/model.js';
import type { DeviceStore } from '../devices/store.js';
import { isZtpError, ZtpError } from '../errors.js';
import { lazySchemaCompilers } from '../http/lazy-schema-compilers.js';
import type { Logger } from '../log.js';
import { Metrics } from '../metrics.js';
import { observeHttp } from '../observability.js';
import { ONBOARDING_STATES } from '../onboarding/state.js';
import { registerDashboard } from './dashboard.js';
import { OPENAPI } from './openapi.js';
import { EventHub } from './events.js';
import { STEPS } from '../onboarding/job.js';

export interface ApiPlugin {
  prefix: string;
  plugin: FastifyPluginAsync<Record<string, unknown>>;
  options?: Record<string, unknown>;
}

export interface ApiAppDeps {
  store: DeviceStore;
  log: Logger;
  token: string;
  /** the suite's Prometheus families (default: this app's own, reading device states and history) */
  metrics?: Metrics;
  /** extra authenticated routes from other services (e.g. images upload), mounted under /api/v1 */
  plugins?: ApiPlugin[];
  /** longest accepted JSON/CSV body for device operations */
  bodyLimit?: number;
  /** per-service readiness for /readyz (e.g. DHCP waiting for its interface); absent = ready */
  readiness?: () => Record<string, ServiceReadiness>;
  /** is a boot image name in the catalogue? (registrations naming an unknown image are refused) */
  imageKnown?: (nameOrSha256: string) => boolean;
  /** the conductor's jobs (publicJob form) for the dashboard's snapshot; absent = onboarding disabled */
  jobs?: () => unknown[];
  /** how often the event feed looks for commits of other processes, ms */
  eventPollMs?: number;
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
  // No route here has a JSON schema: fastify's compilers load only if one ever does (issue 12).
  const app = Fastify({ logger: false, bodyLimit: deps.bodyLimit ?? 16 * 1024 * 1024, return503OnClosing: true, schemaController: lazySchemaCompilers });
  // A suite passes its registry; alone (tests, tools) the API reads device states and history itself.
  const metrics = deps.metrics ?? new Metrics({ defaultMetrics: false });
  if (!deps.metrics) metrics.readFrom({ deviceStates: () => deps.store.stateCounts(), historyEvents: () => deps.store.eventCounts() });
  observeHttp(app, 'api', { metrics });
  const log = deps.log;
  // The event feed follows the history table from start-up; closing the app ends every stream
  // first, so a shutdown never waits on an open dashboard.
  const hub = new EventHub(deps.store, log, { pollMs: deps.eventPollMs ?? 250 });
  app.addHook('onReady', async () => hub.start());
  app.addHook('preClose', async () => hub.close());
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
  // The dashboard (dashboard.ts, files in static/): /, its script and its style, under a strict CSP.
  app.register(async (scope) => registerDashboard(scope, log));
  app.get('/api/v1/openapi.json', async () => OPENAPI);

  // Prometheus exposition (unauthenticated, like most exporters; it carries counts, no secrets).
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).header('cache-control', 'no-store').send(body);
  });

  // Everything under /api/v1 except the OpenAPI document needs the bearer token.
  app.register(async (api) => {
    api.addHook('onRequest', async (req: FastifyRequest) => {
      if (req.url.startsWith('/api/v1/openapi.json')) return;
      const header = req.headers.authorization;
      const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
      // Only the header: a token in a URL ends up in logs, proxies and browser history.
      if (!tokenMatches(deps.token, bearer)) throw new ZtpError('API_UNAUTHORIZED');
    });

    api.get('/devices', async (req) => {
      const state = (req.query as { state?: string }).state;
      if (state !== undefined && state !== '' && !(ONBOARDING_STATES as readonly string[]).includes(state)) {
        throw new ZtpError('DEVICE_INVALID', `state "${state}" is not a state; one of: ${ONBOARDING_STATES.join(', ')}`, { details: { field: 'state', states: [...ONBOARDING_STATES] } });
      }
      // Paged (issue 11: a whole fleet per call let one client at 100 calls/s stall the other
      // services): a full page says where the next one starts, as for /events.
      const q = req.query as { after?: string; limit?: string };
      const limit = clampInt(q.limit, 100, 1, 500);
      const devices = deps.store.page({ limit, ...(q.after ? { after: q.after } : {}), ...(state ? { state } : {}) }).map(publicDevice);
      return { devices, ...(devices.length === limit ? { next: devices[devices.length - 1]!.serial } : {}) };
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

    // The live feed (events.ts): Server-Sent Events of every history event from any id
    // (Last-Event-ID or ?after=), replayed in pages; ?snapshot=true first sends the fleet as one
    // `snapshot` event (the dashboard's start). Plain JSON paging with ?after= for scripts.
    api.get('/events', async (req, reply) => {
      const q = req.query as { after?: string; limit?: string; snapshot?: string };
      const resume = req.headers['last-event-id'];
      const after = clampInt(typeof resume === 'string' && resume !== '' ? resume : q.after, 0, 0, Number.MAX_SAFE_INTEGER);
      if (!(req.headers.accept ?? '').includes('text/event-stream')) {
        const limit = clampInt(q.limit, 1000, 1, 10_000);
        const events = deps.store.eventsAfter(after, limit);
        // A full page says where the next one starts: callers loop until `next` is absent.
        return { events, ...(events.length === limit ? { next: events[events.length - 1]!.id } : {}) };
      }
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      // Headers now, not with the first event: a client waits for them before it reads.
      reply.raw.flushHeaders();
      // Brings the hub up to the table's end, so the snapshot and the stream meet at one id.
      hub.pump();
      let first: string | undefined;
      // Without a starting point a stream is live from now on; ?after=0 replays everything.
      const given = (typeof resume === 'string' && resume !== '') || q.after !== undefined;
      let from = given ? Math.min(after, deps.store.latestEventId()) : hub.head;
      if (q.snapshot === 'true') {
        from = hub.head;
        first = `id: ${from}\nevent: snapshot\ndata: ${JSON.stringify(fleetSnapshot(deps, from))}\n\n`;
      }
      hub.subscribe(reply.raw, from, first);
      return reply;
    });

    // What the dashboard's images page shows beside the catalogue: downloads per image.
    api.get('/events/image-reads', async () => ({ images: deps.store.imageReads() }));

    for (const p of deps.plugins ?? []) await api.register(p.plugin, { prefix: p.prefix, ...(p.options ?? {}) });
  }, { prefix: '/api/v1' });

  return app;
}

function clampInt(value: string | undefined, fallback: number, min: number, max: number): number {
  const n = value === undefined ? fallback : Number.parseInt(value, 10);
  if (!Number.isFinite(n)) return fallback;
  return Math.min(max, Math.max(min, n));
}

/** The fleet at one event id: every device, every job, the steps and states to show them by. */
function fleetSnapshot(deps: ApiAppDeps, lastId: number) {
  return {
    lastId,
    devices: deps.store.list().map(publicDevice),
    onboarding: deps.jobs !== undefined,
    jobs: deps.jobs?.() ?? [],
    steps: STEPS,
    states: ONBOARDING_STATES,
  };
}
