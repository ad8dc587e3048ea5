// Issue 3: the DHCP responder against real peers in network namespaces this test creates.
// The server under test is the compiled standalone runner in its own namespace (see netns.ts
// for why); each scenario gets fresh namespaces and is torn down on every path.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { decodeSztpServerList } from '../../src/dhcp/codec/options.js';
import { decodeV4, getOption, Opt } from '../../src/dhcp/codec/v4.js';
import { buildStandalone, Lab, labSkipReason, type Proc } from './netns.js';
import { dhclientLease, udhcpcLease, UEFI_HTTP_CLIENT_SCRIPT } from './peers.js';

const skip = labSkipReason('dhclient', 'udhcpc', 'dnsmasq', 'perfdhcp');
// The standalone responder is compiled once per file (tsc: tens of seconds on a loaded machine),
// outside the first test's time budget.
beforeAll(() => {
  if (!skip) buildStandalone();
}, 240_000);
const RPC = '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';
const labs: Lab[] = [];
afterEach(async () => {
  while (labs.length) await labs.pop()!.cleanup();
});

function newLab(): Lab {
  const lab = new Lab();
  labs.push(lab);
  return lab;
}

function writeConfig(lab: Lab, dhcp: Record<string, unknown>, name = 'config.json'): string {
  const file = join(lab.dir, name);
  writeFileSync(file, JSON.stringify({ dataDir: join(lab.dir, 'data'), logLevel: 'debug', bootstrap: { port: 8443 }, dhcp }));
  return file;
}

function register(lab: Lab, serial: string, mac: string, profile: 'rfc8572' | 'opi'): void {
  const db = openDatabase({ file: join(lab.dir, 'data', 'ztp.db') });
  new DeviceStore(db).upsert({ serial, profile, macs: [mac] });
  db.close();
}

function leasesInDb(lab: Lab): { address: string; client_key: string; state: string; serial: string | null }[] {
  const db = openDatabase({ file: join(lab.dir, 'data', 'ztp.db') });
  const rows = db.prepare('SELECT address, client_key, state, serial FROM dhcp_leases ORDER BY address').all() as { address: string; client_key: string; state: string; serial: string | null }[];
  db.close();
  return rows;
}

/** Synchronous peer runs block this event loop: give the server's stderr pipe a moment to drain. */
async function waitLog(lab: Lab, server: Proc, re: RegExp): Promise<void> {
  await lab.until(() => re.test(server.stderr()), 5000, `server log ${re}`).catch(() => {
    throw new Error(`server log does not match ${re}:\n${server.stderr()}`);
  });
}

const SUBNET = { subnet: '10.9.0.0/24', pools: [{ start: '10.9.0.100', end: '10.9.0.150' }], options: { routers: ['10.9.0.1'] } };

/** A server namespace (10.9.0.1/24 on its veth) and a client namespace with a fixed MAC. */
async function serverAndClient(lab: Lab, dhcp: Record<string, unknown>, clientMac: string) {
  const srv = lab.ns('s');
  const cli = lab.ns('c');
  const { a, b } = lab.link(srv, '10.9.0.1/24', cli, '');
  lab.run(cli, 'ip', ['link', 'set', b, 'down']);
  lab.run(cli, 'ip', ['link', 'set', b, 'address', clientMac]);
  lab.run(cli, 'ip', ['link', 'set', b, 'up']);
  const config = writeConfig(lab, { interface: a, port: 67, ...dhcp });
  return { srv, cli, srvIf: a, cliIf: b, config };
}

const dhclient = dhclientLease;
const udhcpc = (lab: Lab, ns: string, iface: string, tag: string) => udhcpcLease(lab, ns, iface, tag);

/** dhclient prints `string` options as colon hex without leading zeros (0:1e:68:…). */
function dhclientHex(text: string): Buffer {
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

const RFC8572_CONF = 'option sztp-redirect code 143 = string;\nrequest subnet-mask, routers, domain-name-servers, sztp-redirect;\n';
// What the OPI sZTP agent ships: the redirect declared as text, read back from the lease file.
const OPI_CONF = 'option sztp-redirect-urls code 143 = text;\nrequest subnet-mask, routers, sztp-redirect-urls;\n';

describe.skipIf(skip)('DHCP responder with real peers (network namespaces)', () => {
  it('ISC dhclient gets a lease and option 143 in the rfc8572 encoding (server-list, length-prefixed)', async () => {
    const lab = newLab();
    const mac = '02:00:5e:10:00:01';
    const env = await serverAndClient(lab, { subnets: [SUBNET] }, mac);
    register(lab, 'BF-RFC-1', mac, 'rfc8572');
    const server = await lab.startServer(env.srv, env.config);
    const lease = dhclient(lab, env.cli, env.cliIf, RFC8572_CONF, 'rfc');
    expect(lease).toMatch(/fixed-address 10\.9\.0\.1\d\d;/);
    expect(lease).toContain('option dhcp-server-identifier 10.9.0.1;');
    const hex = /option sztp-redirect ([0-9a-f:]+);/.exec(lease)?.[1];
    expect(hex, lease).toBeDefined();
    expect(decodeSztpServerList(dhclientHex(hex!))).toEqual(['https://ztp.lab.example:8443']);
    await lab.stop(server);
    const rows = leasesInDb(lab);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: 'bound', serial: 'BF-RFC-1', client_key: `mac:${mac}` });
    expect(server.stderr()).toMatch(/"mac":"02:00:5e:10:00:01".*"msg":"DHCP: ACK \(new lease\)"/);
  });

  it('dhclient lease file shows the OPI text form (full RPC URL) for an opi-profile device', async () => {
    const lab = newLab();
    const mac = '02:00:5e:10:00:02';
    const env = await serverAndClient(lab, { subnets: [SUBNET] }, mac);
    register(lab, 'BF-OPI-1', mac, 'opi');
    await lab.startServer(env.srv, env.config);
    const lease = dhclient(lab, env.cli, env.cliIf, OPI_CONF, 'opi');
    // The exact line the OPI agent greps for in dhclient's lease file:
    expect(lease).toContain(`option sztp-redirect-urls "https://ztp.lab.example:8443${RPC}";`);
  });

  it('busybox udhcpc gets a lease and opt143 in both encodings', async () => {
    const lab = newLab();
    const macRfc = '02:00:5e:10:00:03';
    const macOpi = '02:00:5e:10:00:04';
    const env = await serverAndClient(lab, { subnets: [SUBNET] }, macRfc);
    register(lab, 'BF-RFC-2', macRfc, 'rfc8572');
    register(lab, 'BF-OPI-2', macOpi, 'opi');
    await lab.startServer(env.srv, env.config);
    const rfc = udhcpc(lab, env.cli, env.cliIf, 'rfc');
    expect(rfc.ip).toMatch(/^10\.9\.0\.1\d\d$/);
    expect(rfc.serverid).toBe('10.9.0.1');
    expect(decodeSztpServerList(Buffer.from(rfc.opt143!, 'hex'))).toEqual(['https://ztp.lab.example:8443']);
    lab.run(env.cli, 'ip', ['link', 'set', env.cliIf, 'down']);
    lab.run(env.cli, 'ip', ['link', 'set', env.cliIf, 'address', macOpi]);
    lab.run(env.cli, 'ip', ['link', 'set', env.cliIf, 'up']);
    const opi = udhcpc(lab, env.cli, env.cliIf, 'opi');
    expect(opi.ip).toMatch(/^10\.9\.0\.1\d\d$/);
    expect(opi.ip).not.toBe(rfc.ip);
    expect(Buffer.from(opi.opt143!, 'hex').toString('utf8')).toBe(`https://ztp.lab.example:8443${RPC}`);
  });

  it('leases survive a restart; a dry pool gives no offer and a log line, not a crash', async () => {
    const lab = newLab();
    const macA = '02:00:5e:10:00:0a';
    const env = await serverAndClient(lab, { subnets: [{ subnet: '10.9.0.0/24', pools: [{ start: '10.9.0.100', end: '10.9.0.101' }] }] }, macA);
    let server = await lab.startServer(env.srv, env.config);
    const a = udhcpc(lab, env.cli, env.cliIf, 'a');
    await lab.stop(server);
    server = await lab.startServer(env.srv, env.config);
    const setMac = (mac: string) => {
      lab.run(env.cli, 'ip', ['link', 'set', env.cliIf, 'down']);
      lab.run(env.cli, 'ip', ['link', 'set', env.cliIf, 'address', mac]);
      lab.run(env.cli, 'ip', ['link', 'set', env.cliIf, 'up']);
    };
    setMac('02:00:5e:10:00:0b');
    const b = udhcpc(lab, env.cli, env.cliIf, 'b');
    expect(b.ip).not.toBe(a.ip); // A's lease was reloaded from SQLite: not handed out twice
    setMac('02:00:5e:10:00:0c');
    expect(() => udhcpc(lab, env.cli, env.cliIf, 'c')).toThrow(); // udhcpc -n exits non-zero: no lease
    await waitLog(lab, server, /address pool exhausted/);
    expect(server.child.exitCode).toBeNull(); // still running
    setMac(macA);
    const again = udhcpc(lab, env.cli, env.cliIf, 'a2');
    expect(again.ip).toBe(a.ip); // the same client gets its address back after the restart
    expect(leasesInDb(lab).map((r) => r.address).sort()).toEqual(['10.9.0.100', '10.9.0.101']);
  });

  it('a relayed request (perfdhcp as relay, giaddr set): all 40 exchanges answered to the relay from the giaddr subnet, exit status checked', async () => {
    const lab = newLab();
    const srv = lab.ns('s');
    const relay = lab.ns('r');
    const { a, b } = lab.link(srv, '10.9.1.1/24', relay, '10.9.1.2/24');
    lab.run(relay, 'ip', ['addr', 'add', '10.20.0.1/24', 'dev', b]);
    lab.run(srv, 'ip', ['route', 'add', '10.20.0.0/24', 'via', '10.9.1.2']);
    // Server on port 6767: perfdhcp listens on 67 as the relay and sends from it.
    const config = writeConfig(lab, { interface: a, port: 6767, subnets: [{ subnet: '10.20.0.0/24', pools: [{ start: '10.20.0.10', end: '10.20.0.200' }] }] });
    const server = await lab.startServer(srv, config);
    // -W: wait 1 s for answers still in flight after the 40th DISCOVER (else the last counts as a drop).
    const run = lab.runStatus(relay, 'perfdhcp', ['-4', '-l', '10.20.0.1', '-L', '67', '-N', '6767', '-r', '20', '-R', '20', '-n', '40', '-p', '4', '-W', '1000000', '10.9.1.1'], 30_000);
    const out = run.stdout + run.stderr;
    // perfdhcp exits 0 when every exchange completed, 3 when some packets were dropped; anything
    // else (1 general error, 2 bad arguments, a signal) means the run itself failed.
    expect([0, 3], out).toContain(run.status);
    const stat = (exchange: string, field: string) => Number(new RegExp(`Statistics for: ${exchange}\\*+\\n(?:.*\\n)*?${field}: (\\d+)`).exec(out)?.[1]);
    // All 40 DISCOVERs answered at giaddr:67 (after the first, through the socket connected to the relay), allowing one UDP loss on a loaded host; every
    // OFFER turned into a REQUEST that got its ACK; no lease given twice or refused.
    expect(stat('DISCOVER-OFFER', 'sent packets'), out).toBe(40);
    expect(stat('DISCOVER-OFFER', 'received packets'), out).toBeGreaterThanOrEqual(39);
    expect(stat('REQUEST-ACK', 'received packets'), out).toBe(stat('REQUEST-ACK', 'sent packets'));
    expect(stat('REQUEST-ACK', 'sent packets'), out).toBe(stat('DISCOVER-OFFER', 'received packets'));
    for (const exchange of ['DISCOVER-OFFER', 'REQUEST-ACK']) {
      expect(stat(exchange, 'rejected leases'), out).toBe(0);
      expect(stat(exchange, 'non unique addresses'), out).toBe(0);
    }
    if (run.status === 3) console.warn(`perfdhcp: a packet was dropped (exit 3), within the allowance of one:\n${out}`);
    await waitLog(lab, server, /"giaddr":"10\.20\.0\.1".*"ip":"10\.20\.0\.\d+"/);
  });

  it('proxy mode beside dnsmasq: dnsmasq gives the address, we give boot and sZTP options', async () => {
    const lab = newLab();
    const lan = lab.ns('l');
    const dns = lab.ns('d');
    const prx = lab.ns('p');
    const cli = lab.ns('c');
    lab.run(lan, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
    lab.run(lan, 'ip', ['link', 'set', 'br0', 'up']);
    const d = lab.link(dns, '10.9.2.2/24', lan, '', 'd');
    const p = lab.link(prx, '10.9.2.3/24', lan, '', 'p');
    const c = lab.link(cli, '', lan, '', 'c');
    for (const port of [d.b, p.b, c.b]) lab.run(lan, 'ip', ['link', 'set', port, 'master', 'br0']);
    const leaseFile = join(lab.dir, 'dnsmasq.leases');
    lab.spawn(dns, 'dnsmasq', ['--keep-in-foreground', '--port=0', `--interface=${d.a}`, '--bind-interfaces', '--dhcp-range=10.9.2.50,10.9.2.99,1h', `--dhcp-leasefile=${leaseFile}`, '--no-ping', '--dhcp-authoritative', `--pid-file=${join(lab.dir, 'dnsmasq.pid')}`]);
    const config = writeConfig(lab, {
      interface: p.a,
      port: 67,
      mode: 'proxy',
      options: { boot: { httpUrl: { x64: 'http://10.9.2.3:8080/boot/x64.efi', arm64: 'http://10.9.2.3:8080/boot/aa64.efi' } } },
    });
    const server = await lab.startServer(prx, config);
    // 1. An ordinary client (dhclient) is served by dnsmasq alone: we do not disturb it.
    const lease = dhclient(lab, cli, c.a, RFC8572_CONF, 'proxy');
    const ip = /fixed-address (10\.9\.2\.\d+);/.exec(lease)?.[1];
    expect(ip, lease).toBeDefined();
    expect(lease).toContain('option dhcp-server-identifier 10.9.2.2;');
    await lab.until(() => existsSync(leaseFile) && readFileSync(leaseFile, 'utf8').includes(ip!), 5000, 'dnsmasq lease file');
    lab.run(cli, 'ip', ['addr', 'add', `${ip}/24`, 'dev', c.a]);
    // 2. A UEFI HTTP boot client (independent raw-socket script, peers.ts) sees both offers: the
    //    address from dnsmasq, HTTPClient + boot URL + 143 from us; then INFORM gets our options.
    const script = join(lab.dir, 'uefi-client.cjs');
    writeFileSync(script, UEFI_HTTP_CLIENT_SCRIPT);
    const res = lab.run(cli, process.execPath, [script, c.a, ip!], 20_000);
    if (process.env.DEBUG_DHCP) console.log(res);
    const replies = (JSON.parse(res) as { phase: string; hex: string }[]).map((r) => ({ phase: r.phase, p: decodeV4(Buffer.from(r.hex, 'hex')) }));
    const offers = replies.filter((r) => r.phase === 'discover' && getOption(r.p, Opt.MESSAGE_TYPE)?.[0] === 2);
    const fromDnsmasq = offers.find((r) => getOption(r.p, Opt.SERVER_ID)?.join('.') === '10.9.2.2');
    const fromUs = offers.find((r) => getOption(r.p, Opt.SERVER_ID)?.join('.') === '10.9.2.3');
    expect(fromDnsmasq?.p.yiaddr).toMatch(/^10\.9\.2\.\d+$/);
    expect(fromUs?.p.yiaddr).toBe('0.0.0.0');
    expect(getOption(fromUs!.p, Opt.VENDOR_CLASS)?.toString()).toBe('HTTPClient');
    expect(getOption(fromUs!.p, Opt.BOOTFILE)?.toString()).toBe('http://10.9.2.3:8080/boot/x64.efi');
    expect(decodeSztpServerList(getOption(fromUs!.p, Opt.SZTP_REDIRECT)!)).toEqual(['https://ztp.lab.example:8443']);
    const informAck = replies.find((r) => r.phase === 'inform' && getOption(r.p, Opt.SERVER_ID)?.join('.') === '10.9.2.3');
    expect(informAck, res).toBeDefined();
    expect(decodeSztpServerList(getOption(informAck!.p, Opt.SZTP_REDIRECT)!)).toEqual(['https://ztp.lab.example:8443']);
    await waitLog(lab, server, /DHCP proxy: OFFER \(options only\)/);
  });

  it('DHCPv6: dhclient -6 obtains an address, option 136 (sZTP redirect) and 59 (boot-file-url)', async () => {
    const lab = newLab();
    const srv = lab.ns('s');
    const cli = lab.ns('c');
    const { a, b } = lab.link(srv, '10.9.3.1/24', cli, '');
    lab.run(srv, 'ip', ['-6', 'addr', 'add', 'fd00:9::1/64', 'dev', a, 'nodad']);
    const config = writeConfig(lab, {
      interface: a,
      port: 67,
      subnets: [{ subnet: '10.9.3.0/24', pools: [{ start: '10.9.3.100', end: '10.9.3.110' }] }],
      options: { boot: { httpUrl: { default: 'http://[fd00:9::1]:8080/boot/grubx64.efi' } } },
      v6: { enabled: true, subnets: [{ prefix: 'fd00:9::/64', pools: [{ start: 'fd00:9::100', end: 'fd00:9::1ff' }] }] },
    });
    const server = await lab.startServer(srv, config);
    await lab.until(() => /"protocol":"udp6"/.test(server.stdout()), 5000, 'v6 listener');
    // The kernel adds the link-local address asynchronously after link up; dhclient -6 needs it.
    await lab.until(() => lab.run(cli, 'ip', ['-6', 'addr', 'show', 'dev', b, 'scope', 'link']).includes('fe80'), 10_000, 'client link-local address');
    const conf = 'option dhcp6.sztp-redirect code 136 = string;\nalso request dhcp6.sztp-redirect, dhcp6.bootfile-url;\n';
    const lease = dhclient(lab, cli, b, conf, 'v6', ['-6']);
    expect(lease).toMatch(/iaaddr fd00:9::1[0-9a-f]{2} \{/);
    const hex = /option dhcp6.sztp-redirect ([0-9a-f:]+);/.exec(lease)?.[1];
    expect(hex, lease).toBeDefined();
    expect(decodeSztpServerList(dhclientHex(hex!))).toEqual(['https://ztp.lab.example:8443']);
    expect(lease).toContain('option dhcp6.bootfile-url "http://[fd00:9::1]:8080/boot/grubx64.efi";');
    await waitLog(lab, server, /DHCPv6: REPLY to REQUEST/);
  });
});
