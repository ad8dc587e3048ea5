#!/usr/bin/env node
// DHCP load for bench/dhcp/shared-loop.js, run inside the client namespace: RATE packets/s for
// SECONDS, mixed 40% DHCPv4 DISCOVER (20,000 MACs), 10% DHCPv4 garbage, 40% DHCPv6 SOLICIT
// (20,000 DUIDs, one IA_NA), 10% DHCPv6 garbage; counts the OFFERs and ADVERTISEs that come
// back. Prints one JSON line at the end.
//   node flood.js IFACE SERVER_V4 RATE SECONDS
import { createSocket } from 'node:dgram';

const [iface, server4, rateText, secondsText] = process.argv.slice(2);
const RATE = Number(rateText);
const SECONDS = Number(secondsText);
const CLIENTS = 20000;

function discover(i) {
  const b = Buffer.alloc(300);
  b[0] = 1; b[1] = 1; b[2] = 6;
  b.writeUInt32BE((Math.random() * 0xffffffff) >>> 0, 4);
  b.writeUInt16BE(0x8000, 10); // broadcast flag, as firmware sets it
  Buffer.from([0x02, 0x5e, (i >> 16) & 255, (i >> 8) & 255, i & 255, 0x01]).copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  Buffer.from([53, 1, 1, 55, 5, 1, 3, 6, 15, 143, 255]).copy(b, 240);
  return b;
}

function solicit(i) {
  const duid = Buffer.from([0, 3, 0, 1, 0x02, 0x5f, (i >> 16) & 255, (i >> 8) & 255, i & 255, 0x01]);
  const opt = (code, data) => Buffer.concat([Buffer.from([code >> 8, code & 255, data.length >> 8, data.length & 255]), data]);
  const ia = Buffer.alloc(12);
  ia.writeUInt32BE(i, 0);
  const xid = (Math.random() * 0xffffff) >>> 0;
  return Buffer.concat([Buffer.from([1, (xid >> 16) & 255, (xid >> 8) & 255, xid & 255]), opt(1, duid), opt(3, ia), opt(8, Buffer.from([0, 0])), opt(6, Buffer.from([0, 23, 0, 136]))]);
}

const garbage = () => {
  const b = Buffer.alloc(1 + Math.floor(Math.random() * 400));
  for (let i = 0; i < b.length; i++) b[i] = (Math.random() * 256) | 0;
  if (Math.random() < 0.5 && b.length > 240) b.writeUInt32BE(0x63825363, 236); // past the cookie check
  return b;
};

const v4 = createSocket({ type: 'udp4', reuseAddr: true });
const v6 = createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true });
let offers = 0;
let advertises = 0;
v4.on('message', (m) => { if (m[0] === 2) offers++; });
v6.on('message', (m) => { if (m[0] === 2) advertises++; });
await new Promise((r) => v4.bind(68, '0.0.0.0', r));
await new Promise((r) => v6.bind(546, '::', r));
v4.setBroadcast(true);
v6.setMulticastInterface(`::%${iface}`);

const sent = { discover: 0, garbage4: 0, solicit: 0, garbage6: 0 };
let seq = 0;
const t0 = Date.now();
await new Promise((resolve) => {
  const tick = setInterval(() => {
    const elapsed = (Date.now() - t0) / 1000;
    if (elapsed >= SECONDS) {
      clearInterval(tick);
      resolve();
      return;
    }
    const due = Math.floor(elapsed * RATE) - (sent.discover + sent.garbage4 + sent.solicit + sent.garbage6);
    for (let k = 0; k < due; k++) {
      const n = seq++;
      const kind = n % 10;
      const client = (n * 7919) % CLIENTS;
      if (kind < 4) { v4.send(discover(client), 67, server4); sent.discover++; }
      else if (kind === 4) { v4.send(garbage(), 67, server4); sent.garbage4++; }
      else if (kind < 9) { v6.send(solicit(client), 547, `ff02::1:2%${iface}`); sent.solicit++; }
      else { v6.send(garbage(), 547, `ff02::1:2%${iface}`); sent.garbage6++; }
    }
  }, 5);
});
const seconds = (Date.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, 500)); // late replies
process.stdout.write(JSON.stringify({ seconds, sent, offers, advertises }) + '\n');
v4.close();
v6.close();
