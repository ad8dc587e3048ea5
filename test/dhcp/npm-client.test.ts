// One more independent DHCP client against the responder: the npm `dhcp` package's client (its
// own packet codec, written apart from ours and from ISC/busybox), run in a client network
// namespace this test creates. It behaves unlike dhclient and udhcpc in ways a lab meets: its
// client identifier (option 61) is the MAC as ASCII text rather than type 1 + 6 bytes, it sends
// no broadcast flag, never retries on its own, and its REQUEST names no address (see CLIENT);
// the device is still known by its MAC.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { decodeSztpServerList } from '../../src/dhcp/codec/options.js';
import { Lab, labSkipReason, REPO } from './netns.js';

const skip = labSkipReason();
const RPC = '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';
const labs: Lab[] = [];
afterEach(async () => {
  while (labs.length) await labs.pop()!.cleanup();
});

// The client, as a CommonJS script run with `ip netns exec`: option 143 is registered with the
// package (it has no name for it) so that it asks for it (PRL) and keeps the bytes of the reply.
// The package's REQUEST leaves out the requested address (option 50: it reads its state before
// setting it, next to a TODO) and the server identifier. Mode `as-is` sends it like that and
// reports the reply (a NAK); mode `fixed` sets the offered address first, as dhclient would.
const CLIENT = `
const dhcp = require(process.argv[2]);
const [mac, mode] = [process.argv[3], process.argv[4]];
dhcp.addOption(143, { name: 'SZTP Redirect', type: 'UInt8s', attr: 'sztpRedirect', config: 'sztpRedirect' });
const client = dhcp.createClient({ mac, features: ['sztpRedirect'] });
const seen = [];
let offer;
const done = (result) => {
  clearInterval(retry);
  process.stdout.write(JSON.stringify({ ...result, offer, seen }));
  client.close(() => process.exit(0));
};
// 'message' is emitted before the package handles the reply, so the offer can be noted first.
client.on('message', (m) => {
  seen.push(m.options[53]);
  if (m.options[53] === dhcp.DHCPOFFER) {
    offer = { address: m.yiaddr, sztpRedirect: m.options[143] };
    if (mode === 'fixed') client._state.address = m.yiaddr;
  }
  if (m.options[53] === dhcp.DHCPNAK) done({ nak: true });
});
client.on('error', (e) => process.stderr.write(String(e) + '\\n'));
client.on('bound', (state) => done({ address: state.address, server: state.server, options: state.options }));
// It sends one DISCOVER and waits: resend while no offer came (the link may still be settling).
const retry = setInterval(() => { if (client._state.state === 'SELECTING') client.sendDiscover(); }, 1000);
client.listen(undefined, undefined, () => client.sendDiscover());
setTimeout(() => { process.stderr.write('no reply within 15 s\\n'); process.exit(2); }, 15000).unref();
`;

interface Outcome {
  nak?: boolean;
  address?: string;
  server?: string;
  options?: { sztpRedirect?: number[]; netmask?: string };
  offer?: { address: string; sztpRedirect?: number[] };
  seen: number[];
}

describe.skipIf(skip)('npm dhcp client against the responder (network namespaces)', () => {
  it('gets a lease and option 143 in each profile\'s encoding; the lease is bound to the device found by MAC', async () => {
    const lab = new Lab();
    labs.push(lab);
    const srv = lab.ns('s');
    const cli = lab.ns('c');
    const { a, b } = lab.link(srv, '10.9.7.1/24', cli, '');
    const config = join(lab.dir, 'config.json');
    writeFileSync(config, JSON.stringify({ dataDir: join(lab.dir, 'data'), logLevel: 'debug', bootstrap: { port: 8443 }, dhcp: { interface: a, port: 67, subnets: [{ subnet: '10.9.7.0/24', pools: [{ start: '10.9.7.100', end: '10.9.7.150' }], options: { routers: ['10.9.7.1'] } }] } }));
    const devices = { rfc: { serial: 'NPM-RFC-1', mac: '02:00:5e:70:00:01', profile: 'rfc8572' as const }, opi: { serial: 'NPM-OPI-1', mac: '02:00:5e:70:00:02', profile: 'opi' as const } };
    const db = openDatabase({ file: join(lab.dir, 'data', 'ztp.db') });
    for (const d of Object.values(devices)) new DeviceStore(db).upsert({ serial: d.serial, profile: d.profile, macs: [d.mac] });
    db.close();
    const server = await lab.startServer(srv, config);
    const script = join(lab.dir, 'npm-dhcp-client.cjs');
    writeFileSync(script, CLIENT);

    // Run asynchronously: the server's log pipe keeps draining while the client works.
    const lease = async (mac: string, mode: 'as-is' | 'fixed'): Promise<Outcome> => {
      lab.run(cli, 'ip', ['link', 'set', b, 'down']);
      lab.run(cli, 'ip', ['link', 'set', b, 'address', mac]);
      lab.run(cli, 'ip', ['link', 'set', b, 'up']);
      // An ordinary UDP socket (not a raw one like dhclient's): the kernel needs a route for
      // 255.255.255.255 on an interface without an address. The DISCOVER then leaves from 0.0.0.0.
      lab.run(cli, 'ip', ['route', 'replace', '255.255.255.255/32', 'dev', b]);
      const client = lab.spawn(cli, process.execPath, [script, join(REPO, 'node_modules', 'dhcp'), mac, mode]);
      const code = await client.exited;
      expect(code, `npm dhcp client: ${client.stdout()}${client.stderr()}\nserver: ${server.stderr().slice(-3000)}`).toBe(0);
      return JSON.parse(client.stdout()) as Outcome;
    };

    // As the package sends it: the offer carries 143; the REQUEST without an address is refused
    // with a NAK and a reason in the log, the server keeps running and binds nothing.
    const asIs = await lease(devices.rfc.mac, 'as-is');
    // OFFER (one per DISCOVER resent on a slow machine), then NAK
    expect(asIs.seen.at(-1)).toBe(6);
    expect(new Set(asIs.seen.slice(0, -1))).toEqual(new Set([2]));
    expect(decodeSztpServerList(Buffer.from(asIs.offer!.sztpRedirect!))).toEqual(['https://ztp.lab.example:8443']);
    await lab.until(() => /"type":"REQUEST".*"msg":"DHCP: NAK \(REQUEST names no address\)"/.test(server.stderr()), 5000, 'NAK log line');

    const rfc = await lease(devices.rfc.mac, 'fixed');
    expect(rfc.seen.at(-1)).toBe(5); // OFFER(s), then ACK
    expect(new Set(rfc.seen.slice(0, -1))).toEqual(new Set([2]));
    expect(rfc.address).toMatch(/^10\.9\.7\.1\d\d$/);
    expect(rfc.server).toBe('10.9.7.1');
    expect(rfc.options!.netmask).toBe('255.255.255.0');
    expect(decodeSztpServerList(Buffer.from(rfc.options!.sztpRedirect!))).toEqual(['https://ztp.lab.example:8443']);

    const opi = await lease(devices.opi.mac, 'fixed');
    expect(opi.address).toMatch(/^10\.9\.7\.1\d\d$/);
    expect(opi.address).not.toBe(rfc.address);
    expect(Buffer.from(opi.options!.sztpRedirect!).toString('utf8')).toBe(`https://ztp.lab.example:8443${RPC}`);
    expect(server.child.exitCode).toBeNull();

    await lab.stop(server);
    const check = openDatabase({ file: join(lab.dir, 'data', 'ztp.db') });
    const rows = check.prepare('SELECT address, state, serial FROM dhcp_leases ORDER BY serial').all() as { address: string; state: string; serial: string | null }[];
    check.close();
    expect(rows).toEqual([
      { address: opi.address, state: 'bound', serial: devices.opi.serial },
      { address: rfc.address, state: 'bound', serial: devices.rfc.serial },
    ]);
  });
});
