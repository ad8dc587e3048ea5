// Issue 8, "The interface comes and goes": the DHCP service waits for a missing interface with
// back-off, logs once while waiting, starts when it is usable, rebinds on an address change and
// pauses when it goes away; readiness (/readyz) reports it. Real UDP sockets bound to lo, the
// interface's state injected (the namespace test does it with a real veth).
import { createSocket } from 'node:dgram';
import type { NetworkInterfaceInfo } from 'node:os';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApiApp } from '../../src/api/app.js';
import { validateConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore, systemClock } from '../../src/devices/store.js';
import { decodeV4, encodeV4, getOption } from '../../src/dhcp/codec/v4.js';
import { createDhcpService, type DhcpService, type DhcpServiceOptions, type InterfaceProbe } from '../../src/dhcp/service.js';
import { createLogger } from '../../src/log.js';
import { isRoot } from '../helpers/shared.js';

const lines: { msg: string; level: number }[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { msg: string; level: number });
    done();
  },
});

const lo = (address: string): NetworkInterfaceInfo[] => [{ address, netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: `${address}/8` }];

let service: DhcpService | undefined;
afterEach(async () => {
  await service?.stop();
  service = undefined;
  lines.length = 0;
});

function setup(probe: InterfaceProbe, opts: { summaryInterval?: number; level?: string; interface?: string; bindDevice?: DhcpServiceOptions['bindDevice'] } = {}) {
  const config = validateConfig({ dhcp: { interface: opts.interface ?? 'lo', port: 0, summaryInterval: opts.summaryInterval ?? 0, subnets: [{ subnet: '127.0.0.0/8', pools: [{ start: '127.0.5.1', end: '127.0.5.200' }] }] } });
  const db = openDatabase({ file: ':memory:' });
  const store = new DeviceStore(db);
  const log = createLogger(opts.level ?? 'info', sink);
  service = createDhcpService({ config, log, db, store, clock: systemClock, publicHost: 'ztp.test' }, { probe, retry: { initialMs: 20, maxMs: 80, watchMs: 30 }, ...(opts.bindDevice ? { bindDevice: opts.bindDevice } : {}) });
  return { service, store };
}

const until = async (test: () => boolean, what: string) => {
  const end = Date.now() + 5000;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** INFORM from ciaddr 127.0.0.9 (on the served 127/8): the ACK comes unicast to 127.0.0.9:68. */
async function inform(port: number, to: string): Promise<string> {
  const chaddr = Buffer.alloc(16);
  Buffer.from([2, 0, 0, 0, 0, 9]).copy(chaddr);
  const s = createSocket({ type: 'udp4', reuseAddr: true });
  try {
    const reply = new Promise<Buffer>((resolve, reject) => {
      s.on('message', resolve);
      setTimeout(() => reject(new Error('no reply')), 2000).unref();
    });
    await new Promise<void>((r) => s.bind(68, '127.0.0.9', r));
    const bytes = encodeV4({ op: 1, htype: 1, hlen: 6, hops: 0, xid: 7, secs: 0, flags: 0, ciaddr: '127.0.0.9', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options: [{ code: 53, data: Buffer.from([8]) }] });
    s.send(bytes, port, to);
    return getOption(decodeV4(await reply), 54)!.join('.');
  } finally {
    s.close();
  }
}

describe('DHCP service lifecycle', () => {
  it('waits for a missing interface (one log line), starts when it appears, rebinds on an address change, pauses when it goes', async () => {
    let iface: NetworkInterfaceInfo[] | undefined;
    const probe: InterfaceProbe = () => (iface ? { usable: true, addrs: iface } : { usable: false, reason: 'interface lo does not exist' });
    const { service: svc } = setup(probe);
    expect(await svc.start()).toEqual([]);
    expect(svc.state()).toMatchObject({ state: 'waiting', reason: 'interface lo does not exist' });
    await new Promise((r) => setTimeout(r, 300)); // several retries
    expect(lines.filter((l) => l.msg.includes('waiting for interface'))).toHaveLength(1);

    iface = lo('127.0.0.1');
    await until(() => svc.state().state === 'running', 'running');
    expect(svc.state().address).toBe('127.0.0.1');
    expect(lines.some((l) => l.msg.includes('is usable; responder started'))).toBe(true);

    iface = lo('127.0.0.2');
    await until(() => svc.state().address === '127.0.0.2', 'rebound on 127.0.0.2');
    expect(lines.some((l) => l.msg.includes('address changed; rebinding'))).toBe(true);

    iface = undefined;
    await until(() => svc.state().state === 'waiting', 'waiting again');
    expect(lines.some((l) => l.msg.includes('no longer usable'))).toBe(true);
  });

  it.skipIf(!isRoot)('answers on the new address after a rebind: the server identifier follows the interface', async () => {
    let iface = lo('127.0.0.1');
    const { service: svc } = setup(() => ({ usable: true, addrs: iface }));
    const [listen] = await svc.start();
    expect(await inform(listen!.port, '127.0.0.1')).toBe('127.0.0.1');
    iface = lo('127.0.0.3');
    await until(() => svc.state().address === '127.0.0.3', 'rebound');
    // port 0 in this test: the rebound socket has another port, which the state reports
    expect(await inform(svc.state().listen![0]!.port, '127.0.0.3')).toBe('127.0.0.3');
    expect(svc.stats()['send-failed'] ?? 0).toBe(0);
    // Counted by message type too (ztp_dhcp_messages_total): two INFORMs in, two ACKs out.
    expect(svc.stats()).toMatchObject({ 'rx:INFORM': 2, 'tx:ACK': 2 });
  });

  it('/readyz is 503 with the reason while DHCP waits, 200 once it runs', async () => {
    const link: { addrs?: NetworkInterfaceInfo[] } = {};
    const { service: svc, store } = setup(() => (link.addrs ? { usable: true, addrs: link.addrs } : { usable: false, reason: 'interface lo has no carrier' }));
    await svc.start();
    const app = buildApiApp({
      store,
      log: createLogger('silent'),
      token: 't',
      readiness: () => ({ dhcp: { ready: ['running', 'disabled'].includes(svc.state().state), state: svc.state().state, reason: svc.state().reason } }),
    });
    const waiting = await app.inject({ url: '/readyz' });
    expect(waiting.statusCode).toBe(503);
    expect(waiting.json()).toEqual({ status: 'not-ready', services: { dhcp: { ready: false, state: 'waiting', reason: 'interface lo has no carrier' } } });
    link.addrs = lo('127.0.0.1');
    await until(() => svc.state().state === 'running', 'running');
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', services: { dhcp: { state: 'running' } } });
    await app.close();
  });

  // Issue 8: per-packet info lines flooded the log (10 MB in one run).
  it('per-packet lines are debug; at info one "DHCP summary" line per interval carries the counters that moved', async () => {
    const discover = async (port: number, n: number) => {
      const s = createSocket('udp4');
      try {
        for (let i = 0; i < n; i++) {
          const chaddr = Buffer.alloc(16);
          Buffer.from([2, 0, 0, 0, 1, i]).copy(chaddr);
          const bytes = encodeV4({ op: 1, htype: 1, hlen: 6, hops: 0, xid: 100 + i, secs: 0, flags: 0x8000, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options: [{ code: 53, data: Buffer.from([1]) }] });
          await new Promise<void>((r) => s.send(bytes, port, '127.0.0.1', () => r()));
        }
      } finally {
        s.close();
      }
    };
    const { service: info } = setup(() => ({ usable: true, addrs: lo('127.0.0.1') }), { summaryInterval: 1 });
    const [listen] = await info.start();
    await discover(listen!.port, 5);
    await until(() => (info.stats().received ?? 0) >= 5, '5 DISCOVERs handled');
    await until(() => lines.some((l) => l.msg === 'DHCP summary'), 'a summary line');
    const summary = lines.find((l) => l.msg === 'DHCP summary') as unknown as { level: number; delta: Record<string, number> };
    expect(summary.level).toBe(30);
    expect(summary.delta.received).toBe(5);
    expect(lines.filter((l) => l.msg.includes('OFFER'))).toEqual([]);
    await info.stop();

    lines.length = 0;
    const { service: debug } = setup(() => ({ usable: true, addrs: lo('127.0.0.1') }), { level: 'debug' });
    const [listen2] = await debug.start();
    await discover(listen2!.port, 3);
    await until(() => lines.filter((l) => l.msg === 'DHCP: OFFER').length === 3, 'three debug OFFER lines');
    expect(lines.filter((l) => l.msg === 'DHCP: OFFER').every((l) => l.level === 20)).toBe(true);
  });

  it('without SO_BINDTOIFINDEX (old kernel, native module missing): one interface runs unbound with one warning; several are refused with the reason', async () => {
    const unsupported = () => {
      throw Object.assign(new Error('the sockopt native binding does not load'), { code: 'ENOTSUP' });
    };
    const { service: one } = setup(() => ({ usable: true, addrs: lo('127.0.0.1') }), { bindDevice: unsupported });
    expect(await one.start()).toHaveLength(1);
    expect(one.state()).toMatchObject({ state: 'running', address: '127.0.0.1' });
    expect(lines.filter((l) => l.msg.includes('sockets not bound to the interface'))).toHaveLength(1);
    await one.stop();

    lines.length = 0;
    const { service: two } = setup(() => ({ usable: true, addrs: lo('127.0.0.1') }), { interface: 'lo,lo:1', bindDevice: unsupported });
    expect(await two.start()).toEqual([]);
    const s = two.state();
    expect(s.state).toBe('disabled');
    expect(s.reason).toMatch(/^lo: cannot bind sockets to lo: the sockopt native binding does not load \(several interfaces need SO_BINDTOIFINDEX/);
    expect(s.interfaces!.map((i) => [i.interface, i.state])).toEqual([
      ['lo', 'disabled'],
      ['lo:1', 'disabled'],
    ]);
  });
});
