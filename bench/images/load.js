// Benchmark child: a load generator (keep-alive HTTP/1.1), the same for both servers.
//   node load.js ranges <url> <size> <clients> <seconds> <rangeBytes>   random range reads
//   node load.js full   <url> <clients> <perClient>                      whole-file downloads
// Prints one JSON line: requests, bytes, seconds, p50/p99 latency (ms), errors.
import { Agent, request } from 'node:http';

const [mode, url, ...rest] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: 1024 });
const lat = [];
let bytes = 0;
let errors = 0;

function get(headers) {
  return new Promise((resolve) => {
    const t = performance.now();
    const req = request(url, { agent, headers }, (res) => {
      let n = 0;
      res.on('data', (c) => (n += c.length));
      res.on('end', () => {
        if (res.statusCode !== 200 && res.statusCode !== 206) errors++;
        bytes += n;
        lat.push(performance.now() - t);
        resolve();
      });
      res.on('error', () => (errors++, resolve()));
    });
    req.on('error', () => (errors++, resolve()));
    req.end();
  });
}

const started = performance.now();
if (mode === 'ranges') {
  const [size, clients, seconds, rangeBytes] = rest.map(Number);
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        const start = Math.floor(Math.random() * (size - rangeBytes));
        await get({ range: `bytes=${start}-${start + rangeBytes - 1}` });
      }
    }),
  );
} else {
  const [clients, perClient] = rest.map(Number);
  await Promise.all(Array.from({ length: clients }, async () => { for (let i = 0; i < perClient; i++) await get({}); }));
}
const seconds = (performance.now() - started) / 1000;
lat.sort((a, b) => a - b);
const pct = (p) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? 0;
console.log(JSON.stringify({ requests: lat.length, bytes, seconds, p50: pct(50), p99: pct(99), errors }));
agent.destroy();
