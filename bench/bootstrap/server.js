// Server side of the bootstrap benchmark, run as its own process so its RSS is its own.
//   node bench/bootstrap/server.js suite <dataDir> <port>     the real bootstrap app (dist/)
//   node bench/bootstrap/server.js bare <dataDir> <port> <n>  a bare fastify HTTPS route, n-byte body
// Prints "ready <port>" when listening; on "stats" over IPC replies with peak RSS.
import Fastify from 'fastify';
import { join } from 'node:path';
import { buildBootstrapApp } from '../../dist/bootstrap/app.js';
import { DeviceAuthenticator } from '../../dist/bootstrap/auth.js';
import { imageResolver } from '../../dist/bootstrap/images.js';
import { BootstrapResponder } from '../../dist/bootstrap/responder.js';
import { validateConfig } from '../../dist/config.js';
import { openDatabase } from '../../dist/db/database.js';
import { DeviceStore } from '../../dist/devices/store.js';
import { createLogger } from '../../dist/log.js';
import { ensureLabPki } from '../../dist/pki/lab.js';

const [mode, dataDir, portArg, sizeArg] = process.argv.slice(2);
const config = validateConfig({ dataDir });
const { pki } = await ensureLabPki(dataDir, config.pki, 'localhost');
const https = { cert: pki.tls.certPem, key: pki.tls.keyPem, requestCert: true, rejectUnauthorized: false, ca: pki.deviceTrustPem };

let app;
if (mode === 'bare') {
  const body = 'x'.repeat(Number(sizeArg));
  app = Fastify({ https, logger: false });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data', async (_req, reply) => reply.type('application/yang-data+json').send(body));
} else {
  const db = openDatabase({ file: join(dataDir, 'ztp.db') });
  const store = new DeviceStore(db);
  const responder = new BootstrapResponder({ pki, images: imageResolver(() => ({ url: 'https://images.lab/dpu-os.img', sha256: 'ab'.repeat(32), osName: 'DPU-OS', osVersion: '1' })), encrypt: false });
  app = buildBootstrapApp({
    store,
    responder,
    authenticator: new DeviceAuthenticator(store, { mode: 'cert-or-basic', serialFrom: 'serialNumber' }),
    // Warnings and errors only: a log line per request would measure the terminal.
    log: createLogger('warn'),
    maxBodyBytes: config.bootstrap.maxBodyBytes,
    https,
  });
}

let peakRss = 0;
const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
setInterval(sample, 100).unref();
process.on('message', (msg) => {
  sample();
  if (msg === 'stats') process.send?.({ peakRss });
  if (msg === 'reset') peakRss = 0;
});
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
await app.listen({ host: '127.0.0.1', port: Number(portArg) });
sample();
process.send?.({ ready: true });
