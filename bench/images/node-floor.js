// The image bench's third peer (issue 12): the least a Node server does to serve a file, so the
// gap between `ztp serve` and nginx can be split into "Node's" and "ours". node:http and
// node:https (same certificate as nginx), one file per path, a single-range GET answered from
// fs.createReadStream piped into the response: what Node's own static servers (send,
// @fastify/static) do, without their checks, without fastify, SQLite, logging or the catalogue.
//   node bench/images/node-floor.js <httpPort> <httpsPort> <cert.pem> <key.pem> <name=path>...
// Sends "ready" on stdout once both listen.
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';

const [httpPort, httpsPort, certFile, keyFile, ...files] = process.argv.slice(2);
const byPath = new Map(files.map((f) => {
  const eq = f.indexOf('=');
  const path = f.slice(eq + 1);
  return [`/images/${f.slice(0, eq)}`, { path, size: statSync(path).size }];
}));
// Node's default stream chunk (64 KiB) would cost the floor more calls than ours makes; 1 MiB
// is what our plain-HTTP pump reads, so the floor is not handicapped by its buffer size.
const CHUNK = 1024 * 1024;

function handle(req, res) {
  const file = byPath.get(req.url);
  if (!file) {
    res.writeHead(404).end();
    return;
  }
  let start = 0;
  let end = file.size - 1;
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (m) {
    start = Number(m[1]);
    end = m[2] ? Math.min(Number(m[2]), file.size - 1) : file.size - 1;
    if (start > end) {
      res.writeHead(416, { 'content-range': `bytes */${file.size}` }).end();
      return;
    }
    res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${file.size}`, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' });
  } else {
    res.writeHead(200, { 'content-length': file.size, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' });
  }
  const stream = createReadStream(file.path, { start, end, highWaterMark: CHUNK });
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.3' };
const servers = [createHttp({ keepAliveTimeout: 60_000 }, handle), createHttps({ ...tls, keepAliveTimeout: 60_000 }, handle)];
await Promise.all(servers.map((s, i) => new Promise((r) => s.listen(Number(i ? httpsPort : httpPort), '127.0.0.1', r))));
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
