#!/usr/bin/env node
// Latency probe for bench/dhcp/shared-loop.js, a separate process: RATE requests/s to each of
// the admin API (GET /api/v1/devices, bearer token) and the bootstrap server (POST
// get-bootstrapping-data, HTTP Basic, TLS with keep-alive) for SECONDS; requests are started on
// a fixed schedule (not one after another), so a stalled server shows up as latency.
// Prints one JSON line: per target, the latencies in ms.
//   node prober.js API_URL TOKEN BOOTSTRAP_URL SERIAL PASSWORD RATE SECONDS
import http from 'node:http';
import https from 'node:https';

const [apiUrl, token, bootstrapUrl, serial, password, rateText, secondsText] = process.argv.slice(2);
const RATE = Number(rateText);
const SECONDS = Number(secondsText);
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });
const RPC = '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';
const body = JSON.stringify({ 'ietf-sztp-bootstrap-server:input': {} });

function timed(fn) {
  return new Promise((resolve) => {
    const t = process.hrtime.bigint();
    const req = fn((res) => {
      res.resume();
      res.on('end', () => resolve({ ms: Number(process.hrtime.bigint() - t) / 1e6, status: res.statusCode }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ ms: Number(process.hrtime.bigint() - t) / 1e6, status: 0, err: err.message }));
  });
}

const api = () => timed((cb) => http.get(`${apiUrl}/api/v1/devices`, { agent: httpAgent, headers: { authorization: `Bearer ${token}` } }, cb));
const bootstrap = () =>
  timed((cb) => {
    const req = https.request(`${bootstrapUrl}${RPC}`, { method: 'POST', agent: httpsAgent, headers: { 'content-type': 'application/yang-data+json', 'content-length': Buffer.byteLength(body), authorization: `Basic ${Buffer.from(`${serial}:${password}`).toString('base64')}` } }, cb);
    req.end(body);
    return req;
  });

// BOOTSTRAP_URL '-' probes the first target only (the control server).
const both = bootstrapUrl !== '-';
// Warm connections (TLS handshake, first scrypt check) before measuring.
for (let i = 0; i < 20; i++) await Promise.all([api(), both ? bootstrap() : undefined]);
const results = { api: [], bootstrap: [] };
const pending = [];
const t0 = Date.now();
await new Promise((resolve) => {
  let n = 0;
  const tick = setInterval(() => {
    if (Date.now() - t0 >= SECONDS * 1000) {
      clearInterval(tick);
      resolve();
      return;
    }
    const due = Math.floor(((Date.now() - t0) / 1000) * RATE);
    for (; n < due; n++) {
      pending.push(api().then((r) => results.api.push(r)));
      if (both) pending.push(bootstrap().then((r) => results.bootstrap.push(r)));
    }
  }, 5);
});
await Promise.all(pending);
process.stdout.write(JSON.stringify(results) + '\n');
process.exit(0);
