// Issue 8, "A few packets must not take it down": the attacks reproduced against the pure
// responders. Work per packet is asserted by counting pool address computations (never time).
import { describe, expect, it } from 'vitest';
import type { DhcpV4Packet } from '../../src/dhcp/codec/v4.js';
import { decodeV4, encodeV4, getOption } from '../../src/dhcp/codec/v4.js';
import { isZtpError } from '../../src/errors.js';
import { decodeIaNa, decodeV6, encodeIaNa, encodeV6, findV6, MsgV6, OptV6, type OptionV6 } from '../../src/dhcp/codec/v6.js';
import { LeaseTable, poolV4, type Pool } from '../../src/dhcp/leases.js';
import { ClientRateLimiter } from '../../src/dhcp/limits.js';
import { buildSubnets, ResponderV4 } from '../../src/dhcp/responder-v4.js';
import { buildSubnetsV6, MAX_V6_REPLY, ResponderV6 } from '../../src/dhcp/responder-v6.js';

const policy = { classes: [], reservations: [], sztpUrls: ['https://ztp:8443'], sztpForce: false, defaultLeaseTime: 3600 };
const inventory = { deviceByMac: () => undefined };

/** A pool that counts how many addresses allocation computed. */
function counted(pool: Pool): Pool & { calls: number } {
  const c = { ...pool, calls: 0 };
  c.addressAt = (i: number) => {
    c.calls++;
    return pool.addressAt(i);
  };
  return c;
}

function v4(type: number, mac: number, over: Partial<DhcpV4Packet> = {}, extra: { code: number; data: Buffer }[] = []): DhcpV4Packet {
  const chaddr = Buffer.alloc(16);
  chaddr.writeUInt16BE(0x0200, 0);
  chaddr.writeUInt32BE(mac, 2);
  return { op: 1, htype: 1, hlen: 6, hops: 0, xid: mac, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options: [{ code: 53, data: Buffer.from([type]) }, ...extra], ...over };
}

const ip = (n: number) => Buffer.from([10, 77, (n >> 8) & 255, n & 255]);

function server4(opts: { limiter?: ClientRateLimiter; leasesPerClient?: number; policy?: typeof policy & { global?: object } } = {}) {
  let now = 1_000_000;
  const subnets = buildSubnets([{ subnet: '10.77.0.0/16', pools: [{ start: '10.77.0.10', end: '10.77.255.250' }] }]);
  const pool = counted(subnets[0]!.pools[0]!);
  subnets[0]!.pools[0] = pool;
  const leases = new LeaseTable(4);
  const r = new ResponderV4({ mode: 'server', serverId: '10.77.0.1', subnets, interfaceAddress: '10.77.0.1', inventory, leases, now: () => now, offerHoldMs: 30_000, ...opts, policy: opts.policy ?? policy });
  return { r, pool, leases, tick: (ms: number) => (now += ms) };
}

describe('DHCPv4 under attack', () => {
  it('65k spoofed REQUESTs fill a /16; then a DISCOVER costs O(1) address computations, not a pool scan', () => {
    const { r, pool } = server4();
    const size = pool.size;
    let acked = 0;
    for (let n = 0; n < size; n++) {
      // INIT-REBOOT style REQUEST naming an address, each from another spoofed MAC
      const out = r.handle(v4(3, n + 1, {}, [{ code: 50, data: ip(n + 10) }]));
      if (getOption(out.reply!.packet, 53)?.[0] === 5) acked++;
    }
    expect(acked).toBe(size);
    pool.calls = 0;
    for (let k = 0; k < 200; k++) {
      const dry = r.handle(v4(1, 0x100000 + k));
      expect(dry.counter).toBe('pool-exhausted');
    }
    // The fresh-address cursor ran off the end once; after that a dry pool costs nothing per packet.
    expect(pool.calls).toBeLessThanOrEqual(size);
    pool.calls = 0;
    for (let k = 0; k < 200; k++) r.handle(v4(1, 0x200000 + k));
    expect(pool.calls).toBe(0);
  });

  it('allocation is O(1) amortised: 20,000 DISCOVER/REQUEST pairs compute each address about once', () => {
    const { r, pool } = server4();
    for (let n = 1; n <= 20_000; n++) {
      const offer = r.handle(v4(1, n));
      const yiaddr = offer.reply!.packet.yiaddr;
      const ack = r.handle(v4(3, n, {}, [{ code: 54, data: Buffer.from([10, 77, 0, 1]) }, { code: 50, data: Buffer.from(yiaddr.split('.').map(Number)) }]));
      expect(getOption(ack.reply!.packet, 53)?.[0]).toBe(5);
    }
    expect(pool.calls).toBeLessThanOrEqual(20_000);
  });

  it('released addresses, expired leases and untaken offers come back without a scan, the longest-free first', () => {
    const pool = counted(poolV4('10.5.0.0/24', '10.5.0.1', '10.5.0.100'));
    const t = new LeaseTable(4);
    t.register([pool]);
    let now = 1000;
    const lease = (address: string, key: string, ttl: number) => ({ family: 4 as const, address, clientKey: key, mac: null, hostname: null, subnet: '10.5.0.0/24', state: 'bound' as const, startsAt: now, expiresAt: now + ttl, serial: null });
    for (let i = 0; i < 100; i++) {
      const a = t.allocate([pool], `c${i}`, now)!;
      if (i === 10) t.hold(a, `c${i}`, now + 500, now); // an offer never taken
      else t.bind(lease(a, `c${i}`, i === 20 ? 2_000 : 100_000));
    }
    expect(t.allocate([pool], 'x', now)).toBeUndefined();
    t.release('10.5.0.31', 'c30', now);
    t.release('10.5.0.41', 'c40', now);
    pool.calls = 0;
    expect(t.allocate([pool], 'y', now)).toBe('10.5.0.31');
    t.hold('10.5.0.31', 'y', now + 30_000, now);
    expect(t.allocate([pool], 'z', now)).toBe('10.5.0.41');
    t.hold('10.5.0.41', 'z', now + 30_000, now);
    expect(t.allocate([pool], 'w', now)).toBeUndefined();
    now += 600; // c10's offer lapsed
    expect(t.allocate([pool], 'w', now)).toBe('10.5.0.11');
    t.hold('10.5.0.11', 'w', now + 30_000, now);
    now += 2_000; // c20's lease expired
    expect(t.allocate([pool], 'v', now)).toBe('10.5.0.21');
    expect(pool.calls).toBe(0);
  });

  // The service encodes every reply with { maxSize: reply.maxSize, allowOverload: true }.
  it('no reply larger than the client allows (RFC 2131 §2: 576 bytes unless option 57 says more); what cannot fit is not sent', () => {
    const big = (hex200: number, hex100: number) => ({ ...policy, global: { raw: [{ code: 224, hex: 'aa'.repeat(hex200), always: true }, { code: 225, hex: 'bb'.repeat(hex100), always: true }] } });
    const wire = (r: ResponderV4, extra: { code: number; data: Buffer }[], mac: number) => {
      const reply = r.handle(v4(1, mac, {}, extra)).reply!;
      return encodeV4(reply.packet, { maxSize: reply.maxSize, allowOverload: true });
    };
    const { r } = server4({ policy: big(200, 100) });
    const small = wire(r, [], 1);
    expect(small.length).toBeLessThanOrEqual(576);
    expect(getOption(decodeV4(small), 52)).toBeDefined(); // the rest went into the file field
    expect(getOption(decodeV4(small), 225)).toEqual(Buffer.alloc(100, 0xbb));
    const large = wire(r, [{ code: 57, data: Buffer.from([0x05, 0xdc]) }], 2); // 1500
    expect(large.length).toBeGreaterThan(576);
    expect(large.length).toBeLessThanOrEqual(1500);
    expect(getOption(decodeV4(large), 52)).toBeUndefined();
    // Options that fit nowhere within 576 bytes: a typed error (counted as a drop), never a bigger packet.
    const { r: r2 } = server4({ policy: big(250, 250) });
    let thrown: unknown;
    try {
      wire(r2, [], 3);
    } catch (err) {
      thrown = err;
    }
    expect(isZtpError(thrown) && thrown.code).toBe('DHCP_ENCODE_FAILED');
    expect(wire(r2, [{ code: 57, data: Buffer.from([0x05, 0xdc]) }], 4).length).toBeLessThanOrEqual(1500);
  });

  it('per-MAC limit: one MAC with 50 client-ids gets at most 4 offers', () => {
    const { r } = server4({ leasesPerClient: 4 });
    let offers = 0;
    let limited = 0;
    for (let id = 0; id < 50; id++) {
      const out = r.handle(v4(1, 7, {}, [{ code: 61, data: Buffer.from([0xff, id]) }]));
      if (out.reply) offers++;
      if (out.counter === 'client-limit') limited++;
    }
    expect(offers).toBe(4);
    expect(limited).toBe(46);
  });

  it('per-client packet rate: a burst then the sustained rate; other clients are unaffected', () => {
    const { r, tick } = server4({ limiter: new ClientRateLimiter(10, 20) });
    const counters: string[] = [];
    for (let k = 0; k < 100; k++) counters.push(r.handle(v4(1, 9)).counter ?? 'answered');
    expect(counters.filter((c) => c === 'answered')).toHaveLength(20);
    expect(counters.filter((c) => c === 'rate-limited')).toHaveLength(80);
    expect(r.handle(v4(1, 10)).reply).toBeDefined();
    tick(1000);
    let again = 0;
    for (let k = 0; k < 50; k++) if (r.handle(v4(1, 9)).reply) again++;
    expect(again).toBe(10);
  });
});

const DUID = Buffer.from('0003000102000000abcd', 'hex');
const SERVER_DUID = Buffer.from('000300010200000000ff', 'hex');
const LINK = { address: 'fe80::2%eth0', port: 546 };

function server6(poolEnd = 'fd00:9::1ff', limiter?: ClientRateLimiter) {
  const subnets = buildSubnetsV6([{ prefix: 'fd00:9::/64', pools: [{ start: 'fd00:9::100', end: poolEnd }] }]);
  const leases = new LeaseTable(6);
  const r = new ResponderV6({ serverDuid: SERVER_DUID, subnets, interfaceAddresses: ['fd00:9::1'], policy, inventory, leases, now: () => 1_000_000, preferredLifetime: 3000, validLifetime: 3600, offerHoldMs: 30_000, leasesPerClient: 4, limiter });
  return { r, leases };
}

function v6(type: number, ias: number, withServer = false): Buffer {
  const options: OptionV6[] = [{ code: OptV6.CLIENTID, data: DUID }];
  if (withServer) options.push({ code: OptV6.SERVERID, data: SERVER_DUID });
  for (let i = 0; i < ias; i++) options.push({ code: OptV6.IA_NA, data: encodeIaNa({ iaid: i, t1: 0, t2: 0, options: [] }) });
  options.push({ code: OptV6.ORO, data: Buffer.from([0, 136]) });
  return Buffer.from(encodeV6({ kind: 'client', msgType: type, transactionId: 0xabcdef, options }));
}

const addressesIn = (data: Buffer) => {
  const m = decodeV6(data);
  if (m.kind !== 'client') return [];
  return m.options.filter((o) => o.code === OptV6.IA_NA).filter((o) => findV6(decodeIaNa(o.data).options, OptV6.IAADDR));
};

describe('DHCPv6 under attack', () => {
  it('one unauthenticated REBIND with 500 IA_NA binds nothing and draws no reply (it was 201 addresses and 22 KB)', () => {
    const { r, leases } = server6();
    const out = r.handle(v6(MsgV6.REBIND, 500), LINK);
    expect(out.reply).toBeUndefined();
    expect(out.writes).toEqual([]);
    expect(leases.activeCount(1_000_000)).toBe(0);
  });

  it('a REQUEST with 500 IA_NA binds at most leasesPerClient (4), and the reply stays under 1232 bytes', () => {
    const { r, leases } = server6();
    const req = v6(MsgV6.REQUEST, 500, true);
    const out = r.handle(req, LINK);
    expect(out.reply!.data.length).toBeLessThanOrEqual(MAX_V6_REPLY);
    expect(out.reply!.data.length).toBeLessThan(req.length);
    expect(addressesIn(out.reply!.data)).toHaveLength(4);
    expect(leases.activeCount(1_000_000)).toBe(4);
    expect(out.counter).toBe('client-limit');
    // a second message from the same DUID with other IAIDs gets nothing more
    const again = r.handle(v6(MsgV6.REQUEST, 8, true), LINK);
    expect(addressesIn(again.reply!.data)).toHaveLength(4); // the same four, renewed
    expect(leases.activeCount(1_000_000)).toBe(4);
  });

  it('a REBIND of bindings we hold renews them; RENEW of unknown IAs answers NoBinding without allocating', () => {
    const { r, leases } = server6();
    r.handle(v6(MsgV6.REQUEST, 2, true), LINK);
    const rebind = r.handle(v6(MsgV6.REBIND, 2), LINK);
    expect(addressesIn(rebind.reply!.data)).toHaveLength(2);
    const renew = r.handle(v6(MsgV6.RENEW, 4, true), LINK);
    const m = decodeV6(renew.reply!.data);
    const statuses = m.kind === 'client' ? m.options.filter((o) => o.code === OptV6.IA_NA).map((o) => findV6(decodeIaNa(o.data).options, OptV6.STATUS_CODE)?.readUInt16BE(0)) : [];
    expect(statuses).toEqual([undefined, undefined, 3, 3]);
    expect(leases.activeCount(1_000_000)).toBe(2);
  });

  it('SOLICIT loops over a 65k pool never scan it: offers come from the fresh cursor', () => {
    const { r } = server6('fd00:9::ffff');
    for (let k = 0; k < 2000; k++) {
      const duid = Buffer.from(DUID);
      duid.writeUInt16BE(k, 8);
      const msg = Buffer.from(encodeV6({ kind: 'client', msgType: MsgV6.SOLICIT, transactionId: k, options: [{ code: OptV6.CLIENTID, data: duid }, { code: OptV6.IA_NA, data: encodeIaNa({ iaid: 1, t1: 0, t2: 0, options: [] }) }] }));
      expect(addressesIn(r.handle(msg, LINK).reply!.data)).toHaveLength(1);
    }
  });

  it('per-client packet rate per DUID: a burst, then the excess is dropped and counted; another DUID is unaffected', () => {
    const { r } = server6('fd00:9::1ff', new ClientRateLimiter(10, 20));
    const solicit = (k: number, duid: Buffer) => Buffer.from(encodeV6({ kind: 'client', msgType: MsgV6.SOLICIT, transactionId: k, options: [{ code: OptV6.CLIENTID, data: duid }, { code: OptV6.IA_NA, data: encodeIaNa({ iaid: 1, t1: 0, t2: 0, options: [] }) }] }));
    const outs = Array.from({ length: 60 }, (_, k) => r.handle(solicit(k, DUID), LINK));
    expect(outs.filter((o) => o.reply)).toHaveLength(20);
    expect(outs.filter((o) => o.counter === 'rate-limited')).toHaveLength(40);
    const other = Buffer.from(DUID);
    other.writeUInt16BE(0x4242, 8);
    expect(r.handle(solicit(99, other), LINK).reply).toBeDefined();
  });
});
