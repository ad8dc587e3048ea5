// Issue 8, "Replies that reach the client": an unconfigured client (busybox udhcpc, no address)
// on a provisioning segment with NO default route gets its OFFER/ACK at 255.255.255.255:68, out
// of the DHCP interface, also once a default route points at another interface. Witnesses are
// independent receivers: a socket bound to 255.255.255.255:68 on the client segment (the kernel
// only hands it limited broadcasts) and a wildcard :68 socket on the management segment, which
// must hear nothing.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Lab, labSkipReason, type Proc } from './netns.js';
import { udhcpcLease } from './peers.js';

const skip = labSkipReason('udhcpc');
const labs: Lab[] = [];
afterEach(async () => {
  while (labs.length) await labs.pop()!.cleanup();
});

// Prints one JSON line per DHCP reply received: message type (option 53), xid, source.
const RECEIVER = String.raw`
const dgram = require('node:dgram');
const [address] = process.argv.slice(2);
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (m, r) => {
  let type = 0;
  for (let i = 240; i + 1 < m.length && m[i] !== 255; ) {
    if (m[i] === 0) { i++; continue; }
    if (m[i] === 53) type = m[i + 2];
    i += 2 + m[i + 1];
  }
  process.stdout.write(JSON.stringify({ op: m[0], type, xid: m.readUInt32BE(4), from: r.address + ':' + r.port }) + '\n');
});
s.bind(68, address, () => process.stdout.write('{"listening":true}\n'));
setTimeout(() => process.exit(0), 60000).unref();
`;

function replies(p: Proc): { op: number; type: number; xid: number; from: string }[] {
  return p
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{"op"'))
    .map((l) => JSON.parse(l) as { op: number; type: number; xid: number; from: string });
}

describe.skipIf(skip)('DHCP replies reach an unconfigured client (network namespaces)', () => {
  it('OFFER and ACK go to 255.255.255.255:68 out of the DHCP interface with no default route, and still with a default route elsewhere', async () => {
    const lab = new Lab();
    labs.push(lab);
    const srv = lab.ns('s');
    const cli = lab.ns('c');
    const mgmt = lab.ns('m');
    const dhcpLink = lab.link(srv, '10.9.4.1/24', cli, '');
    lab.link(srv, '10.8.4.1/24', mgmt, '10.8.4.254/24', 'm');
    const receiverJs = join(lab.dir, 'receiver.cjs');
    writeFileSync(receiverJs, RECEIVER);
    const onSegment = lab.spawn(cli, process.execPath, [receiverJs, '255.255.255.255']);
    const elsewhere = lab.spawn(mgmt, process.execPath, [receiverJs, '0.0.0.0']);
    await lab.until(() => onSegment.stdout().includes('listening') && elsewhere.stdout().includes('listening'), 10_000, 'receivers');
    const config = join(lab.dir, 'config.json');
    writeFileSync(config, JSON.stringify({ dataDir: join(lab.dir, 'data'), logLevel: 'info', dhcp: { interface: dhcpLink.a, subnets: [{ subnet: '10.9.4.0/24', pools: [{ start: '10.9.4.100', end: '10.9.4.150' }] }] } }));
    const server = await lab.startServer(srv, config);
    expect(lab.run(srv, 'ip', ['route', 'show', 'default']).trim()).toBe('');

    const first = udhcpcLease(lab, cli, dhcpLink.b, 'nodefault');
    expect(first.ip).toMatch(/^10\.9\.4\.1\d\d$/);
    await lab.until(() => replies(onSegment).filter((r) => r.type === 5).length >= 1, 5000, 'ACK at the limited broadcast');
    expect(replies(onSegment).map((r) => r.type)).toEqual(expect.arrayContaining([2, 5]));
    expect(replies(onSegment).every((r) => r.op === 2 && r.from === '10.9.4.1:67')).toBe(true);

    // A default route through the management interface must not pull the broadcast there.
    lab.run(srv, 'ip', ['route', 'add', 'default', 'via', '10.8.4.254']);
    lab.run(cli, 'ip', ['addr', 'flush', 'dev', dhcpLink.b]);
    lab.run(cli, 'ip', ['link', 'set', dhcpLink.b, 'down']);
    lab.run(cli, 'ip', ['link', 'set', dhcpLink.b, 'address', '02:00:5e:10:04:02']);
    lab.run(cli, 'ip', ['link', 'set', dhcpLink.b, 'up']);
    const before = replies(onSegment).length;
    const second = udhcpcLease(lab, cli, dhcpLink.b, 'withdefault');
    expect(second.ip).toMatch(/^10\.9\.4\.1\d\d$/);
    expect(second.ip).not.toBe(first.ip);
    await lab.until(() => replies(onSegment).length >= before + 2, 5000, 'second exchange at the limited broadcast');
    await new Promise((r) => setTimeout(r, 300));
    expect(replies(elsewhere)).toEqual([]);
    expect(server.stderr()).not.toContain('send failed');
  });
});
