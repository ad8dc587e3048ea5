// Issue 8, "Several interfaces: replies leave the interface the request came in on", with the real
// product (`ztp serve`, DHCP on its worker thread, the default) and real clients: one server
// namespace with two provisioning segments (veth pairs to two client namespaces), two subnets,
// no default route, and a third configured interface that does not exist yet. busybox udhcpc on
// each segment gets an address from THAT segment's subnet; tcpdump on each client segment is the
// witness that replies to one segment's client never appear on the other (a wildcard socket not
// bound to its device hears every segment's broadcast DISCOVER, and its responder would answer
// it out of its own segment). /readyz shows each interface's state.
// DHCPv6 the same way with ISC dhclient -6 (standalone responder, one device-bound socket per
// interface, each on its own prefix).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, REPO } from '../firmware/suite.js';
import { buildStandalone, Lab, labSkipReason, untilReady, type Proc } from './netns.js';
import { dhclientLease, udhcpcLease } from './peers.js';

const skip = labSkipReason('udhcpc', 'dhclient', 'curl', 'tcpdump');
const labs: Lab[] = [];
afterEach(async () => {
  while (labs.length) await labs.pop()!.cleanup();
});
beforeAll(() => {
  if (!skip) {
    buildCli();
    buildStandalone();
  }
}, 240_000);

/** The DHCP packets in `tcpdump -n -l -v` output: source, destination and BOOTP op. */
interface Seen {
  from: string;
  to: string;
  reply: boolean;
  line: string;
}
function seen(p: Proc): Seen[] {
  const out: Seen[] = [];
  for (const line of p.stdout().split('\n')) {
    // With -v the addresses are on the line after the IP header's.
    const m = /(\d+\.\d+\.\d+\.\d+\.\d+) > (\S+): BOOTP\/DHCP, (Request|Reply)/.exec(line);
    if (m) out.push({ from: m[1]!, to: m[2]!, reply: m[3] === 'Reply', line });
  }
  return out;
}

describe.skipIf(skip)('ztp serve on several interfaces (network namespaces, tcpdump witnesses)', () => {
  it('each segment gets addresses from its own subnet, replies leave the interface the request came in on, /readyz shows each interface', async () => {
    const lab = new Lab();
    labs.push(lab);
    const srv = lab.ns('s');
    const cliA = lab.ns('a');
    const cliB = lab.ns('b');
    const segA = lab.link(srv, '10.9.21.1/24', cliA, '', 'A');
    const segB = lab.link(srv, '10.9.22.1/24', cliB, '', 'B');
    const later = `vc${lab.id}C`.slice(0, 15);
    expect(lab.run(srv, 'ip', ['route', 'show', 'default']).trim()).toBe('');

    // Witnesses on both client segments, started before the server.
    const dumps = [cliA, cliB].map((ns, i) => lab.spawn(ns, 'tcpdump', ['-i', i === 0 ? segA.b : segB.b, '-n', '-l', '-v', '-s', '0', 'udp and (port 67 or port 68)']));
    await lab.until(() => dumps.every((d) => d.stderr().includes('listening on')), 10_000, 'tcpdump listening on both segments');

    const file = join(lab.dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        dataDir: join(lab.dir, 'data'),
        publicHost: '10.9.21.1',
        logLevel: 'info',
        dhcp: {
          interface: `${segA.a}, ${segB.a},${later}`,
          port: 67,
          subnets: [
            { subnet: '10.9.21.0/24', pools: [{ start: '10.9.21.100', end: '10.9.21.150' }] },
            { subnet: '10.9.22.0/24', pools: [{ start: '10.9.22.100', end: '10.9.22.150' }] },
          ],
        },
      }),
    );
    const serve = lab.spawn(srv, process.execPath, [join(REPO, 'bin', 'ztp.js'), '--config-file', file, 'serve']);
    const fail = (err: unknown) => new Error(`${(err as Error).message}\n--- ztp serve ---\n${(serve.stdout() + serve.stderr()).slice(-4000)}\n--- tcpdump A ---\n${dumps[0]!.stdout().slice(-2000)}\n--- tcpdump B ---\n${dumps[1]!.stdout().slice(-2000)}`);
    try {
      await lab.until(() => serve.stderr().includes('admin token:') || serve.child.exitCode !== null, 60_000, 'ztp serve started');
      expect(serve.child.exitCode).toBeNull();

      // Two interfaces serve while the third is awaited; readiness says which.
      const partial = await untilReady(lab, srv, (r) => r.body.services.dhcp?.interfaces?.filter((i) => i.state === 'running').length === 2, 'two interfaces running');
      expect(partial.status).toBe(503);
      expect(partial.body.services.dhcp).toMatchObject({ ready: false, state: 'waiting', reason: `${later}: interface ${later} does not exist` });
      expect(partial.body.services.dhcp!.interfaces).toEqual([
        { interface: segA.a, state: 'running', address: '10.9.21.1' },
        { interface: segB.a, state: 'running', address: '10.9.22.1' },
        { interface: later, state: 'waiting', reason: `interface ${later} does not exist` },
      ]);
      expect(serve.stdout()).toContain(`waiting for interface ${later}`);

      // One segment at a time: while A's client runs, segment B must carry no reply at all (its
      // client is silent), and the other way round.
      const replies = (i: number) => seen(dumps[i]!).filter((s) => s.reply).length;
      const leaseA = udhcpcLease(lab, cliA, segA.b, 'segA');
      await lab.until(() => replies(0) >= 2, 5000, 'OFFER and ACK on segment A');
      await new Promise((r) => setTimeout(r, 500));
      expect(seen(dumps[1]!), 'segment B while A leased').toEqual([]);
      const afterA = replies(0);
      const leaseB = udhcpcLease(lab, cliB, segB.b, 'segB');
      await lab.until(() => replies(1) >= 2, 5000, 'OFFER and ACK on segment B');
      await new Promise((r) => setTimeout(r, 500));
      expect(replies(0), 'segment A while B leased').toBe(afterA);
      expect(seen(dumps[0]!).filter((s) => !s.reply).length, 'segment A carries only its own requests').toBeGreaterThan(0);

      // Each client's address comes from its own segment's subnet, from that segment's server address.
      expect(leaseA.ip).toMatch(/^10\.9\.21\.1\d\d$/);
      expect(leaseA.serverid).toBe('10.9.21.1');
      expect(leaseB.ip).toMatch(/^10\.9\.22\.1\d\d$/);
      expect(leaseB.serverid).toBe('10.9.22.1');

      // Replies seen on each segment come from that segment's address only, to the limited
      // broadcast (the clients have no address and no route exists): none crossed over.
      for (const [dump, own] of [[dumps[0]!, '10.9.21.1.67'], [dumps[1]!, '10.9.22.1.67']] as const) {
        const ownReplies = seen(dump).filter((s) => s.reply);
        expect(ownReplies.length).toBeGreaterThanOrEqual(2);
        for (const r of ownReplies) {
          expect(r.from, r.line).toBe(own);
          expect(r.to, r.line).toBe('255.255.255.255.68');
        }
      }

      // The third interface appears with its address: every interface runs, readiness is 200.
      // (a veth whose peer stays in the server namespace: no dummy module on these kernels)
      execFileSync('ip', ['link', 'add', later, 'netns', srv, 'type', 'veth', 'peer', 'name', `${later}p`.slice(0, 15), 'netns', srv]);
      lab.run(srv, 'ip', ['addr', 'add', '10.9.23.1/24', 'dev', later]);
      lab.run(srv, 'ip', ['link', 'set', `${later}p`.slice(0, 15), 'up']);
      lab.run(srv, 'ip', ['link', 'set', later, 'up']);
      const all = await untilReady(lab, srv, (r) => r.status === 200, 'all three interfaces running');
      expect(all.body.services.dhcp).toMatchObject({ ready: true, state: 'running' });
      expect(all.body.services.dhcp!.interfaces!.map((i) => i.state)).toEqual(['running', 'running', 'running']);
    } catch (err) {
      throw fail(err);
    }
  }, 120_000);

  it('DHCPv6 on two interfaces: dhclient -6 on each segment gets an address from its own prefix; no ADVERTISE/REPLY crosses over', async () => {
    const lab = new Lab();
    labs.push(lab);
    const srv = lab.ns('s');
    const cliA = lab.ns('a');
    const cliB = lab.ns('b');
    const segA = lab.link(srv, '10.9.31.1/24', cliA, '', 'A');
    const segB = lab.link(srv, '10.9.32.1/24', cliB, '', 'B');
    lab.run(srv, 'ip', ['-6', 'addr', 'add', 'fd00:31::1/64', 'dev', segA.a, 'nodad']);
    lab.run(srv, 'ip', ['-6', 'addr', 'add', 'fd00:32::1/64', 'dev', segB.a, 'nodad']);
    const dumps = [cliA, cliB].map((ns, i) => lab.spawn(ns, 'tcpdump', ['-i', i === 0 ? segA.b : segB.b, '-n', '-l', 'udp and (port 546 or port 547)']));
    await lab.until(() => dumps.every((d) => d.stderr().includes('listening on')), 10_000, 'tcpdump listening on both segments');
    const config = join(lab.dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        dataDir: join(lab.dir, 'data'),
        logLevel: 'info',
        dhcp: {
          interface: `${segA.a},${segB.a}`,
          subnets: [
            { subnet: '10.9.31.0/24', pools: [{ start: '10.9.31.100', end: '10.9.31.150' }] },
            { subnet: '10.9.32.0/24', pools: [{ start: '10.9.32.100', end: '10.9.32.150' }] },
          ],
          v6: {
            enabled: true,
            subnets: [
              { prefix: 'fd00:31::/64', pools: [{ start: 'fd00:31::100', end: 'fd00:31::1ff' }] },
              { prefix: 'fd00:32::/64', pools: [{ start: 'fd00:32::100', end: 'fd00:32::1ff' }] },
            ],
          },
        },
      }),
    );
    const server = await lab.startServer(srv, config);
    expect(server.stdout().match(/"protocol":"udp6"/g), server.stdout()).toHaveLength(2); // one v6 listener per interface
    for (const [ns, dev] of [[cliA, segA.b], [cliB, segB.b]] as const) {
      await lab.until(() => lab.run(ns, 'ip', ['-6', 'addr', 'show', 'dev', dev, 'scope', 'link']).includes('fe80'), 10_000, 'client link-local address');
    }
    // Server messages (from port 547 to the client's 546) on a segment.
    const replies = (i: number) => dumps[i]!.stdout().split('\n').filter((l) => /\.547 > \S+\.546: dhcp6 (advertise|reply)/.test(l));
    const leaseA = dhclientLease(lab, cliA, segA.b, '', 'v6a', ['-6']);
    await lab.until(() => replies(0).length >= 2, 5000, 'ADVERTISE and REPLY on segment A');
    await new Promise((r) => setTimeout(r, 500));
    expect(replies(1), 'segment B while A leased').toEqual([]);
    const leaseB = dhclientLease(lab, cliB, segB.b, '', 'v6b', ['-6']);
    await lab.until(() => replies(1).length >= 2, 5000, 'ADVERTISE and REPLY on segment B');
    expect(leaseA).toMatch(/iaaddr fd00:31::1[0-9a-f]{2} \{/);
    expect(leaseB).toMatch(/iaaddr fd00:32::1[0-9a-f]{2} \{/);
  }, 90_000);
});
