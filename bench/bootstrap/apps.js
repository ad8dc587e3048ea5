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

/**
 * A bare fastify route at `path` answering `body` (a 204 when undefined), raw bytes in as ours
 * takes them. `record(req, reply)`, when given, is awaited before the reply (the floors below); a
 * reply it returns is sent instead. Without it the route is exactly the bare peer.
 */
export function bareApp({ path, body, https, record }) {
  const app = Fastify({ logger: false, ...(https ? { https } : {}) });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, b, done) => done(null, b));
  const send = (reply) => (body === undefined ? reply.code(204).send() : reply.type('application/yang-data+json').send(body));
  app.post(path, record ? async (req, reply) => (await record(req, reply)) ?? send(reply) : async (_req, reply) => send(reply));
  return app;
}

/** The serial number of the verified IDevID on a connection, read once per connection (null: none). */
function connectionSerials() {
  const serials = new WeakMap();
  return (socket) => {
    let serial = serials.get(socket);
    if (serial === undefined) serials.set(socket, (serial = /^serialNumber=(.*)$/m.exec(socket.getPeerX509Certificate?.()?.subject ?? '')?.[1] ?? null));
    return serial;
  };
}

const requestEvent = (req) => ({ rpc: 'get-bootstrapping-data', result: 'ok', auth: 'cert', ip: req.ip });

/**
 * The floor of what the suite must do per request (issue 12): the bare route, plus the device's
 * serial from its verified IDevID (looked up once per connection) and one history row committed
 * through the suite's own store before the reply, as the brief requires of every sZTP request.
 * Nothing else of ours: no RESTCONF codec, no reply cache, no failure limiter, no metrics.
 */
export function bareCommittedApp({ path, body, https, store }) {
  const serialOf = connectionSerials();
  return bareApp({
    path, body, https,
    record: async (req, reply) => {
      const serial = serialOf(req.raw.socket);
      if (!serial || !store.cached(serial)) return reply.code(403).send();
      await store.recordCommitted({ serial, source: 'bootstrap', type: 'request', data: requestEvent(req) });
    },
  });
}

/**
 * The lowest floor: the bare route plus the cheapest durable row SQLite can keep (a table with no
 * index, no trigger, no state; WAL, synchronous NORMAL, the same group commit per event-loop
 * turn as the suite's store). Any design that records each request before replying pays this.
 */
export function bareRowApp({ path, body, https, file }) {
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
  const serialOf = connectionSerials();
  const app = bareApp({
    path, body, https,
    record: (req) => new Promise((resolve, reject) => {
      pending.push({ serial: serialOf(req.raw.socket), data: JSON.stringify(requestEvent(req)), resolve: () => resolve(undefined), reject });
      if (pending.length === 1) setImmediate(flush);
    }),
  });
  app.addHook('onClose', async () => db.close());
  return app;
}
