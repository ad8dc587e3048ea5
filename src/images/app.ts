// The image file server: GET/HEAD of catalogue images with RFC 9110 range and conditional
// semantics, streamed from content-addressed storage with backpressure (no whole-file buffering).
// Built without listening (buildImagesApp) so tests inject(); service.ts binds the ports.
//
// The handler hijacks the reply and writes the raw response itself: headers and body framing
// (single range, multipart/byteranges, 304/412/416) are computed by the pure modules range.ts and
// conditional.ts; this file only does I/O.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { TlsOptions, TLSSocket } from 'node:tls';
import Fastify, { LogController, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { Config } from '../config.js';
import type { DeviceStore } from '../devices/store.js';
import { isZtpError, type ErrorCode } from '../errors.js';
import { lazySchemaCompilers } from '../http/lazy-schema-compilers.js';
import type { Logger } from '../log.js';
import type { BlobLease } from './blob-reader.js';
import type { ImageCatalogue, ImageEntry } from './catalogue.js';
import { evaluateConditionals, httpDate } from './conditional.js';
import { parseTarget, type ImageTarget } from './paths.js';
import { READ_PLAN, sendSpan, sharedBudget, type BufferBudget } from './pump.js';
import { contentRange, parseRange, planMultipart, rangeLength, unsatisfiedRange, type RangePolicy } from './range.js';
import type { DownloadRecorder } from './recorder.js';
import type { ImageView } from './urls.js';

/** Who is on the other end of a TLS connection (client certificate), as far as we can tell. */
export interface PeerIdentity {
  tls: boolean;
  /** a client certificate was presented and verified against the device trust bundle */
  authorized: boolean;
  /** serial number from the certificate subject (serialNumber, else CN) */
  serial?: string;
  /** why a presented certificate was not trusted */
  error?: string;
}

export interface ImagesAppDeps {
  catalogue: ImageCatalogue;
  store?: DeviceStore | undefined;
  recorder?: DownloadRecorder | undefined;
  log: Logger;
  config: Config;
  /** which listener this app answers on */
  scheme: 'http' | 'https';
  /** TLS options (cert, key, ca, requestCert, rejectUnauthorized) for the HTTPS listener */
  https?: TlsOptions;
  rangePolicy?: RangePolicy;
  /** epoch ms; tests pin it */
  now?: () => number;
  /** read size of the file streams, bytes (default READ_PLAN[scheme]; ignored when `buffers` is given) */
  chunkSize?: number;
  /** read buffers (default: the process-wide budget of READ_PLAN[scheme]) */
  buffers?: BufferBudget;
  /** test seam: the identity of the peer (default: read the TLS socket) */
  peerIdentity?: (req: FastifyRequest) => PeerIdentity;
}

const ALLOW = 'GET, HEAD';
const MAX_URL_LENGTH = 2048;

/** Reads the client certificate off a TLS socket; a plain socket has none. */
export function tlsPeerIdentity(req: FastifyRequest): PeerIdentity {
  const sock = req.raw.socket as Partial<TLSSocket>;
  if (!sock || sock.encrypted !== true || typeof sock.getPeerCertificate !== 'function') return { tls: false, authorized: false };
  const cert = sock.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return { tls: true, authorized: false };
  const subject = (cert.subject ?? {}) as unknown as Record<string, string | string[] | undefined>;
  const pick = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const serial = pick(subject.serialNumber) ?? pick(subject.CN);
  const id: PeerIdentity = { tls: true, authorized: sock.authorized === true };
  if (serial) id.serial = serial;
  if (!id.authorized && sock.authorizationError) id.error = String(sock.authorizationError);
  return id;
}

function contentTypeOf(name: string): string {
  if (/\.iso$/i.test(name)) return 'application/x-iso9660-image';
  if (/\.(json)$/i.test(name)) return 'application/json';
  return 'application/octet-stream';
}

/** A configured base URL as the Host header of a request for it reads: host and port, lowercase. */
interface BaseOrigin {
  scheme: 'http' | 'https';
  hostname: string;
  port: string;
}

function baseOrigin(base: string): BaseOrigin | undefined {
  if (!base) return undefined;
  try {
    const u = new URL(base);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return { scheme: u.protocol === 'https:' ? 'https' : 'http', hostname: u.hostname.toLowerCase(), port: u.port || (u.protocol === 'https:' ? '443' : '80') };
  } catch {
    return undefined;
  }
}

/**
 * Picks the audience of a request: by Host against the configured base URLs, else a heuristic.
 * The base URLs are parsed once per app (viewClassifier), not per request.
 */
export function viewClassifier(config: Config): (hostHeader: string | undefined, scheme: 'http' | 'https', isRange: boolean) => ImageView {
  const bmcBase = baseOrigin(config.images.bmcUrl);
  const deviceBase = baseOrigin(config.images.deviceUrl);
  return (hostHeader, scheme, isRange) => {
    const host = (hostHeader ?? '').toLowerCase();
    const [h, p] = host.startsWith('[') ? [host.slice(0, host.indexOf(']') + 1), host.slice(host.indexOf(']') + 2)] : host.split(':');
    const port = p || (scheme === 'https' ? '443' : '80');
    const matches = (b: BaseOrigin | undefined) => b !== undefined && b.scheme === scheme && b.hostname === h && b.port === port;
    const bmc = matches(bmcBase);
    const dev = matches(deviceBase);
    if (bmc !== dev) return bmc ? 'bmc' : 'device';
    // BMCs mount over HTTPS with range reads; DPUs download whole files.
    return isRange ? 'bmc' : 'device';
  };
}

export function classifyView(config: Config, hostHeader: string | undefined, scheme: 'http' | 'https', isRange: boolean): ImageView {
  return viewClassifier(config)(hostHeader, scheme, isRange);
}

/** What every response for one catalogue version of an image says, computed once, not per request. */
interface EntryHeaders {
  etag: string;
  lastModified: number;
  /** validators and Repr-Digest, by the URL form (by digest: immutable; by name: revalidate) */
  byName: Record<string, string>;
  bySha256: Record<string, string>;
  contentType: string;
}

function entryHeaders(entry: ImageEntry): EntryHeaders {
  const etag = `"${entry.sha256}"`;
  const lastModified = Date.parse(entry.updatedAt);
  const common = {
    etag,
    'last-modified': httpDate(lastModified),
    'accept-ranges': 'bytes',
    // RFC 9530 Repr-Digest: lets a client check what it assembled from ranges.
    'repr-digest': `sha-256=:${Buffer.from(entry.sha256, 'hex').toString('base64')}:`,
  };
  return {
    etag,
    lastModified,
    byName: { ...common, 'cache-control': 'no-cache' },
    bySha256: { ...common, 'cache-control': 'public, max-age=31536000, immutable' },
    contentType: contentTypeOf(entry.name),
  };
}

export async function buildImagesApp(deps: ImagesAppDeps): Promise<FastifyInstance> {
  const { catalogue, config, log } = deps;
  const now = deps.now ?? Date.now;
  const plan = READ_PLAN[deps.scheme];
  const buffers = deps.buffers ?? sharedBudget(deps.scheme, deps.chunkSize ?? plan.chunkSize, plan.budgetBytes);
  const peerIdentity = deps.peerIdentity ?? tlsPeerIdentity;
  const classify = viewClassifier(config);
  // keyed by name, digest and catalogue version: a replaced image gets new headers
  const headerCache = new Map<string, EntryHeaders>();
  const headersOf = (entry: ImageEntry): EntryHeaders => {
    const key = `${entry.name}|${entry.sha256}|${entry.updatedAt}`;
    let hit = headerCache.get(key);
    if (!hit) {
      if (headerCache.size >= 256) headerCache.clear();
      headerCache.set(key, (hit = entryHeaders(entry)));
    }
    return hit;
  };
  const options: FastifyServerOptions = {
    loggerInstance: log,
    // No child logger per request: fastify's default builds one (bindings, redaction setup) for
    // every request, and every line here is logged through `log` with its own fields anyway.
    // Under a BMC's range reads that was the largest allocation per request after our own.
    childLoggerFactory: (logger) => logger,
    // we log each response ourselves (download records, refusals)
    logController: new LogController({ disableRequestLogging: true }),
    // no route has a schema: ajv and fast-json-stringify's compiler are not loaded at start (issue 12)
    schemaController: lazySchemaCompilers,
    // Malformed requests, oversized headers (431), timeouts: answered by Node, logged here.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      const code = err.code ?? '';
      if (code !== 'ECONNRESET' && code !== 'EPIPE') log.warn({ err: { code, message: err.message }, remote: socket.remoteAddress }, 'image server: bad request from client');
      if (!socket.writable) return socket.destroy();
      const status = code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    },
  };
  if (deps.https) (options as { https: unknown }).https = deps.https;
  const app = Fastify(options);

  const fail = (res: ServerResponse, status: number, code: ErrorCode | 'METHOD_NOT_ALLOWED', message: string, extra: Record<string, string> = {}) => {
    const body = JSON.stringify({ error: { code, message } });
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  };

  app.route({
    method: ['GET', 'HEAD'],
    url: '/*',
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      try {
        await serve(req, res);
      } catch (err) {
        log.error({ err, url: req.raw.url }, 'image server: request failed');
        if (!res.headersSent) fail(res, 500, 'IMAGES_INVALID', 'internal error');
        else res.destroy();
      }
    },
  });

  app.setNotFoundHandler((req, reply) => {
    reply.hijack();
    log.warn({ method: req.method, url: (req.raw.url ?? '').slice(0, 256), remote: req.ip }, 'image server: method not allowed');
    fail(reply.raw, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`, { allow: ALLOW });
  });

  async function serve(req: FastifyRequest, res: ServerResponse): Promise<void> {
    const rawUrl = req.raw.url ?? '';
    const client = req.ip;
    if (rawUrl.length > MAX_URL_LENGTH) {
      log.warn({ remote: client, length: rawUrl.length }, 'image server: request target too long');
      return fail(res, 414, 'IMAGES_BAD_PATH', 'request target too long');
    }
    const parsed = parseTarget(rawUrl);
    if (!parsed.ok) {
      log.warn({ remote: client, url: rawUrl.slice(0, 256), reason: parsed.reason }, parsed.status === 400 ? 'image server: refused path' : 'image server: no such path');
      return fail(res, parsed.status, parsed.status === 400 ? 'IMAGES_BAD_PATH' : 'IMAGES_NOT_FOUND', parsed.status === 400 ? `path is not allowed (${parsed.reason})` : 'not found');
    }
    const target = parsed.target;
    if (target.kind === 'health') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3, 'cache-control': 'no-store' });
      return void res.end(req.method === 'HEAD' ? undefined : 'ok\n');
    }
    const entry = target.by === 'name' ? catalogue.getByName(target.key) : catalogue.getBySha256(target.key);
    if (!entry) {
      log.warn({ remote: client, image: target.key, by: target.by }, 'image server: no such image');
      return fail(res, 404, 'IMAGES_NOT_FOUND', 'no such image');
    }

    const peer = peerIdentity(req);
    if ((config.images.requireClientCert || entry.requireClientCert) && !peer.authorized) {
      log.warn({ remote: client, image: entry.name, tls: peer.tls, certSerial: peer.serial, certError: peer.error }, 'image server: client certificate required, refused');
      return fail(res, 403, 'IMAGES_CLIENT_CERT_REQUIRED', peer.tls ? 'a client certificate trusted by the device trust bundle is required' : 'a client certificate is required: use https');
    }

    const who = attribute(target, peer);

    let blob: BlobLease;
    try {
      blob = await catalogue.blobs.openForRead(entry.sha256);
    } catch (err) {
      return refuseContent(res, err, entry, who, client);
    }
    try {
      if (blob.size !== entry.size) {
        log.error({ image: entry.name, sha256: entry.sha256, size: blob.size, expected: entry.size }, 'image server: stored content does not match the catalogue');
        return fail(res, 500, 'IMAGES_CONTENT_DAMAGED', 'image content is damaged');
      }
      await respond(req, res, blob.fd, entry, target, who, client);
    } finally {
      blob.release();
    }
  }

  /** Content that is missing or failed its integrity check: 500, a log line, and (once) history. */
  function refuseContent(res: ServerResponse, err: unknown, entry: ImageEntry, who: { serial: string | null; mac?: string }, client: string): void {
    if (isZtpError(err, 'IMAGES_CONTENT_DAMAGED')) {
      const details = err.details ?? {};
      const fields = { image: entry.name, sha256: entry.sha256, reason: details.reason, resolved: details.resolved, actual: details.actual, remote: client, serial: who.serial };
      if (details.firstSeen === true) {
        log.error(fields, `image server: refused to serve a damaged blob: ${err.message}`);
        try {
          deps.store?.record({ serial: who.serial, source: 'images', type: 'integrity-error', data: { image: entry.name, sha256: entry.sha256, reason: details.reason, message: err.message, client, ...(who.mac ? { mac: who.mac } : {}) } });
        } catch (recordErr) {
          log.error({ err: recordErr, image: entry.name }, 'could not record an image integrity error');
        }
      } else {
        log.warn(fields, 'image server: damaged blob still refused');
      }
      return fail(res, 500, 'IMAGES_CONTENT_DAMAGED', 'stored image content failed its integrity check');
    }
    log.error({ err, image: entry.name, sha256: entry.sha256 }, 'image server: catalogue entry has no readable content');
    fail(res, 500, 'IMAGES_NOT_FOUND', 'image content is missing');
  }

  function attribute(target: Extract<ImageTarget, { kind: 'image' }>, peer: PeerIdentity): { serial: string | null; mac?: string; certSerial?: string } {
    const out: { serial: string | null; mac?: string; certSerial?: string } = { serial: null };
    if (peer.authorized && peer.serial) out.certSerial = peer.serial;
    if (target.mac) {
      out.mac = target.mac;
      out.serial = deps.store?.getByMac(target.mac)?.serial ?? null;
    } else if (target.serial) {
      out.serial = deps.store?.get(target.serial)?.serial ?? null;
    }
    if (out.serial === null && out.certSerial) out.serial = deps.store?.get(out.certSerial)?.serial ?? null;
    return out;
  }

  async function respond(
    req: FastifyRequest,
    res: ServerResponse,
    fd: number,
    entry: ImageEntry,
    target: Extract<ImageTarget, { kind: 'image' }>,
    who: { serial: string | null; mac?: string; certSerial?: string },
    client: string,
  ): Promise<void> {
    const h = req.headers;
    const size = entry.size;
    const cached = headersOf(entry);
    const { etag, lastModified } = cached;
    const t = now();
    const base = target.by === 'sha256' ? cached.bySha256 : cached.byName;
    const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v);
    const cond = evaluateConditionals(
      { ifMatch: one(h['if-match']), ifNoneMatch: one(h['if-none-match']), ifModifiedSince: one(h['if-modified-since']), ifUnmodifiedSince: one(h['if-unmodified-since']), ifRange: one(h['if-range']) },
      { etag, lastModified },
      t,
    );
    if (cond.status === 304) {
      res.writeHead(304, base);
      return void res.end();
    }
    if (cond.status === 412) {
      log.info({ remote: client, image: entry.name }, 'image server: precondition failed');
      return fail(res, 412, 'IMAGES_INVALID', 'precondition failed', { etag });
    }
    const isGet = req.method === 'GET';
    const rangeHeader = one(h.range);
    // §14.2: Range is defined for GET only; If-Range failing means "send it all".
    const rr = isGet && cond.useRange ? parseRange(rangeHeader, size, deps.rangePolicy) : ({ kind: 'ignore', why: 'absent' } as const);
    if (rr.kind === 'ignore' && rr.why !== 'absent') log.info({ remote: client, image: entry.name, range: rangeHeader?.slice(0, 128), why: rr.why }, 'image server: Range header ignored');
    if (rr.kind === 'unsatisfiable') {
      log.info({ remote: client, image: entry.name, range: rangeHeader?.slice(0, 128), size }, 'image server: range not satisfiable');
      return fail(res, 416, 'IMAGES_RANGE_NOT_SATISFIABLE', 'range not satisfiable', { 'content-range': unsatisfiedRange(size) });
    }
    const contentType = cached.contentType;
    const view = classify(h.host, deps.scheme, rr.kind === 'ranges');
    const started = performance.now();
    let sent = 0;
    const track = (n: number) => (sent += n);
    const finish = (completed: boolean) => {
      // Bytes still queued in the response were never handed to the socket.
      const bytes = completed ? sent : Math.max(0, sent - (res.writableLength ?? 0));
      deps.recorder?.record({
        serial: who.serial,
        image: entry.name,
        sha256: entry.sha256,
        bytes,
        durationMs: Math.round(performance.now() - started),
        completed,
        client,
        view,
        ...(rr.kind === 'ranges' ? { range: rangeHeader ?? '' } : {}),
        ...(who.mac ? { mac: who.mac } : {}),
        ...(who.certSerial ? { certSerial: who.certSerial } : {}),
      });
    };

    if (!isGet) {
      res.writeHead(200, { ...base, 'content-type': contentType, 'content-length': size });
      return void res.end();
    }

    let completed = false;
    try {
      if (rr.kind !== 'ranges') {
        res.writeHead(200, { ...base, 'content-type': contentType, 'content-length': size });
        if (size > 0) await sendSpan(fd, res, { start: 0, end: size - 1 }, buffers, track, true);
        else res.end();
      } else if (rr.ranges.length === 1) {
        const r = rr.ranges[0]!;
        res.writeHead(206, { ...base, 'content-type': contentType, 'content-length': rangeLength(r), 'content-range': contentRange(r, size) });
        await sendSpan(fd, res, r, buffers, track, true);
      } else {
        const plan = planMultipart(rr.ranges, size, contentType, randomBytes(12).toString('hex'));
        res.writeHead(206, { ...base, 'content-type': plan.contentType, 'content-length': plan.contentLength });
        for (let i = 0; i < rr.ranges.length; i++) {
          if (!res.write(plan.heads[i]!)) await drained(res);
          await sendSpan(fd, res, rr.ranges[i]!, buffers, track, false);
        }
        res.end(plan.tail);
      }
      await finished(res);
      completed = true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ERR_STREAM_PREMATURE_CLOSE' && code !== 'ECONNRESET' && code !== 'EPIPE' && code !== 'ERR_STREAM_DESTROYED') {
        log.error({ err, image: entry.name }, 'image server: read failed mid-response');
      }
      res.destroy();
    } finally {
      finish(completed);
    }
  }

  return app;
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      res.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      res.off('drain', onDrain);
      reject(Object.assign(new Error('client went away'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** Resolves when the response was fully handed to the socket; rejects if the client left first. */
function finished(res: ServerResponse): Promise<void> {
  if (res.writableFinished) return Promise.resolve();
  return new Promise((resolve, reject) => {
    res.once('finish', () => resolve());
    res.once('close', () => (res.writableFinished ? resolve() : reject(Object.assign(new Error('client went away'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }))));
  });
}

