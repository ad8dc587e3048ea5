// Kea (kea-dhcp4, ISC's production DHCP server, installed by .ci/run) run as a real peer: Kea
// owns the addresses of a LAN, ztp serves beside it in proxy mode. An ordinary client (udhcpc)
// gets its lease from Kea alone, recorded in Kea's own lease file; a UEFI HTTP boot client gets
// ztp's options-only offer (HTTPClient, boot URL, 143, no address) and ztp answers its INFORM. Namespaces are created by the test and torn down on every path.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSztpServerList } from '../../src/dhcp/codec/options.js';
import { decodeV4, getOption, Opt } from '../../src/dhcp/codec/v4.js';
import { Lab, labSkipReason } from './netns.js';
import { udhcpcLease, UEFI_HTTP_CLIENT_SCRIPT } from './peers.js';

const skip = labSkipReason('kea-dhcp4', 'udhcpc');
const labs: Lab[] = [];
afterEach(async () => {
  while (labs.length) await labs.pop()!.cleanup();
});

describe.skipIf(skip)('Kea as the address server, ztp beside it in proxy mode (network namespaces)', () => {
  it('udhcpc leases from Kea undisturbed by ztp; a UEFI HTTP client gets boot URL + 143 from ztp (options only, and on INFORM)', async () => {
    const lab = new Lab();
    labs.push(lab);
    const lan = lab.ns('l');
    const kea = lab.ns('k');
    const prx = lab.ns('p');
    const cli = lab.ns('c');
    lab.run(lan, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
    lab.run(lan, 'ip', ['link', 'set', 'br0', 'up']);
    const k = lab.link(kea, '10.9.3.2/24', lan, '', 'k');
    const p = lab.link(prx, '10.9.3.3/24', lan, '', 'p');
    const c = lab.link(cli, '', lan, '', 'c');
    for (const port of [k.b, p.b, c.b]) lab.run(lan, 'ip', ['link', 'set', port, 'master', 'br0']);

    const leaseFile = join(lab.dir, 'kea-leases4.csv');
    const keaConfig = join(lab.dir, 'kea-dhcp4.json');
    writeFileSync(
      keaConfig,
      JSON.stringify({
        Dhcp4: {
          'interfaces-config': { interfaces: [k.a], 'dhcp-socket-type': 'raw' },
          'lease-database': { type: 'memfile', persist: true, name: leaseFile, 'lfc-interval': 0 },
          'valid-lifetime': 3600,
          authoritative: true,
          subnet4: [{ id: 1, subnet: '10.9.3.0/24', interface: k.a, pools: [{ pool: '10.9.3.50 - 10.9.3.99' }] }],
          // Kea 2.2 (Debian bookworm) spells it output_options; 2.4+ accepts output-options too.
          loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout', flush: true }], severity: 'INFO' }],
        },
      }),
    );
    const keaCheck = lab.runStatus(kea, 'kea-dhcp4', ['-t', keaConfig], 20_000);
    expect(keaCheck.status, keaCheck.stdout + keaCheck.stderr).toBe(0);
    // Kea's pid and lock files go to the lab directory, not /run.
    const keaProc = lab.spawn(kea, 'kea-dhcp4', ['-c', keaConfig], { ...process.env, KEA_PIDFILE_DIR: lab.dir, KEA_LOCKFILE_DIR: lab.dir });
    await lab.until(() => /DHCP4_STARTED|server version .* started/.test(keaProc.stdout() + keaProc.stderr()), 20_000, 'Kea started').catch(() => {
      throw new Error(`kea-dhcp4 did not start:\n${keaProc.stdout()}\n${keaProc.stderr()}`);
    });

    const config = join(lab.dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        dataDir: join(lab.dir, 'data'),
        logLevel: 'debug',
        bootstrap: { port: 8443 },
        dhcp: { interface: p.a, port: 67, mode: 'proxy', options: { boot: { httpUrl: { x64: 'http://10.9.3.3:8080/boot/x64.efi' } } } },
      }),
    );
    const server = await lab.startServer(prx, config);

    // 1. An ordinary client is served by Kea alone: server id 10.9.3.2, an address from Kea's pool.
    const lease = udhcpcLease(lab, cli, c.a, 'kea');
    expect(lease.serverid, JSON.stringify(lease)).toBe('10.9.3.2');
    expect(lease.ip).toMatch(/^10\.9\.3\.([5-9]\d)$/);
    await lab.until(() => existsSync(leaseFile) && readFileSync(leaseFile, 'utf8').includes(lease.ip!), 5000, 'Kea lease file');
    lab.run(cli, 'ip', ['addr', 'add', `${lease.ip}/24`, 'dev', c.a]);

    // 2. A UEFI HTTP boot client sees both offers, then ztp answers its INFORM with the options.
    const script = join(lab.dir, 'uefi-client.cjs');
    writeFileSync(script, UEFI_HTTP_CLIENT_SCRIPT);
    const res = lab.run(cli, process.execPath, [script, c.a, lease.ip!], 20_000);
    const replies = (JSON.parse(res) as { phase: string; hex: string }[]).map((r) => ({ phase: r.phase, p: decodeV4(Buffer.from(r.hex, 'hex')) }));
    const offers = replies.filter((r) => r.phase === 'discover' && getOption(r.p, Opt.MESSAGE_TYPE)?.[0] === 2);
    // Kea's own offer to this hand-built client is not asserted: Kea 2.2 did not answer it in
    // this topology (udhcpc above it does answer); see the issue 11 closing note.
    const fromUs = offers.find((r) => getOption(r.p, Opt.SERVER_ID)?.join('.') === '10.9.3.3');
    expect(fromUs?.p.yiaddr, res).toBe('0.0.0.0');
    expect(getOption(fromUs!.p, Opt.VENDOR_CLASS)?.toString()).toBe('HTTPClient');
    expect(getOption(fromUs!.p, Opt.BOOTFILE)?.toString()).toBe('http://10.9.3.3:8080/boot/x64.efi');
    expect(decodeSztpServerList(getOption(fromUs!.p, Opt.SZTP_REDIRECT)!)).toEqual(['https://ztp.lab.example:8443']);
    const informAck = replies.find((r) => r.phase === 'inform' && getOption(r.p, Opt.SERVER_ID)?.join('.') === '10.9.3.3');
    expect(informAck, res).toBeDefined();
    expect(decodeSztpServerList(getOption(informAck!.p, Opt.SZTP_REDIRECT)!)).toEqual(['https://ztp.lab.example:8443']);
    await lab.until(() => /DHCP proxy: OFFER \(options only\)/.test(server.stderr()), 5000, 'ztp proxy log');
    // Kea still holds the lease it gave, in its own lease file, for the MAC of the client.
    const mac = lab.run(cli, 'cat', [`/sys/class/net/${c.a}/address`]).trim();
    expect(readFileSync(leaseFile, 'utf8')).toMatch(new RegExp(`^${lease.ip!.replace(/\./g, '\\.')},${mac}`, 'm'));
  });
});
