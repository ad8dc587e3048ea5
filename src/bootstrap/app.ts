// The RFC 8572 bootstrap server as a fastify app, built without listening (tests use inject();
// the service binds HTTPS). Routes (RFC 8572 §7, RFC 8040 §3.6):
//   GET  /.well-known/host-meta                                    (RFC 8040 §3.1)
//   POST /restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data
//   POST /restconf/operations/ietf-sztp-bootstrap-server:report-progress
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ServerOptions } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeviceStore } from '../devices/store.js';
import { isZtpError, ZtpError } from '../errors.js';
import { RateLimitedLog, redactUrl, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { observeHttp } from '../observability.js';
import type { Telemetry } from '../telemetry.js';
import type { DeviceAuthenticator} from './auth.js';
import { parseBasic, peerCertificate, type Authenticated, type Credentials } from './auth.js';
import { FailureLimiter, historyFailureWriter } from './failures.js';
import type { BootstrapResponder } from './responder.js';
import { lazySchemaCompilers } from '../http/lazy-schema-compilers.js';
import {
  decodeBootstrapRequest, decodeProgressReport, MEDIA_TYPE, requestEncoding, responseEncoding,
  restconfError, type Encoding,
} from './restconf.js';

export const RPC_PATH = '/restconf/operations/ietf-sztp-bootstrap-server:';

export interface BootstrapAppDeps {
  store: DeviceStore;
  responder: BootstrapResponder;
  authenticator: DeviceAuthenticator;
  log: Logger;
  maxBodyBytes: number;
  metrics?: Metrics;
  telemetry?: Telemetry;
  /** HTTPS options; absent in inject() tests */
  https?: ServerOptions;
  /** tests without TLS may supply a client certificate this way */
  credentialsOf?: (req: FastifyRequest) => Credentials;
  /** failed requests per (serial, address): coalescing window and 429 threshold; per address alone, sourceLimit (failures.ts) */
  failures?: { windowMs: number; limit: number; sourceLimit?: number };
  /** epoch ms; tests drive the failure windows with it */
  now?: () => number;
  /** how long a 429 is held before it is sent, ms (default 1000) */
  rateLimitHoldMs?: number;
}

function defaultCredentials(req: FastifyRequest): Credentials {
  const certificate = peerCertificate(req.raw.socket);
  const basic = parseBasic(req.headers.authorization);
  const credentials: Credentials = {};
  if (certificate) credentials.certificate = certificate;
  if (basic) credentials.basic = basic;
  return credentials;
}

/** The response encoding for an error: what the client asked for, else JSON (never throws). */
function errorEncoding(req: FastifyRequest): Encoding {
  try {
    return responseEncoding(req.headers.accept, safeRequestEncoding(req));
  } catch {
    return 'json';
  }
}

function safeRequestEncoding(req: FastifyRequest): Encoding | undefined {
  try {
    return requestEncoding(req.headers['content-type']);
  } catch {
    return undefined;
  }
}

export function buildBootstrapApp(deps: BootstrapAppDeps): FastifyInstance {
  const metrics = deps.metrics;
  const credentialsOf = deps.credentialsOf ?? defaultCredentials;
  const log = deps.log;
  const app = (deps.https
    ? Fastify({ https: deps.https, logger: false, bodyLimit: deps.maxBodyBytes, return503OnClosing: true, schemaController: lazySchemaCompilers })
    : Fastify({ logger: false, bodyLimit: deps.maxBodyBytes, return503OnClosing: true, schemaController: lazySchemaCompilers })) as unknown as FastifyInstance;

  // Bodies are decoded by our RESTCONF codec, not fastify's JSON parser: take raw bytes of any type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.maxBodyBytes }, (_req, body, done) => done(null, body));

  // Who asked, for the per-RPC metric and span (set once the device is authenticated).
  const serialOf = new WeakMap<FastifyRequest, string>();
  const profileOf = (req: FastifyRequest) => {
    const serial = serialOf.get(req);
    return serial ? (deps.store.cached(serial)?.device.profile ?? 'unknown') : 'unauthenticated';
  };
  observeHttp(app, 'bootstrap', { metrics, telemetry: deps.telemetry }, {
    spans: true,
    spanName: (req) => `sztp ${routeRpc(req.url)}`,
    describe: (req) => ({ 'ztp.rpc': routeRpc(req.url), 'ztp.serial': serialOf.get(req) ?? '', 'ztp.profile': profileOf(req) }),
  });
  if (metrics) {
    app.addHook('onResponse', async (req, reply) => {
      const status = reply.statusCode;
      metrics.bootstrapRequests.inc({ rpc: routeRpc(req.url), outcome: status < 300 ? 'ok' : String(status), profile: profileOf(req) });
    });
  }

  const busyLog = new RateLimitedLog(log);
  function sendError(req: FastifyRequest, reply: FastifyReply, err: unknown, rpc: string, serial?: string): FastifyReply {
    const enc = errorEncoding(req);
    const out = restconfError(err, enc);
    const fields = { rpc, serial, status: out.status, code: isZtpError(err) ? err.code : 'INTERNAL', ip: req.ip, ...(isZtpError(err) && err.details ? { details: err.details } : {}) };
    // Busy replies come in floods: 10 lines per 10 s, then a count. Rate-limited ones are
    // counted in the history summary instead.
    if (isZtpError(err, 'SZTP_BUSY')) busyLog.warn(fields, err.message);
    else if (out.status >= 500) log.error({ ...fields, err }, 'bootstrap request failed');
    else if (isZtpError(err, 'SZTP_RATE_LIMITED')) log.debug(fields, err.message);
    else log.warn(fields, isZtpError(err) ? err.message : 'bootstrap request refused');
    if (out.status === 401) reply.header('www-authenticate', 'Basic realm="sztp"');
    const retryAfter = isZtpError(err) ? err.details?.retryAfter : undefined;
    if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
    return reply.code(out.status).type(out.contentType).send(out.body);
  }

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number }, req, reply) => {
    let mapped: unknown = error;
    if (!isZtpError(error)) {
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') mapped = new ZtpError('SZTP_BODY_TOO_LARGE', `request body exceeds ${deps.maxBodyBytes} bytes`);
      else if (error.statusCode && error.statusCode < 500) mapped = new ZtpError('SZTP_MALFORMED_MESSAGE', error.message);
    }
    return sendError(req, reply, mapped, routeRpc(req.url));
  });

  app.setNotFoundHandler((req, reply) => sendError(req, reply, new ZtpError('SZTP_NOT_FOUND', `no resource at ${req.method} ${redactUrl(req.url).slice(0, 200)}`), 'none'));

  // RFC 8040 §3.1 / RFC 6415: where the RESTCONF root is.
  app.get('/.well-known/host-meta', async (_req, reply) =>
    reply.type('application/xrd+xml').send('<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n  <Link rel="restconf" href="/restconf"/>\n</XRD>\n'),
  );

  // Failed requests per (serial, address): the first of each kind goes to the device history at
  // once, repeats into one summary row per window; past the limit, 429 before any password check.
  const failureWindowMs = deps.failures?.windowMs ?? 60_000;
  const failures = new FailureLimiter(historyFailureWriter(deps.store, log), { windowMs: failureWindowMs, limit: deps.failures?.limit ?? 10, ...(deps.failures?.sourceLimit !== undefined ? { sourceLimit: deps.failures.sourceLimit } : {}), ...(deps.now ? { now: deps.now } : {}) });
  const sweeper = setInterval(() => guarded(() => failures.sweep()), Math.min(failureWindowMs, 10_000));
  sweeper.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    guarded(() => failures.flush());
  });

  function guarded(write: () => void): void {
    try {
      write();
    } catch (err) {
      log.error({ err }, 'could not record failed requests');
    }
  }

  async function authenticate(req: FastifyRequest): Promise<Authenticated> {
    const credentials = credentialsOf(req);
    const claimed = deps.authenticator.claimedSerial(credentials);
    const limited = (scrypt: boolean) => {
      const retryAfter = claimed === undefined ? undefined : failures.retryAfter(claimed, req.ip);
      if (retryAfter !== undefined) return new ZtpError('SZTP_RATE_LIMITED', undefined, { details: { serial: claimed, retryAfter } });
      // The address's own budget guards the scrypt: a password verified before still passes.
      const sourceRetry = scrypt ? failures.sourceRetryAfter(req.ip) : undefined;
      return sourceRetry === undefined ? undefined : new ZtpError('SZTP_RATE_LIMITED', 'too many failed attempts from this address; retry later', { details: { serial: claimed, retryAfter: sourceRetry, scope: 'address' } });
    };
    const refusal = limited(deps.authenticator.needsPasswordCheck(credentials));
    if (refusal) {
      // Held a moment: a client looping on 429 gets one cheap reply per second per connection,
      // not as many as the event loop can write.
      await sleep(deps.rateLimitHoldMs ?? 1000);
      throw refusal;
    }
    // Checked again when a queued password check gets its turn: the limit may have been hit meanwhile.
    const auth = await deps.authenticator.authenticate(credentials, () => limited(true), req.ip);
    serialOf.set(req, auth.serial);
    metrics?.bootstrapAuth.inc({ method: auth.method });
    return auth;
  }

  app.post(`${RPC_PATH}get-bootstrapping-data`, async (req, reply) => {
    const started = performance.now();
    let auth: Authenticated | undefined;
    try {
      auth = await authenticate(req);
      const reqEnc = requestEncoding(req.headers['content-type']);
      const resEnc = responseEncoding(req.headers.accept, reqEnc);
      const input = decodeBootstrapRequest(bodyOf(req), reqEnc);
      const device = deps.store.cached(auth.serial)?.device;
      if (!device) throw new ZtpError('SZTP_ACCESS_DENIED', 'access denied', { details: { reason: 'device was removed', serial: auth.serial } });
      const built = await deps.responder.reply(device, input, resEnc, auth.certificatePem);
      const kind = built.decision.info.kind;
      // The bootstrapping log: input, chosen response, result; committed before replying.
      await deps.store.recordCommitted({
        serial: device.serial,
        source: 'bootstrap',
        type: 'request',
        data: {
          rpc: 'get-bootstrapping-data', result: 'ok', response: kind, signed: built.decision.signed, encrypted: built.decision.encrypted,
          auth: auth.method, encoding: resEnc, input: summarizeInput(input), ip: req.ip,
        },
      });
      metrics?.bootstrapResponses.inc({ response: kind, signed: String(built.decision.signed) });
      // Guarded: the fields object costs something per request even when info is off (issue 12).
      if (log.isLevelEnabled('info')) log.info({ serial: device.serial, rpc: 'get-bootstrapping-data', response: kind, signed: built.decision.signed, encrypted: built.decision.encrypted, cached: built.cached, ms: Math.round(performance.now() - started) }, 'bootstrapping data served');
      return reply.code(200).type(MEDIA_TYPE[resEnc]).send(built.bytes);
    } catch (err) {
      recordFailure(auth?.serial ?? deniedSerial(err), 'get-bootstrapping-data', err, req);
      return sendError(req, reply, err, 'get-bootstrapping-data', auth?.serial);
    }
  });

  app.post(`${RPC_PATH}report-progress`, async (req, reply) => {
    let auth: Authenticated | undefined;
    try {
      auth = await authenticate(req);
      const reqEnc = requestEncoding(req.headers['content-type']);
      responseEncoding(req.headers.accept, reqEnc);
      const report = decodeProgressReport(bodyOf(req), reqEnc);
      // Committed (WAL, group commit) before the 204 acknowledges it.
      const event = await deps.store.recordCommitted({
        serial: auth.serial,
        source: 'bootstrap',
        type: 'progress',
        data: {
          progressType: report.progressType,
          ...(report.message !== undefined ? { message: report.message } : {}),
          ...(report.sshHostKeys.length ? { sshHostKeys: report.sshHostKeys } : {}),
          ...(report.trustAnchorCerts.length ? { trustAnchorCerts: report.trustAnchorCerts } : {}),
          ...(report.warnings.length ? { warnings: report.warnings } : {}),
          auth: auth.method,
        },
      });
      metrics?.progressReports.inc({ type: report.progressType });
      if (log.isLevelEnabled('info')) log.info({ serial: auth.serial, rpc: 'report-progress', progressType: report.progressType, state: event.stateChange?.to, warnings: report.warnings.length ? report.warnings : undefined }, 'progress reported');
      // RFC 8572 §7.2: 204 No Content. The OPI agent logs 204 as unexpected but carries on.
      return reply.code(204).send();
    } catch (err) {
      recordFailure(auth?.serial ?? deniedSerial(err), 'report-progress', err, req);
      return sendError(req, reply, err, 'report-progress', auth?.serial);
    }
  });

  // RFC 8040 §4: RPCs are invoked with POST only.
  for (const rpc of ['get-bootstrapping-data', 'report-progress']) {
    app.route({
      method: ['GET', 'PUT', 'PATCH', 'DELETE'],
      url: `${RPC_PATH}${rpc}`,
      handler: async (req, reply) => {
        reply.header('allow', 'POST, OPTIONS');
        return sendError(req, reply, new ZtpError('SZTP_METHOD_NOT_ALLOWED', `${req.method} is not allowed on an RPC; use POST`), rpc);
      },
    });
  }

  /** A failed request of a registered device reaches its history through the failure limiter. */
  function recordFailure(serial: string | undefined, rpc: string, err: unknown, req: FastifyRequest): void {
    if (!serial) return;
    const code = isZtpError(err) ? err.code : 'INTERNAL';
    const error = isZtpError(err, 'SZTP_ACCESS_DENIED') ? String(err.details?.reason ?? 'access denied') : isZtpError(err) && err.status < 500 ? err.message : 'internal error';
    guarded(() => failures.failed({ serial, ip: req.ip, rpc, code, error }, { authentication: isZtpError(err, 'SZTP_ACCESS_DENIED'), rateLimited: isZtpError(err, 'SZTP_RATE_LIMITED') }));
  }

  return app;
}

function deniedSerial(err: unknown): string | undefined {
  if (!isZtpError(err, 'SZTP_ACCESS_DENIED') && !isZtpError(err, 'SZTP_RATE_LIMITED')) return undefined;
  const serial = err.details?.serial ?? err.details?.claimedSerial ?? err.details?.basicSerial;
  return typeof serial === 'string' ? serial : undefined;
}

function bodyOf(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function routeRpc(url: string): string {
  if (url.includes('get-bootstrapping-data')) return 'get-bootstrapping-data';
  if (url.includes('report-progress')) return 'report-progress';
  return 'none';
}

function summarizeInput(input: ReturnType<typeof decodeBootstrapRequest>): Record<string, unknown> {
  return {
    ...(input.signedDataPreferred ? { signedDataPreferred: true } : {}),
    ...(input.hwModel ? { hwModel: input.hwModel } : {}),
    ...(input.osName ? { osName: input.osName } : {}),
    ...(input.osVersion ? { osVersion: input.osVersion } : {}),
    ...(input.nonce ? { nonce: input.nonce.toString('base64') } : {}),
    ...(input.warnings.length ? { warnings: input.warnings } : {}),
  };
}
