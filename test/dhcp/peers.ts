// Real DHCP clients driven from tests: busybox udhcpc and ISC dhclient, run to completion inside
// a namespace of a Lab. Both leave nothing running: udhcpc -q exits after binding, dhclient's
// daemon is stopped by its PID file.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './netns.js';

/** udhcpc -q on `iface`; resolves the environment its hook saw on `bound` (ip, serverid, opt143…). */
export function udhcpcLease(lab: Lab, ns: string, iface: string, tag: string, extra: string[] = []): Record<string, string> {
  const hook = join(lab.dir, `udhcpc-${tag}.sh`);
  const out = join(lab.dir, `udhcpc-${tag}.env`);
  writeFileSync(hook, `#!/bin/sh\nif [ "$1" = bound ]; then env > ${out}; fi\nexit 0\n`);
  chmodSync(hook, 0o755);
  lab.run(ns, 'udhcpc', ['-i', iface, '-f', '-q', '-n', '-t', '4', '-T', '2', '-O', '143', ...extra, '-s', hook], 30_000);
  return Object.fromEntries(
    readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** dhclient -1 with a config text; returns the lease file. */
export function dhclientLease(lab: Lab, ns: string, iface: string, conf: string, tag: string, extra: string[] = []): string {
  const cf = join(lab.dir, `dhclient-${tag}.conf`);
  const lf = join(lab.dir, `dhclient-${tag}.leases`);
  const pf = join(lab.dir, `dhclient-${tag}.pid`);
  writeFileSync(cf, conf);
  try {
    lab.run(ns, 'dhclient', ['-1', '-v', ...extra, '-cf', cf, '-lf', lf, '-pf', pf, '-sf', '/bin/true', iface], 40_000);
  } catch (err) {
    throw new Error(`dhclient failed: ${(err as { stderr?: string }).stderr ?? String(err)}`);
  } finally {
    // dhclient stays as a daemon after binding: stop exactly that PID.
    if (existsSync(pf)) {
      try {
        process.kill(Number(readFileSync(pf, 'utf8').trim()), 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  }
  return readFileSync(lf, 'utf8');
}

/**
 * An independent minimal DHCP client (hand-built bytes, no project code), as OVMF does UEFI
 * HTTP boot, in a few lines of node (raw DHCP over dgram, run in the client's
 * namespace as `node script IFACE IP`): DISCOVER with HTTPClient vendor class, arch 16 and a PRL
 * asking for 143, then INFORM from IP; prints every reply as JSON ({phase, hex}).
 */
export const UEFI_HTTP_CLIENT_SCRIPT = String.raw`
const dgram = require('node:dgram');
const [iface, ip] = process.argv.slice(2);
const mac = require('node:os').networkInterfaces()[iface].find((a) => a.mac).mac.split(':').map((h) => parseInt(h, 16));
function packet(type, ciaddr) {
  const b = Buffer.alloc(240);
  b[0] = 1; b[1] = 1; b[2] = 6; b.writeUInt32BE(0x1234abcd + type, 4);
  if (type === 1) b.writeUInt16BE(0x8000, 10);
  if (ciaddr) Buffer.from(ciaddr.split('.').map(Number)).copy(b, 12);
  Buffer.from(mac).copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  const vc = Buffer.from('HTTPClient:Arch:00016:UNDI:003001');
  const opts = Buffer.concat([
    Buffer.from([53, 1, type]),
    Buffer.from([55, 6, 1, 3, 6, 60, 67, 143]),
    Buffer.from([93, 2, 0x00, 0x10]),
    Buffer.from([60, vc.length]), vc,
    Buffer.from([255]),
  ]);
  return Buffer.concat([b, opts]);
}
const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const replies = [];
let phase = 'discover';
sock.on('message', (m) => replies.push({ phase, hex: m.toString('hex') }));
sock.bind(68, () => {
  sock.setBroadcast(true);
  sock.send(packet(1), 67, ip.replace(/\.\d+$/, '.255'));
  setTimeout(() => {
    phase = 'inform';
    sock.send(packet(8, ip), 67, ip.replace(/\.\d+$/, '.255'));
    setTimeout(() => { process.stdout.write(JSON.stringify(replies)); sock.close(); }, 2000);
  }, 2000);
});
`;
