// The two apps the bootstrap benches measure, built the same way by the TLS bench's server
// (server.js) and the in-process one (inject.js): the suite's bootstrap app from a compiled
// build, and the bare fastify route it is compared with.
import Fastify from 'fastify';
import { join } from 'node:path';

/** Every bench device boots the same catalogue image. */
const benchImage = () => ({ url: 'https://images.lab/dpu-os.img', sha256: 'ab'.repeat(32), osName: 'DPU-OS', osVersion: '1' });

/** The bootstrap app of `build` as `ztp serve` composes it (device auth by certificate or Basic, log at warn). */
export async function suiteBootstrapApp(build, { store, pki, maxBodyBytes, https, credentialsOf }) {
  const load = (m) => import(join(build, m));
  const { buildBootstrapApp } = await load('bootstrap/app.js');
  const { DeviceAuthenticator } = await load('bootstrap/auth.js');
  const { imageResolver } = await load('bootstrap/images.js');
  const { BootstrapResponder } = await load('bootstrap/responder.js');
  const { createLogger } = await load('log.js');
  return buildBootstrapApp({
    store,
    responder: new BootstrapResponder({ pki, images: imageResolver(benchImage), encrypt: false }),
    authenticator: new DeviceAuthenticator(store, { mode: 'cert-or-basic', serialFrom: 'serialNumber' }),
    // Warnings and errors only: a log line per request would measure the terminal.
    log: createLogger('warn'),
    maxBodyBytes,
    ...(https ? { https } : {}),
    ...(credentialsOf ? { credentialsOf } : {}),
  });
}

/** A bare fastify route at `path` answering `body` (a 204 when undefined), raw bytes in as ours takes them. */
export function bareApp({ path, body, https }) {
  const app = Fastify({ logger: false, ...(https ? { https } : {}) });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, b, done) => done(null, b));
  app.post(path, async (_req, reply) => (body === undefined ? reply.code(204).send() : reply.type('application/yang-data+json').send(body)));
  return app;
}

/**
 * The floor of what the suite must do per request (issue 12): the bare route, plus the device's
 * serial from its verified IDevID (looked up once per connection) and one history row committed
 * through the suite's own store before the reply, as the brief requires of every sZTP request.
 * Nothing else of ours: no RESTCONF codec, no reply cache, no failure limiter, no metrics.
 */
export function bareCommittedApp({ path, body, https, store }) {
  const app = bareApp({ path: '/unused', body, https });
  const serials = new WeakMap();
  const serialOf = (socket) => {
    let serial = serials.get(socket);
    if (serial === undefined) {
      const subject = socket.getPeerX509Certificate?.()?.subject ?? '';
      serial = /^serialNumber=(.*)$/m.exec(subject)?.[1] ?? null;
      serials.set(socket, serial);
    }
    return serial;
  };
  app.post(path, async (req, reply) => {
    const serial = serialOf(req.raw.socket);
    if (!serial || !store.cached(serial)) return reply.code(403).send();
    await store.recordCommitted({ serial, source: 'bootstrap', type: 'request', data: { rpc: 'get-bootstrapping-data', result: 'ok', auth: 'cert', ip: req.ip } });
    return reply.type('application/yang-data+json').send(body);
  });
  return app;
}
