// Redfish transport: the only user of undici in the suite. One instance per BMC session.
//
// What it guarantees (REDFISH.md "Canonical virtual-media boot", STYLE.md practice 10):
// - a per-BMC request queue (one request in flight by default, shared by every session to the
//   same BMC in this process: its origin plus path prefix, so that BMCs behind one listener
//   under /bmc/<id>/redfish/v1 each get their own), connect/headers/body timeouts on every call;
// - TLS verification on by default, against a per-BMC CA bundle or a pinned SHA-256 leaf
//   fingerprint; `insecure` only by explicit opt-in, logged as a warning each session;
// - session login (DSP0266 §13.3.4) with fallback to HTTP Basic, one re-login on 401, session
//   DELETE on close() whatever happened before;
// - retries only for idempotent calls and known transients (connect reset, 503 + Retry-After,
//   "not ready" MessageIds), with capped exponential back-off;
// - `Accept-Encoding: identity`, dropped after one 406 (iLO Gen10 Plus), compressed answers decoded;
// - ETag ladder for PATCH, Members@odata.nextLink paging, 202 task monitors honouring Retry-After;
// - AbortSignal throughout; every failure a typed REDFISH_* ZtpError.
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
// undici is loaded on the first request (not at start: `ztp serve` contacts no BMC until a device
// is onboarded, and the module costs ~80 ms CPU and ~4 MB at start-up; issue 12).
import type { Pool, buildConnector } from 'undici';
import type { Logger } from '../log.js';
import { ZtpError, isZtpError } from '../errors.js';
import type { BmcEndpoint } from './api.js';
import { extendedInfo, hasMessage, httpError, messageKey, type RedfishMessage } from './errors.js';
import { redfishExchanges, type RedfishExchangeMessage } from './diagnostics.js';

export interface RedfishClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: RedfishClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(abortError(signal));
      const timer = setTimeout(done, Math.max(0, ms));
      timer.unref();
      function done() {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }
      function onAbort() {
        clearTimeout(timer);
        reject(abortError(signal!));
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** Timeouts and retry policy; every value in milliseconds unless named otherwise. */
export interface TransportTuning {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** retries after the first attempt, for idempotent calls and known transients */
  retries: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  /** a Retry-After longer than this is cut to it */
  retryAfterCapMs: number;
  maxBodyBytes: number;
  /** a DELETE of the session at close() gets this long, whatever the operation's signal says */
  logoutTimeoutMs: number;
}

export const DEFAULT_TUNING: TransportTuning = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 60_000,
  bodyTimeoutMs: 60_000,
  retries: 3,
  backoffBaseMs: 500,
  backoffCapMs: 10_000,
  retryAfterCapMs: 60_000,
  maxBodyBytes: 16 * 1024 * 1024,
  logoutTimeoutMs: 5_000,
};

export interface RequestOptions {
  /** JSON body; `undefined` sends none */
  body?: unknown;
  headers?: Record<string, string>;
  /** default: GET, HEAD, PUT and DELETE are idempotent; PATCH/POST only when the caller says so */
  idempotent?: boolean;
  step?: string;
  signal?: AbortSignal;
  /** no credentials (service root, login) */
  anonymous?: boolean;
  /** statuses handed back to the caller instead of raised */
  accept?: number[];
}

export interface RedfishResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: unknown;
  uri: string;
  messages: RedfishMessage[];
}

export type AuthMode = 'none' | 'session' | 'basic';

export interface LoginResult {
  mode: AuthMode;
  /** the login answered with Base.PasswordChangeRequired; the account to PATCH when it said which */
  passwordChangeRequired: boolean;
  accountUri: string | null;
}

/** A 202 task or task monitor that reached its end. */
export interface TaskEnd {
  response: RedfishResponse;
  taskState: string | null;
  messages: RedfishMessage[];
}

export interface TransportDeps {
  log: Logger;
  clock?: RedfishClock;
  signal?: AbortSignal;
  tuning?: Partial<TransportTuning>;
}

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);
/** DSP0266 / vendor registries: the service refused the request without acting on it. */
const DEFAULT_TRANSIENT_MESSAGES = new Set(['ServiceTemporarilyUnavailable', 'ServiceInUnknownState']);

function abortError(signal: AbortSignal): ZtpError {
  const reason = signal.reason as unknown;
  if (reason instanceof ZtpError) return reason;
  return new ZtpError('REDFISH_ABORTED', 'BMC operation was aborted', { cause: reason });
}

/** "AB:cd:…" or "abcd…" → 64 lower-case hex digits, else REDFISH_INVALID_ENDPOINT. */
export function normalizeFingerprint(raw: string): string {
  const hex = raw.trim().toLowerCase().replace(/^sha256[:=]/, '').replace(/[:\s]/g, '');
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new ZtpError('REDFISH_INVALID_ENDPOINT', 'BMC fingerprint must be a SHA-256 (64 hex digits, colons allowed)', { details: { field: 'fingerprint256' } });
  }
  return hex;
}

/** The BMC URL as safe to log and record: no credentials, no query. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return '(invalid BMC URL)';
  }
}

/** ETags as sent back in If-Match: `-gzip` suffixes added by compressing proxies stripped. */
export function cleanEtag(etag: string): string {
  return etag.trim().replace(/-gzip"$/, '"');
}

/** W/"x" → "x" (RFC 9110 §8.8.3): the second rung of the If-Match ladder. */
export function strongEtag(etag: string): string | null {
  return etag.startsWith('W/') ? etag.slice(2) : null;
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; milliseconds or null. */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

// ---- per-origin request queue --------------------------------------------------------------

class Semaphore {
  private active = 0;
  private readonly waiters: { resolve: () => void; reject: (e: unknown) => void; signal: AbortSignal | undefined; onAbort: () => void }[] = [];
  constructor(readonly limit: number) {}

  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(abortError(signal!));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) {
      next.signal?.removeEventListener('abort', next.onAbort);
      next.resolve();
    } else {
      this.active--;
    }
  }
}

const QUEUES = new Map<string, { sem: Semaphore; refs: number }>();

function takeQueue(origin: string, limit: number): Semaphore {
  const entry = QUEUES.get(origin);
  if (entry) {
    entry.refs++;
    return entry.sem;
  }
  const sem = new Semaphore(limit);
  QUEUES.set(origin, { sem, refs: 1 });
  return sem;
}

function dropQueue(origin: string): void {
  const entry = QUEUES.get(origin);
  if (entry && --entry.refs <= 0) QUEUES.delete(origin);
}

// ---- network error classification ---------------------------------------------------------

interface Classified {
  error: ZtpError;
  /** worth another attempt at all */
  transient: boolean;
  /** the request never reached the BMC: safe to retry even a POST */
  notSent: boolean;
}

const TLS_CODE = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|HOSTNAME|ERR_OSSL|PIN_MISMATCH/;

function errorCode(err: unknown): string {
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string' && e.code !== 'UND_ERR_SOCKET') return e.code;
    if (!e.cause) return typeof e.code === 'string' ? e.code : '';
    e = e.cause as typeof e;
  }
  return '';
}

/** Marks a connection that died after the request was written and before any answer. */
function lost(error: ZtpError): ZtpError {
  if (error.details) error.details.answerLost = true;
  return error;
}

/**
 * The connection closed (reset, "other side closed") after the request went out and before any
 * answer: the BMC may or may not have acted on it. Non-idempotent callers settle such an error by
 * reading the BMC's state before sending again (client.ts: reset, InsertMedia).
 */
export function isAnswerLost(err: unknown): boolean {
  return err instanceof ZtpError && err.code === 'REDFISH_UNREACHABLE' && err.details?.answerLost === true;
}

function classify(err: unknown, ctx: { method: string; uri: string; bmc: string; step?: string }): Classified {
  if (err instanceof ZtpError) return { error: err, transient: false, notSent: false };
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  const details = { uri: ctx.uri, step: ctx.step ?? null, bmc: ctx.bmc, cause: code || message };
  const make = (c: ConstructorParameters<typeof ZtpError>[0], text: string) => new ZtpError(c, `${ctx.method} ${ctx.uri}: ${text}`, { cause: err, details });
  if (TLS_CODE.test(code)) return { error: make('REDFISH_TLS_FAILED', `TLS verification failed (${code})`), transient: false, notSent: true };
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { error: make('REDFISH_TIMEOUT', 'connect timed out'), transient: true, notSent: true };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { error: make('REDFISH_TIMEOUT', 'no response headers in time'), transient: true, notSent: false };
    case 'UND_ERR_BODY_TIMEOUT':
      return { error: make('REDFISH_TIMEOUT', 'response body stalled'), transient: true, notSent: false };
    case 'ECONNREFUSED':
      return { error: make('REDFISH_UNREACHABLE', 'connection refused'), transient: true, notSent: true };
    case 'EAI_AGAIN':
      return { error: make('REDFISH_UNREACHABLE', 'name lookup failed (temporary)'), transient: true, notSent: true };
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return { error: make('REDFISH_UNREACHABLE', `unreachable (${code})`), transient: false, notSent: true };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
    case 'ECONNABORTED':
      return { error: lost(make('REDFISH_UNREACHABLE', `connection reset (${code})`)), transient: true, notSent: false };
    default: {
      if ((err as { name?: string })?.name === 'AbortError') return { error: make('REDFISH_ABORTED', 'aborted'), transient: false, notSent: false };
      const socket = /socket|reset|closed/i.test(message);
      const error = make('REDFISH_UNREACHABLE', message);
      return { error: socket ? lost(error) : error, transient: socket, notSent: false };
    }
  }
}

// ---- the transport ----------------------------------------------------------------------------

export class RedfishTransport {
  readonly bmc: string;
  readonly tuning: TransportTuning;
  readonly clock: RedfishClock;
  private readonly origin: string;
  /** the BMC's identity for the request queue: origin + path prefix */
  private readonly queueKey: string;
  /** "" or "/prefix": the service root is <prefix>/redfish/v1 */
  private readonly prefix: string;
  /** created on first use, see poolFor() */
  private pool: Promise<Pool> | null = null;
  private readonly endpoint: BmcEndpoint;
  private readonly concurrency: number;
  private readonly queue: Semaphore;
  private readonly log: Logger;
  private readonly signal: AbortSignal | undefined;
  private auth: AuthMode = 'none';
  private token: string | null = null;
  private sessionUri: string | null = null;
  private sessionsCollection = '/redfish/v1/SessionService/Sessions';
  private acceptIdentity = true;
  private closed = false;
  private readonly transientMessages = new Set(DEFAULT_TRANSIENT_MESSAGES);
  private readonly unsupportedMessages = new Set<string>();
  private username: string | undefined;
  private password: string | undefined;
  /** every session this transport created and has not yet deleted (for tests and close()) */
  readonly liveSessions = new Set<string>();

  constructor(endpoint: BmcEndpoint, deps: TransportDeps) {
    let url: URL;
    try {
      url = new URL(endpoint.url);
    } catch {
      throw new ZtpError('REDFISH_INVALID_ENDPOINT', 'BMC URL is not a URL', { details: { field: 'url' } });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new ZtpError('REDFISH_INVALID_ENDPOINT', 'BMC URL must be https:// (or http:// in a lab)', { details: { field: 'url' } });
    }
    if (url.username || url.password) {
      throw new ZtpError('REDFISH_INVALID_ENDPOINT', 'put BMC credentials in username/password, not in the URL', { details: { field: 'url' } });
    }
    this.bmc = displayUrl(endpoint.url);
    this.origin = url.origin;
    this.prefix = url.pathname.replace(/\/+$/, '').replace(/\/redfish\/v1$/, '');
    this.queueKey = this.origin + this.prefix;
    this.log = deps.log.child({ bmc: this.bmc });
    this.clock = deps.clock ?? realClock;
    this.signal = deps.signal;
    this.tuning = { ...DEFAULT_TUNING, ...deps.tuning };
    this.username = endpoint.username;
    this.password = endpoint.password;
    this.endpoint = endpoint;
    this.concurrency = Math.max(1, Math.floor(endpoint.concurrency ?? 1));
    this.queue = takeQueue(this.queueKey, this.concurrency);
    if (url.protocol === 'http:') this.log.warn('BMC reached over plain HTTP: credentials travel in clear (lab use only)');
    // Said at construction, as before the pool became lazy: each session logs it once.
    if (url.protocol === 'https:' && !endpoint.fingerprint256 && endpoint.insecure) {
      this.log.warn('TLS verification of this BMC is disabled (insecure opt-in): anyone on the path can impersonate it');
    }
  }

  /** The connection pool, built with undici on the first request and reused after. */
  private poolFor(): Promise<Pool> {
    this.pool ??= import('undici').then(({ Pool, buildConnector }) => {
      const pool = new Pool(this.origin, {
        connections: this.concurrency,
        pipelining: 1,
        headersTimeout: this.tuning.headersTimeoutMs,
        bodyTimeout: this.tuning.bodyTimeoutMs,
        keepAliveTimeout: 4_000,
        connect: this.origin.startsWith('https:') ? this.tlsConnector(this.endpoint, buildConnector) : { timeout: this.tuning.connectTimeoutMs },
      });
      // A request after close() meets a closed pool (undici's ClientClosedError), as it did when
      // the pool was built in the constructor; this one must not outlive the transport.
      if (this.closed) void pool.close();
      return pool;
    });
    return this.pool;
  }

  private tlsConnector(endpoint: BmcEndpoint, build: typeof buildConnector): buildConnector.connector {
    const timeout = this.tuning.connectTimeoutMs;
    if (endpoint.fingerprint256) {
      const pin = normalizeFingerprint(endpoint.fingerprint256);
      // Pinning replaces chain verification: the leaf must be exactly this certificate.
      const base = build({ rejectUnauthorized: false, timeout });
      return (opts, callback) =>
        base(opts, (err, socket) => {
          if (err || !socket) return callback(err ?? new Error('no socket'), null);
          const raw = (socket as TLSSocket).getPeerCertificate?.()?.raw;
          const seen = raw ? new X509Certificate(raw).fingerprint256.replace(/:/g, '').toLowerCase() : '';
          if (seen !== pin) {
            socket.destroy();
            const mismatch = Object.assign(new Error(`BMC certificate fingerprint ${seen || '(none)'} is not the pinned one`), { code: 'PIN_MISMATCH' });
            return callback(mismatch, null);
          }
          callback(null, socket);
        });
    }
    if (endpoint.insecure) {
      return build({ rejectUnauthorized: false, timeout });
    }
    return build({ rejectUnauthorized: true, timeout, ...(endpoint.caBundle ? { ca: endpoint.caBundle } : {}) });
  }

  /** MessageIds (registry key only, e.g. 'SYS518') that mean "not ready, ask again" on this BMC. */
  addTransientMessages(keys: readonly string[]): void {
    for (const k of keys) this.transientMessages.add(k);
  }

  /** MessageIds that mean "never on this BMC" (e.g. a licence gate): raised as REDFISH_UNSUPPORTED. */
  addUnsupportedMessages(keys: readonly string[]): void {
    for (const k of keys) this.unsupportedMessages.add(k);
  }

  get authMode(): AuthMode {
    return this.auth;
  }

  /** Links and @odata.id values → request paths on this BMC (same origin, path prefix kept). */
  resolve(uri: string): string {
    let path = uri;
    if (/^https?:\/\//i.test(uri)) {
      const u = new URL(uri);
      path = u.pathname + u.search;
    }
    if (!path.startsWith('/')) path = '/' + path;
    if (this.prefix && !path.startsWith(this.prefix + '/')) path = this.prefix + path;
    return path;
  }

  rootPath(): string {
    return this.resolve('/redfish/v1');
  }

  private combinedSignal(signal?: AbortSignal): AbortSignal | undefined {
    if (signal && this.signal) return AbortSignal.any([signal, this.signal]);
    return signal ?? this.signal;
  }

  private backoff(attempt: number): number {
    const exp = this.tuning.backoffBaseMs * 2 ** attempt;
    // Full jitter keeps a thousand BMC sessions from retrying in lock-step.
    return Math.min(this.tuning.backoffCapMs, exp) * (0.5 + Math.random() * 0.5);
  }

  private authHeaders(): Record<string, string> {
    if (this.auth === 'session' && this.token) return { 'x-auth-token': this.token };
    if (this.auth === 'basic') return { authorization: 'Basic ' + Buffer.from(`${this.username ?? ''}:${this.password ?? ''}`).toString('base64') };
    return {};
  }

  /** One HTTP exchange, no policy; announced on the Redfish diagnostics channel (metrics, traces). */
  private async exchange(method: string, path: string, opts: RequestOptions, signal: AbortSignal | undefined, timeouts?: { headers: number; body: number }): Promise<RedfishResponse> {
    if (!redfishExchanges.hasSubscribers) return this.exchangeOnce(method, path, opts, signal, timeouts);
    const id = {};
    const started = performance.now();
    const base = { id, bmc: this.bmc, method, path, ...(opts.step ? { step: opts.step } : {}) };
    redfishExchanges.publish({ ...base, phase: 'start', durationMs: 0 } satisfies RedfishExchangeMessage);
    try {
      const res = await this.exchangeOnce(method, path, opts, signal, timeouts);
      redfishExchanges.publish({ ...base, phase: 'end', status: res.status, durationMs: performance.now() - started } satisfies RedfishExchangeMessage);
      return res;
    } catch (err) {
      const errorCode = isZtpError(err) ? err.code : ((err as { code?: string }).code ?? 'error');
      redfishExchanges.publish({ ...base, phase: 'end', errorCode, durationMs: performance.now() - started } satisfies RedfishExchangeMessage);
      throw err;
    }
  }

  private async exchangeOnce(method: string, path: string, opts: RequestOptions, signal: AbortSignal | undefined, timeouts?: { headers: number; body: number }): Promise<RedfishResponse> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'odata-version': '4.0',
      ...(this.acceptIdentity ? { 'accept-encoding': 'identity' } : {}),
      ...(opts.anonymous ? {} : this.authHeaders()),
      ...opts.headers,
    };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const pool = await this.poolFor();
    const res = await pool.request({
      path,
      method: method as 'GET',
      headers,
      body,
      signal,
      headersTimeout: timeouts?.headers ?? this.tuning.headersTimeoutMs,
      bodyTimeout: timeouts?.body ?? this.tuning.bodyTimeoutMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > this.tuning.maxBodyBytes) {
        res.body.destroy();
        throw new ZtpError('REDFISH_BAD_RESPONSE', `${method} ${path}: response larger than ${this.tuning.maxBodyBytes} bytes`, { details: { uri: path, bmc: this.bmc, step: opts.step ?? null } });
      }
      chunks.push(chunk as Buffer);
    }
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
    let raw = Buffer.concat(chunks);
    const encoding = (flat['content-encoding'] ?? '').toLowerCase();
    try {
      if (encoding === 'gzip' || encoding === 'x-gzip') raw = gunzipSync(raw);
      else if (encoding === 'deflate') raw = inflateSync(raw);
      else if (encoding === 'br') raw = brotliDecompressSync(raw);
    } catch (err) {
      throw new ZtpError('REDFISH_BAD_RESPONSE', `${method} ${path}: ${encoding} body could not be decoded`, { cause: err, details: { uri: path, bmc: this.bmc } });
    }
    const text = raw.toString('utf8');
    let json: unknown = null;
    const trimmed = text.trimStart();
    if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
    }
    return { status: res.statusCode, headers: flat, text, json, uri: path, messages: extendedInfo(json) };
  }

  /**
   * A request with the whole policy: queue, retries of transients, one re-login on 401, the
   * identity-encoding fallback. Returns any status; `request()` raises on errors.
   */
  async send(method: string, uri: string, opts: RequestOptions = {}): Promise<RedfishResponse> {
    if (this.closed) throw new ZtpError('REDFISH_ABORTED', 'BMC session is closed', { details: { bmc: this.bmc, uri } });
    const path = this.resolve(uri);
    const signal = this.combinedSignal(opts.signal);
    const idempotent = opts.idempotent ?? IDEMPOTENT_METHODS.has(method);
    const ctx = { method, uri: path, bmc: this.bmc, step: opts.step };
    let relogged = false;
    let encodingRetried = false;
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      await this.queue.acquire(signal);
      let res: RedfishResponse;
      try {
        res = await this.exchange(method, path, opts, signal);
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        const c = classify(err, ctx);
        if (c.transient && (idempotent || c.notSent) && attempt < this.tuning.retries) {
          this.log.debug({ uri: path, method, attempt, err: c.error.message }, 'transient BMC error: retrying');
          await this.clock.sleep(this.backoff(attempt), signal);
          continue;
        }
        throw c.error;
      } finally {
        this.queue.release();
      }
      if (res.status === 406 && this.acceptIdentity && !encodingRetried) {
        // HPE iLO Gen10 Plus refuses Accept-Encoding: identity; without the header it sends identity anyway.
        this.log.debug({ uri: path }, 'BMC refused Accept-Encoding: identity; dropping the header');
        this.acceptIdentity = false;
        encodingRetried = true;
        attempt--;
        continue;
      }
      if (res.status === 401 && !opts.anonymous && this.auth === 'session' && !relogged) {
        relogged = true;
        this.log.info({ uri: path }, 'BMC session expired (401): logging in again');
        // The BMC may still hold the old session (a spurious 401): delete it, best effort.
        await this.logout();
        await this.login(signal);
        attempt--;
        continue;
      }
      const retryAfter = parseRetryAfter(res.headers['retry-after'], this.clock.now());
      const notReady = res.status >= 400 && res.messages.some((m) => this.transientMessages.has(messageKey(m.messageId)));
      // 503 with Retry-After is the service saying it did not act: safe to repeat even a POST.
      const busy = res.status === 503 && (idempotent || retryAfter !== null);
      if ((busy || notReady) && attempt < this.tuning.retries) {
        const wait = retryAfter !== null ? Math.min(retryAfter, this.tuning.retryAfterCapMs) : this.backoff(attempt);
        this.log.debug({ uri: path, method, status: res.status, attempt, waitMs: Math.round(wait) }, 'BMC not ready: retrying');
        await this.clock.sleep(wait, signal);
        continue;
      }
      return res;
    }
  }

  /** send() that raises a typed error for any status >= 400 not in `accept`. */
  async request(method: string, uri: string, opts: RequestOptions = {}): Promise<RedfishResponse> {
    const res = await this.send(method, uri, opts);
    if (res.status >= 400 && !opts.accept?.includes(res.status)) throw this.errorFor(res, method, opts.step);
    return res;
  }

  /** The typed error of an HTTP error response (quirk-listed MessageIds become REDFISH_UNSUPPORTED). */
  errorFor(res: RedfishResponse, method: string, step?: string): ZtpError {
    const err = httpError(res.status, res.text, res.json, { method, uri: res.uri, step, bmc: this.bmc });
    if (res.messages.some((m) => this.unsupportedMessages.has(messageKey(m.messageId)))) {
      return new ZtpError('REDFISH_UNSUPPORTED', err.message, { details: err.details });
    }
    return err;
  }

  /** GET a resource; its ETag (header, else @odata.etag) rides along. */
  async get<T = Record<string, unknown>>(uri: string, opts: RequestOptions = {}): Promise<{ body: T; etag: string | null; response: RedfishResponse }> {
    const res = await this.request('GET', uri, opts);
    if (typeof res.json !== 'object' || res.json === null || Array.isArray(res.json)) {
      throw new ZtpError('REDFISH_BAD_RESPONSE', `GET ${res.uri}: not a JSON object`, { details: { uri: res.uri, bmc: this.bmc, step: opts.step ?? null, httpStatus: res.status } });
    }
    const body = res.json as Record<string, unknown>;
    const tag = res.headers.etag ?? (typeof body['@odata.etag'] === 'string' ? (body['@odata.etag'] as string) : null);
    return { body: body as T, etag: tag ? cleanEtag(tag) : null, response: res };
  }

  /** Every member link of a collection, following Members@odata.nextLink; `Members: null` is empty. */
  async members(uri: string, opts: RequestOptions = {}): Promise<string[]> {
    const out: string[] = [];
    const seen = new Set<string>();
    let next: string | null = uri;
    for (let page = 0; next && page < 1000; page++) {
      if (seen.has(next)) break;
      seen.add(next);
      const body: Record<string, unknown> = (await this.get(next, opts)).body;
      const list = Array.isArray(body.Members) ? body.Members : [];
      for (const m of list) {
        const id = (m as Record<string, unknown> | null)?.['@odata.id'];
        if (typeof id === 'string') out.push(id);
      }
      const nextLink: unknown = body['Members@odata.nextLink'];
      next = typeof nextLink === 'string' && nextLink ? nextLink : null;
    }
    return out;
  }

  /**
   * PATCH with the ETag ladder: If-Match with the last ETag → its strong form on 412 → no
   * If-Match (OpenBMC and iDRAC10 reject it on some resources; Huawei requires it).
   * `etag: undefined` reads the resource first; `etag: null` or `useIfMatch: false` skips the ladder.
   */
  async patch(uri: string, body: unknown, opts: RequestOptions & { etag?: string | null; useIfMatch?: boolean } = {}): Promise<{ response: RedfishResponse; via: string }> {
    let etag = opts.etag ? cleanEtag(opts.etag) : opts.etag;
    if (etag === undefined && opts.useIfMatch !== false) etag = (await this.get(uri, { signal: opts.signal, step: opts.step })).etag;
    const rungs: (string | null)[] = [];
    if (etag && opts.useIfMatch !== false) {
      rungs.push(etag);
      const strong = strongEtag(etag);
      if (strong) rungs.push(strong);
    }
    rungs.push(null);
    let last: RedfishResponse | undefined;
    for (const [i, rung] of rungs.entries()) {
      const headers = { ...opts.headers, ...(rung ? { 'if-match': rung } : {}) };
      const final = i === rungs.length - 1;
      last = await this.request('PATCH', uri, { ...opts, headers, body, idempotent: opts.idempotent ?? true, accept: final ? opts.accept : [...(opts.accept ?? []), 412] });
      if (last.status !== 412 || final) {
        const via = rung === null ? (rungs.length > 1 ? 'no-if-match' : 'plain') : rung === etag ? 'if-match' : 'if-match-strong';
        return { response: last, via };
      }
      this.log.debug({ uri, rung: i }, 'BMC refused the ETag (412): next rung');
    }
    /* c8 ignore next */
    throw new ZtpError('REDFISH_ACTION_FAILED', `PATCH ${uri}: no ETag form accepted`, { details: { uri, bmc: this.bmc } });
  }

  /**
   * Follows a 202 Accepted to its end (DSP0266 §13.2 asynchronous operations): poll the task
   * monitor (Location) honouring Retry-After until it stops answering 202, or the Task resource
   * until TaskState is terminal. Task failure → REDFISH_TASK_FAILED; deadline → REDFISH_TIMEOUT.
   */
  async awaitTask(first: RedfishResponse, opts: { signal?: AbortSignal; step?: string; timeoutMs: number; pollMs?: number }): Promise<TaskEnd> {
    const signal = this.combinedSignal(opts.signal);
    const bodyTask = first.json as Record<string, unknown> | null;
    const monitor = first.headers.location ?? (typeof bodyTask?.['@odata.id'] === 'string' && isTask(bodyTask) ? (bodyTask['@odata.id'] as string) : null);
    if (first.status !== 202 && !(isTask(bodyTask) && !isTerminal(bodyTask))) return { response: first, taskState: taskState(bodyTask), messages: first.messages };
    if (!monitor) return { response: first, taskState: taskState(bodyTask), messages: first.messages };
    const deadline = this.clock.now() + opts.timeoutMs;
    let res = first;
    for (let polls = 0; ; polls++) {
      const retryAfter = parseRetryAfter(res.headers['retry-after'], this.clock.now());
      // Retry-After: 0 on a task still running (an estimate that has run out) must not make us
      // spin: a busy poll loop starved the BMC's own transfer under load (CI, issue 11).
      const floor = opts.pollMs ?? this.tuning.backoffBaseMs;
      const wait = Math.min(Math.max(retryAfter ?? opts.pollMs ?? Math.min(1000 * 2 ** Math.min(polls, 3), 5000), floor), this.tuning.retryAfterCapMs);
      if (this.clock.now() + wait > deadline) {
        throw new ZtpError('REDFISH_TIMEOUT', `task ${monitor} did not finish within ${opts.timeoutMs} ms`, { details: { uri: monitor, bmc: this.bmc, step: opts.step ?? null } });
      }
      await this.clock.sleep(wait, signal);
      res = await this.request('GET', monitor, { signal, step: opts.step, accept: [] });
      const body = res.json as Record<string, unknown> | null;
      if (res.status === 202) continue;
      if (isTask(body) && !isTerminal(body)) continue;
      const state = taskState(body);
      const messages = [...res.messages, ...taskMessages(body)];
      if (state && ['Exception', 'Killed', 'Cancelled', 'Interrupted'].includes(state)) {
        const top = messages.find((m) => /critical|warning/i.test(m.severity)) ?? messages[0];
        throw new ZtpError('REDFISH_TASK_FAILED', `task ${monitor} ended ${state}${top ? `: ${top.messageId} ${top.message}` : ''}`, {
          details: { uri: monitor, bmc: this.bmc, step: opts.step ?? null, taskState: state, messageId: top?.messageId ?? null, bmcMessage: top?.message ?? null },
        });
      }
      return { response: res, taskState: state, messages };
    }
  }

  // ---- sessions --------------------------------------------------------------------------------

  setCredentials(username: string | undefined, password: string | undefined): void {
    this.username = username;
    this.password = password;
  }

  setSessionsCollection(uri: string): void {
    this.sessionsCollection = uri;
  }

  /**
   * Session login; Basic when the BMC has no session service. PasswordChangeRequired (Base
   * registry) is reported, not raised: the caller changes the password and logs in again.
   */
  async login(signal?: AbortSignal): Promise<LoginResult> {
    if (!this.username) {
      this.auth = 'none';
      return { mode: 'none', passwordChangeRequired: false, accountUri: null };
    }
    const res = await this.send('POST', this.sessionsCollection, {
      anonymous: true,
      body: { UserName: this.username, Password: this.password ?? '' },
      step: 'login',
      signal,
      idempotent: false,
    });
    const changeRequired = hasMessage(res.messages, 'PasswordChangeRequired');
    const accountUri = res.messages.find((m) => messageKey(m.messageId) === 'PasswordChangeRequired')?.messageArgs[0] ?? null;
    const token = res.headers['x-auth-token'];
    if ((res.status === 200 || res.status === 201) && token) {
      this.auth = 'session';
      this.token = token;
      const body = res.json as Record<string, unknown> | null;
      const location = res.headers.location ?? (typeof body?.['@odata.id'] === 'string' ? (body['@odata.id'] as string) : null);
      this.sessionUri = location ? this.resolve(location) : null;
      if (this.sessionUri) this.liveSessions.add(this.sessionUri);
      else this.log.warn('BMC created a session without telling where: it cannot be deleted and will time out on its own');
      return { mode: 'session', passwordChangeRequired: changeRequired, accountUri };
    }
    if (res.status === 401 || res.status === 403) {
      if (changeRequired) {
        // Some BMCs refuse the session outright until the password is changed: Basic may still reach the account.
        this.auth = 'basic';
        return { mode: 'basic', passwordChangeRequired: true, accountUri };
      }
      // A BMC without a session service may guard its Sessions URI like any other: try Basic once.
      this.auth = 'basic';
      const probe = await this.send('GET', this.resolve('/redfish/v1/Systems'), { step: 'login', signal }).catch(() => null);
      if (probe && probe.status < 400) {
        this.log.info('BMC refused session login but accepts HTTP Basic: using Basic');
        return { mode: 'basic', passwordChangeRequired: false, accountUri: null };
      }
      this.auth = 'none';
      throw httpError(res.status, res.text, res.json, { method: 'POST', uri: res.uri, step: 'login', bmc: this.bmc });
    }
    if ((res.status >= 200 && res.status < 300) || res.status === 404 || res.status === 405 || res.status === 501 || res.status === 400) {
      // No session service (or one that hands out no token): HTTP Basic on every request.
      this.log.info({ status: res.status }, 'BMC has no usable session service: using HTTP Basic');
      this.auth = 'basic';
      return { mode: 'basic', passwordChangeRequired: changeRequired, accountUri };
    }
    throw httpError(res.status, res.text, res.json, { method: 'POST', uri: res.uri, step: 'login', bmc: this.bmc });
  }

  /** DELETE the session (never raises; its own timeout, deaf to aborted operation signals). */
  async logout(): Promise<boolean> {
    const uri = this.sessionUri;
    const token = this.token;
    this.sessionUri = null;
    this.token = null;
    if (!uri || !token) return false;
    const timeout = this.tuning.logoutTimeoutMs;
    const deadline = AbortSignal.timeout(timeout);
    // A busy BMC (503, reset connection) gets a few quick retries: a leaked session can lock
    // the account out on BMCs with a small session table.
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.exchange('DELETE', uri, { anonymous: true, headers: { 'x-auth-token': token } }, deadline, { headers: timeout, body: timeout });
        if (res.status === 503 && attempt < 3) {
          const wait = Math.min(parseRetryAfter(res.headers['retry-after'], this.clock.now()) ?? this.backoff(attempt), 1_000);
          await this.clock.sleep(wait, deadline);
          continue;
        }
        this.liveSessions.delete(uri);
        if (res.status >= 400 && res.status !== 404) this.log.warn({ status: res.status }, 'BMC refused to delete the session');
        return res.status < 400;
      } catch (err) {
        if (!deadline.aborted && attempt < 3 && classify(err, { method: 'DELETE', uri, bmc: this.bmc }).transient) {
          await this.clock.sleep(this.backoff(attempt), deadline).catch(() => undefined);
          continue;
        }
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'BMC session could not be deleted; it will time out on the BMC');
        return false;
      }
    }
  }

  /** Logs out and releases sockets; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.logout();
    this.closed = true;
    dropQueue(this.queueKey);
    if (!this.pool) return; // never sent a request: no undici, no sockets
    const pool = await this.pool;
    await pool.close().catch(() => pool.destroy().catch(() => undefined));
  }
}

function isTask(body: Record<string, unknown> | null | undefined): body is Record<string, unknown> {
  return !!body && typeof body.TaskState === 'string';
}

function taskState(body: Record<string, unknown> | null | undefined): string | null {
  return body && typeof body.TaskState === 'string' ? body.TaskState : null;
}

const TERMINAL = new Set(['Completed', 'Exception', 'Killed', 'Cancelled', 'Interrupted']);
function isTerminal(body: Record<string, unknown>): boolean {
  return TERMINAL.has(String(body.TaskState));
}

function taskMessages(body: Record<string, unknown> | null): RedfishMessage[] {
  if (!body || !Array.isArray(body.Messages)) return [];
  return extendedInfo({ '@Message.ExtendedInfo': body.Messages });
}
