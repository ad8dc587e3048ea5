// One load-generator process of the bootstrap benchmark. run.js forks several, each holding a
// share of the devices; a device is one keep-alive TLS connection with its own IDevID (mTLS),
// sending one request at a time as an sZTP agent does. The request bytes are built once and the
// response is read with a minimal HTTP/1.1 parser (status line, content-length), so a request
// costs this process far less than the server: the node:https client of the old bench cost
// about as much CPU as the bare route it measured and saturated its core first.
//
// IPC from run.js: {cmd: 'run', port, path, bodies: [..], identities: [{certPem, keyPem}], ca,
// seconds, expect} → replies {n, errors, bytes, latencies (ms), cpuMs}.
import { connect } from 'node:tls';

const TIMEOUT_MS = 30_000;

function requestBytes(path, body) {
  return Buffer.from(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/yang-data+json\r\nAccept: application/yang-data+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/** A device: one TLS connection; call() sends the request and resolves with status and body size. */
function device(port, identity, ca) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', cert: identity.certPem, key: identity.keyPem, ca });
    socket.setNoDelay(true);
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('bench: socket timeout')));
    let pending;
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!pending) return;
      const head = buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const header = buf.toString('latin1', 0, head);
      const status = Number(header.slice(9, 12));
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(header);
      const length = m ? Number(m[1]) : 0;
      if (buf.length < head + 4 + length) return;
      buf = buf.subarray(head + 4 + length);
      const p = pending;
      pending = undefined;
      p.resolve({ status, size: length });
    });
    socket.on('error', (err) => (pending ? pending.reject(err) : reject(err)));
    socket.on('close', () => pending?.reject(new Error('bench: connection closed')));
    socket.once('secureConnect', () =>
      resolve({
        call: (bytes) => new Promise((res, rej) => {
          pending = { resolve: res, reject: rej };
          socket.write(bytes);
        }),
        close: () => socket.destroy(),
      }),
    );
  });
}

process.on('message', async (msg) => {
  if (msg.cmd !== 'run') return;
  const { port, path, bodies, identities, ca, seconds, expect } = msg;
  const requests = bodies.map((b) => requestBytes(path, b));
  const devices = await Promise.all(identities.map((id) => device(port, id, ca)));
  // Warm-up (handshakes done above; caches, JIT): three calls per device, not measured.
  for (let k = 0; k < 3; k++) await Promise.all(devices.map((d, i) => d.call(requests[i % requests.length])));
  process.send({ warm: true });
  await new Promise((r) => process.once('message', (m) => m.cmd === 'go' && r()));
  const latencies = [];
  let errors = 0;
  let bytes = 0;
  const cpu0 = process.cpuUsage();
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(devices.map(async (d, i) => {
    const req = requests[i % requests.length];
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const res = await d.call(req);
        latencies.push(performance.now() - t0);
        bytes = res.size;
        if (res.status !== expect) errors++;
      } catch {
        errors++;
        return;
      }
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  for (const d of devices) d.close();
  process.send({ n: latencies.length, errors, bytes, latencies, cpuMs: (cpu.user + cpu.system) / 1000 });
});
