// The BMC emulator as a fastify app, built without listening (tested with inject()).
//
// Addressing: every BMC lives under a path prefix on one port,
//   /bmc/<id>/redfish/v1/...        (1,000 BMCs on one listener)
// and every URI the BMC sends back (@odata.id, action targets, Location) carries that prefix, so a
// client given the base URL http://host:port/bmc/<id> follows links unchanged. Clients that insist
// on /redfish/v1 at the root of the host (sushy, Ironic) get one listener per BMC instead
// (runner.ts `basePort`): those requests enter through `routeAtRoot` and see no prefix.
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { silentLogger, type Logger } from '../../log.js';
import { DEFAULT_TIMING, EmulatedBmc, type EmulatorTiming, type EmuResponse } from './bmc.js';
import type { FaultSpec } from './faults.js';
import type { BootingEvent, PowerEvent } from './hooks.js';
import { MediaFetcher } from './media-fetch.js';
import { baseMessage, errorBody } from './messages.js';
import { QUIRKS, type QuirkMode } from './quirks.js';
import { buildTemplate, builtinDpuTree, deriveIdentity, loadMockup, normalizePath, type BmcIdentity, type Json, type Template } from './tree.js';

export interface BmcEmulatorOptions {
  /** how many BMCs (default 1); ids are bmc-0001, bmc-0002, … unless `ids` names them */
  count?: number;
  ids?: string[];
  /** vendor behaviour, for all BMCs or per BMC (default 'generic') */
  quirks?: QuirkMode | ((id: string, index: number) => QuirkMode);
  /** a DMTF mockup directory (e.g. ../shared/redfish/mockups/public-smartnic); absent: the built-in DPU tree */
  mockupDir?: string;
  timing?: Partial<EmulatorTiming>;
  /** faults for every BMC, or by BMC id with '*' for all (faults.ts parseFaults) */
  faults?: FaultSpec | Map<string, FaultSpec>;
  /** PEM bundle the BMCs trust when fetching https:// media */
  mediaCa?: string;
  mediaTimeoutMs?: number;
  mediaRead?: 'sample' | 'full';
  /** range size and number of ranged reads of a sample mount (default 64 KiB × 8) */
  mediaChunkBytes?: number;
  mediaReads?: number;
  /** power state of every system at start (default Off: factory fresh, waiting to be provisioned) */
  initialPower?: 'On' | 'Off';
  /** override the derived serial/UUID/MACs (e.g. to match registered devices) */
  identity?: (id: string, index: number) => Partial<BmcIdentity>;
  /** override the vendor's factory credentials */
  username?: string;
  password?: string;
  /** TLS for the single listener */
  https?: { cert: string; key: string };
  /** idle keep-alive connections are closed after this long (default 5 s) */
  keepAliveTimeoutMs?: number;
  log?: Logger;
  now?: () => number;
}

export interface BmcEmulatorEvents {
  on(event: 'booting', listener: (e: BootingEvent) => void): this;
  on(event: 'power', listener: (e: PowerEvent) => void): this;
  once(event: 'booting', listener: (e: BootingEvent) => void): this;
  once(event: 'power', listener: (e: PowerEvent) => void): this;
  off(event: 'booting' | 'power', listener: (...args: never[]) => void): this;
  emit(event: 'booting', e: BootingEvent): boolean;
  emit(event: 'power', e: PowerEvent): boolean;
}

export interface BmcEmulator {
  app: FastifyInstance;
  /** 'booting' (BootingEvent) and 'power' (PowerEvent), for the simulated DPU behind each BMC */
  events: EventEmitter & BmcEmulatorEvents;
  bmcs: EmulatedBmc[];
  bmc(id: string): EmulatedBmc | undefined;
  /** the prefix path of a BMC on the shared listener: /bmc/<id> */
  prefixOf(id: string): string;
  /** hands a raw request to one BMC as if it were at the root of its own host (per-port listeners) */
  routeAtRoot(id: string, req: IncomingMessage, res: ServerResponse): void;
  close(): Promise<void>;
}

const PREFIX_RE = /^\/bmc\/([^/?#]+)(\/[^?#]*)?/;

export function bmcIdFor(index: number): string {
  return `bmc-${String(index + 1).padStart(4, '0')}`;
}

export function buildBmcEmulatorApp(opts: BmcEmulatorOptions = {}): BmcEmulator {
  const log = opts.log ?? silentLogger;
  const timing: EmulatorTiming = { ...DEFAULT_TIMING, ...opts.timing };
  const events = new EventEmitter() as EventEmitter & BmcEmulatorEvents;
  events.setMaxListeners(0);
  const fetcher = new MediaFetcher({
    ...(opts.mediaCa ? { ca: opts.mediaCa } : {}),
    ...(opts.mediaTimeoutMs ? { timeoutMs: opts.mediaTimeoutMs } : {}),
    ...(opts.mediaChunkBytes ? { chunkBytes: opts.mediaChunkBytes } : {}),
    ...(opts.mediaReads ? { reads: opts.mediaReads } : {}),
  });
  const raw: Map<string, Json> = opts.mockupDir ? loadMockup(opts.mockupDir) : builtinDpuTree();
  const templates = new Map<QuirkMode, Template>();
  const templateFor = (mode: QuirkMode) => {
    let t = templates.get(mode);
    if (!t) templates.set(mode, (t = buildTemplate(raw, mode)));
    return t;
  };
  const ids = opts.ids ?? Array.from({ length: opts.count ?? 1 }, (_, i) => bmcIdFor(i));
  const now = opts.now ?? Date.now;
  const ctx = { events, fetcher, timing, log, mediaRead: opts.mediaRead ?? 'sample', now } as const;
  const bmcs = ids.map((id, index) => {
    const mode = typeof opts.quirks === 'function' ? opts.quirks(id, index) : (opts.quirks ?? 'generic');
    if (!QUIRKS[mode]) throw new Error(`unknown quirk mode ${String(mode)}`);
    const template = templateFor(mode);
    const derived = deriveIdentity(id, Math.max(1, template.tokens.dpuMacs.length));
    const identity = { ...derived, ...(opts.identity?.(id, index) ?? {}) };
    const faults = opts.faults instanceof Map ? { ...(opts.faults.get('*') ?? {}), ...(opts.faults.get(id) ?? {}) } : (opts.faults ?? {});
    return new EmulatedBmc(id, index, template, identity, ctx, { faults, initialPower: opts.initialPower, username: opts.username, password: opts.password });
  });
  const byId = new Map(bmcs.map((b) => [b.id, b]));

  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    forceCloseConnections: true,
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 5_000,
    ...(opts.https ? { https: opts.https } : {}),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  // Clients send actions with no body, `{}`, or JSON under odd content types: parse leniently,
  // keep "no body" distinct from "{}" (iLO refuses the first on EjectMedia).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const err = new Error('malformed JSON') as Error & { statusCode: number; redfish: string };
      err.statusCode = 400;
      err.redfish = 'MalformedJSON';
      done(err, undefined);
    }
  });

  const atRoot = new WeakSet<IncomingMessage>();
  const hung = new Set<ServerResponse>();

  const send = (reply: FastifyReply, res: EmuResponse, prefix: string) => {
    const rewrite = (s: string) => (prefix ? s.replace(/(["'])\/redfish\/v1/g, `$1${prefix}/redfish/v1`) : s);
    const headers: Record<string, string> = { 'odata-version': '4.0', 'cache-control': 'no-cache' };
    for (const [k, v] of Object.entries(res.headers)) headers[k] = k === 'location' && v.startsWith('/redfish') ? prefix + v : v;
    if (res.text !== undefined) headers['content-type'] = 'application/json; charset=utf-8';
    reply.code(res.status).headers(headers);
    return reply.send(res.text === undefined ? undefined : rewrite(res.text));
  };

  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const m = PREFIX_RE.exec(request.url);
    const bmc = m ? byId.get(decodeURIComponent(m[1]!)) : undefined;
    if (!m || !bmc) {
      return reply.code(404).header('odata-version', '4.0').type('application/json; charset=utf-8').send(JSON.stringify(errorBody([baseMessage('ResourceMissingAtURI', [request.url.split('?')[0]!])])));
    }
    const prefix = atRoot.has(request.raw) ? '' : `/bmc/${m[1]}`;
    let path: string;
    try {
      path = normalizePath(decodeURIComponent(m[2] ?? '/'));
    } catch {
      return send(reply, { status: 400, text: JSON.stringify(errorBody([baseMessage('ResourceMissingAtURI', [m[2] ?? ''])])), headers: {} }, prefix);
    }
    const latency = bmc.faults.latencyMs ?? 0;
    if (latency > 0) await new Promise((r) => setTimeout(r, latency));
    const res = await bmc.handle({ method: request.method, path, headers: request.headers, body: request.body });
    if (res.hang) {
      // a timeout fault: the request is never answered; close() ends the socket
      reply.hijack();
      hung.add(reply.raw);
      reply.raw.on('close', () => hung.delete(reply.raw));
      return;
    }
    if (res.drop) {
      // a drop-connection fault: the socket closes with no answer (the client sees a reset)
      reply.hijack();
      request.raw.socket.destroy();
      return;
    }
    return send(reply, res, prefix);
  };

  app.route({ method: ['GET', 'HEAD', 'POST', 'PATCH', 'PUT', 'DELETE'], url: '/bmc/:bmcId/redfish', handler });
  app.route({ method: ['GET', 'HEAD', 'POST', 'PATCH', 'PUT', 'DELETE'], url: '/bmc/:bmcId/redfish/*', handler });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).header('odata-version', '4.0').type('application/json; charset=utf-8').send(JSON.stringify(errorBody([baseMessage('ResourceMissingAtURI', [request.url.split('?')[0]!])]))),
  );
  app.setErrorHandler((err: Error & { statusCode?: number; redfish?: string }, request, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) log.error({ err, url: request.url }, 'BMC emulator request failed');
    const info = status === 413 ? baseMessage('UnrecognizedRequestBody') : status === 400 ? baseMessage('MalformedJSON') : status < 500 ? baseMessage('UnrecognizedRequestBody') : baseMessage('InternalError');
    return reply.code(status).header('odata-version', '4.0').type('application/json; charset=utf-8').send(JSON.stringify(errorBody([info])));
  });

  let closed = false;
  return {
    app,
    events,
    bmcs,
    bmc: (id) => byId.get(id),
    prefixOf: (id) => `/bmc/${encodeURIComponent(id)}`,
    routeAtRoot(id, req, res) {
      atRoot.add(req);
      req.url = `/bmc/${encodeURIComponent(id)}${req.url ?? '/'}`;
      app.routing(req, res);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const b of bmcs) b.close();
      for (const res of hung) res.destroy();
      hung.clear();
      await app.close();
      await fetcher.close();
    },
  };
}
