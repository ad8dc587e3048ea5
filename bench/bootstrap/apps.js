// The apps the bootstrap benches measure, built the same way by the TLS bench's server
// (server.js) and the in-process one (inject.js): the suite's bootstrap app from a compiled
// build, the bare fastify route it is compared with, and the two floors between them (issue 12:
// the bare route plus the suite's history row, and plus the cheapest committed row).
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { join } from 'node:path';
import { setImmediate } from 'node:timers';

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

/**
 * The lowest floor: the bare route plus the cheapest durable row SQLite can keep (a table with no
 * index, no trigger, no state; WAL, synchronous NORMAL, the same group commit per event-loop
 * turn as the suite's store). Any design that records each request before replying pays this.
 */
export function bareRowApp({ path, body, https, file }) {
  const app = bareApp({ path: '/unused', body, https });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, at TEXT NOT NULL, serial TEXT, data TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO requests (at, serial, data) VALUES (?, ?, ?)');
  const commit = db.transaction((rows, at) => { for (const r of rows) insert.run(at, r.serial, r.data); });
  let pending = [];
  const flush = () => {
    const batch = pending;
    pending = [];
    try {
      commit(batch, new Date().toISOString());
      for (const p of batch) p.resolve();
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  };
  const serials = new WeakMap();
  app.post(path, async (req, reply) => {
    let serial = serials.get(req.raw.socket);
    if (serial === undefined) serials.set(req.raw.socket, (serial = /^serialNumber=(.*)$/m.exec(req.raw.socket.getPeerX509Certificate?.()?.subject ?? '')?.[1] ?? null));
    await new Promise((resolve, reject) => {
      pending.push({ serial, data: JSON.stringify({ rpc: 'get-bootstrapping-data', result: 'ok', auth: 'cert', ip: req.ip }), resolve, reject });
      if (pending.length === 1) setImmediate(flush);
    });
    return reply.type('application/yang-data+json').send(body);
  });
  app.addHook('onClose', async () => db.close());
  return app;
}
