// DHCPv6 responder (pure, no sockets): the RFC 8415 §18.3 exchanges message by message —
// SOLICIT/ADVERTISE, REQUEST/RENEW/REBIND/REPLY, RELEASE, INFORMATION-REQUEST — the ORO honoured
// (RFC 8415 §21.7: only what was asked, plus what is configured "always"), option 136 (RFC 8572
// §8.4), the per-client IA_NA limit, and malformed input as a typed error.
import { describe, expect, it } from 'vitest';
import { isZtpError } from '../../src/errors.js';
import { decodeIaAddr, decodeIaNa, decodeStatus, decodeV6, encodeIaNa, encodeV6, findV6, MsgV6, OptV6, StatusV6, type ClientMessageV6, type OptionV6 } from '../../src/dhcp/codec/v6.js';
import { decodeSztpServerList } from '../../src/dhcp/codec/options.js';
import { LeaseTable } from '../../src/dhcp/leases.js';
import { buildSubnetsV6, ResponderV6 } from '../../src/dhcp/responder-v6.js';

const SERVER_DUID = Buffer.from('000300010200000000ff', 'hex');
/** DUID-LL (type 3, hardware type 1) of MAC 02:00:00:00:00:01 */
const CLIENT_DUID = Buffer.from('00030001020000000001', 'hex');
const FROM = { address: 'fe80::2%eth0', port: 546 };
const SZTP = 'https://ztp.lab.example:8443';

function setup(opts: { pool?: { start: string; end: string }; leasesPerClient?: number } = {}) {
  let now = 1_000_000;
  const leases = new LeaseTable(6);
  const responder = new ResponderV6({
    serverDuid: SERVER_DUID,
    subnets: buildSubnetsV6([{ prefix: 'fd00:9::/64', pools: [opts.pool ?? { start: 'fd00:9::100', end: 'fd00:9::1ff' }], options: { dns: ['fd00:9::53'], domain: 'lab.example' } }]),
    interfaceAddresses: ['fd00:9::1'],
    policy: { classes: [], reservations: [], sztpUrls: [SZTP], sztpForce: false, defaultLeaseTime: 3600 },
    inventory: { deviceByMac: () => undefined },
    leases,
    now: () => now,
    preferredLifetime: 3000,
    validLifetime: 3600,
    offerHoldMs: 30_000,
    leasesPerClient: opts.leasesPerClient,
  });
  return { responder, leases, advance: (ms: number) => (now += ms) };
}

interface MsgOpts {
  iaids?: number[];
  server?: Buffer | null;
  client?: Buffer | null;
  oro?: number[];
  xid?: number;
}

function message(type: number, o: MsgOpts = {}): Buffer {
  const options: OptionV6[] = [];
  if (o.client !== null) options.push({ code: OptV6.CLIENTID, data: o.client ?? CLIENT_DUID });
  if (o.server) options.push({ code: OptV6.SERVERID, data: o.server });
  for (const iaid of o.iaids ?? []) options.push({ code: OptV6.IA_NA, data: encodeIaNa({ iaid, t1: 0, t2: 0, options: [] }) });
  if (o.oro) {
    const oro = Buffer.alloc(o.oro.length * 2);
    o.oro.forEach((c, i) => oro.writeUInt16BE(c, i * 2));
    options.push({ code: OptV6.ORO, data: oro });
  }
  return encodeV6({ kind: 'client', msgType: type, transactionId: o.xid ?? 0xabcdef, options });
}

function replyOf(out: ReturnType<ResponderV6['handle']>): ClientMessageV6 {
  expect(out.reply, out.log.msg).toBeDefined();
  const m = decodeV6(out.reply!.data);
  if (m.kind !== 'client') throw new Error('expected a client-format reply');
  return m;
}

/** iaid → address (or status code) of each IA_NA in a reply */
function ias(m: ClientMessageV6): Map<number, { address?: string; status?: number; t1: number; t2: number; preferred?: number; valid?: number }> {
  const out = new Map<number, { address?: string; status?: number; t1: number; t2: number; preferred?: number; valid?: number }>();
  for (const o of m.options.filter((x) => x.code === OptV6.IA_NA)) {
    const ia = decodeIaNa(o.data);
    const addr = findV6(ia.options, OptV6.IAADDR);
    const status = findV6(ia.options, OptV6.STATUS_CODE);
    const a = addr ? decodeIaAddr(addr) : undefined;
    out.set(ia.iaid, { t1: ia.t1, t2: ia.t2, ...(a ? { address: a.address, preferred: a.preferred, valid: a.valid } : {}), ...(status ? { status: decodeStatus(status).code } : {}) });
  }
  return out;
}

const codes = (m: ClientMessageV6) => m.options.map((o) => o.code);

describe('DHCPv6 exchanges (RFC 8415 §18.3)', () => {
  it('SOLICIT → ADVERTISE (address held, not bound) → REQUEST → REPLY (bound): same address, ids echoed, lifetimes and T1/T2', () => {
    const { responder, leases } = setup();
    const adv = replyOf(responder.handle(message(MsgV6.SOLICIT, { iaids: [7], xid: 0x111111 }), FROM));
    expect(adv.msgType).toBe(MsgV6.ADVERTISE);
    expect(adv.transactionId).toBe(0x111111);
    expect(findV6(adv.options, OptV6.CLIENTID)).toEqual(CLIENT_DUID);
    expect(findV6(adv.options, OptV6.SERVERID)).toEqual(SERVER_DUID);
    const offered = ias(adv).get(7)!;
    expect(offered.address).toMatch(/^fd00:9::1[0-9a-f]{2}$/);
    expect(leases.forClient(`duid:${CLIENT_DUID.toString('hex')}/7`)?.state).not.toBe('bound');

    const out = responder.handle(message(MsgV6.REQUEST, { iaids: [7], server: SERVER_DUID, xid: 0x222222 }), FROM);
    const reply = replyOf(out);
    expect(reply.msgType).toBe(MsgV6.REPLY);
    expect(reply.transactionId).toBe(0x222222);
    expect(ias(reply).get(7)).toEqual({ address: offered.address, t1: 1500, t2: 2400, preferred: 3000, valid: 3600 });
    expect(out.writes.map((w) => [w.address, w.state])).toEqual([[offered.address, 'bound']]);
    expect(leases.forClient(`duid:${CLIENT_DUID.toString('hex')}/7`)).toMatchObject({ state: 'bound', address: offered.address, mac: '02:00:00:00:00:01' });
    expect(out.events[0]).toMatchObject({ type: 'lease', data: { family: 6, ip: offered.address, mac: '02:00:00:00:00:01' } });
  });

  it('REQUEST addressed to another server (SERVERID not ours) gets no answer', () => {
    const { responder } = setup();
    responder.handle(message(MsgV6.SOLICIT, { iaids: [1] }), FROM);
    const out = responder.handle(message(MsgV6.REQUEST, { iaids: [1], server: Buffer.from('0003000102000000aaaa', 'hex') }), FROM);
    expect(out.reply).toBeUndefined();
    expect(out.writes).toEqual([]);
  });

  it('RENEW extends a binding we hold (same address, new expiry); RENEW of an unknown IA is NoBinding and creates nothing', () => {
    const { responder, leases, advance } = setup();
    responder.handle(message(MsgV6.SOLICIT, { iaids: [1] }), FROM);
    const address = ias(replyOf(responder.handle(message(MsgV6.REQUEST, { iaids: [1], server: SERVER_DUID }), FROM))).get(1)!.address!;
    const first = leases.forClient(`duid:${CLIENT_DUID.toString('hex')}/1`)!.expiresAt;
    advance(1_000_000);
    const renew = responder.handle(message(MsgV6.RENEW, { iaids: [1, 2], server: SERVER_DUID }), FROM);
    const r = ias(replyOf(renew));
    expect(r.get(1)?.address).toBe(address);
    expect(leases.forClient(`duid:${CLIENT_DUID.toString('hex')}/1`)!.expiresAt).toBe(first + 1_000_000);
    expect(r.get(2)).toMatchObject({ status: StatusV6.NoBinding });
    expect(r.get(2)?.address).toBeUndefined();
    expect(leases.forClient(`duid:${CLIENT_DUID.toString('hex')}/2`)).toBeUndefined();
  });

  it('REBIND (no SERVERID) extends a known binding; for bindings we do not hold there is no reply at all', () => {
    const { responder } = setup();
    responder.handle(message(MsgV6.SOLICIT, { iaids: [1] }), FROM);
    const address = ias(replyOf(responder.handle(message(MsgV6.REQUEST, { iaids: [1], server: SERVER_DUID }), FROM))).get(1)!.address!;
    const rebind = replyOf(responder.handle(message(MsgV6.REBIND, { iaids: [1] }), FROM));
    expect(rebind.msgType).toBe(MsgV6.REPLY);
    expect(ias(rebind).get(1)?.address).toBe(address);
    const stranger = responder.handle(message(MsgV6.REBIND, { iaids: [1], client: Buffer.from('00030001020000000099', 'hex') }), FROM);
    expect(stranger.reply).toBeUndefined();
    expect(stranger.counter).toBe('rebind-unknown');
    // REBIND carries no server id (§16.7): one that does is invalid
    expect(responder.handle(message(MsgV6.REBIND, { iaids: [1], server: SERVER_DUID }), FROM).counter).toBe('invalid');
  });

  it('RELEASE frees the address (REPLY Success) and the next client can have it', () => {
    const { responder, leases } = setup({ pool: { start: 'fd00:9::100', end: 'fd00:9::100' } });
    responder.handle(message(MsgV6.SOLICIT, { iaids: [1] }), FROM);
    replyOf(responder.handle(message(MsgV6.REQUEST, { iaids: [1], server: SERVER_DUID }), FROM));
    const other = Buffer.from('00030001020000000002', 'hex');
    expect(ias(replyOf(responder.handle(message(MsgV6.SOLICIT, { iaids: [1], client: other }), FROM))).get(1)).toMatchObject({ status: StatusV6.NoAddrsAvail });
    const release = responder.handle(message(MsgV6.RELEASE, { iaids: [1], server: SERVER_DUID }), FROM);
    const r = replyOf(release);
    expect(r.msgType).toBe(MsgV6.REPLY);
    expect(decodeStatus(findV6(r.options, OptV6.STATUS_CODE)!).code).toBe(StatusV6.Success);
    expect(release.writes).toHaveLength(1);
    expect(leases.forClient(`duid:${CLIENT_DUID.toString('hex')}/1`)?.state).not.toBe('bound');
    expect(ias(replyOf(responder.handle(message(MsgV6.SOLICIT, { iaids: [1], client: other }), FROM))).get(1)?.address).toBe('fd00:9::100');
  });

  it('INFORMATION-REQUEST: options only, no IA_NA and no lease', () => {
    const { responder, leases } = setup();
    const out = responder.handle(message(MsgV6.INFORMATION_REQUEST, { oro: [OptV6.DNS_SERVERS, OptV6.DOMAIN_LIST] }), FROM);
    const r = replyOf(out);
    expect(r.msgType).toBe(MsgV6.REPLY);
    expect(codes(r)).toEqual([OptV6.CLIENTID, OptV6.SERVERID, OptV6.DNS_SERVERS, OptV6.DOMAIN_LIST]);
    expect(out.writes).toEqual([]);
    expect(leases.forClient(`duid:${CLIENT_DUID.toString('hex')}/1`)).toBeUndefined();
  });
});

describe('ORO and option 136', () => {
  it('answers exactly what the ORO asks for (RFC 8415 §21.7), in its order; nothing configured is sent unasked', () => {
    const { responder } = setup();
    const none = replyOf(responder.handle(message(MsgV6.SOLICIT, { iaids: [1] }), FROM));
    expect(codes(none)).toEqual([OptV6.CLIENTID, OptV6.SERVERID, OptV6.IA_NA]);
    const asked = replyOf(responder.handle(message(MsgV6.SOLICIT, { iaids: [1], oro: [OptV6.DOMAIN_LIST, OptV6.NTP_SERVER, OptV6.DNS_SERVERS] }), FROM));
    // NTP is not configured: not invented
    expect(codes(asked)).toEqual([OptV6.CLIENTID, OptV6.SERVERID, OptV6.IA_NA, OptV6.DOMAIN_LIST, OptV6.DNS_SERVERS]);
  });

  it('option 136 when asked: the RFC 8572 §8.4 server list (uri-length + URI) with the configured URL', () => {
    const { responder } = setup();
    const r = replyOf(responder.handle(message(MsgV6.SOLICIT, { iaids: [1], oro: [OptV6.SZTP_REDIRECT] }), FROM));
    const opt = findV6(r.options, OptV6.SZTP_REDIRECT);
    expect(opt).toBeDefined();
    expect(opt!.readUInt16BE(0)).toBe(SZTP.length);
    expect(decodeSztpServerList(opt!)).toEqual([SZTP]);
    expect(findV6(replyOf(responder.handle(message(MsgV6.INFORMATION_REQUEST, { oro: [OptV6.SZTP_REDIRECT] }), FROM)).options, OptV6.SZTP_REDIRECT)).toEqual(opt);
  });
});

describe('per-client limits and hostile input', () => {
  it('one message binds at most leasesPerClient IA_NA; the client cannot collect more by asking again', () => {
    const { responder, leases } = setup({ leasesPerClient: 2 });
    const iaids = [1, 2, 3, 4, 5];
    responder.handle(message(MsgV6.SOLICIT, { iaids }), FROM);
    const out = responder.handle(message(MsgV6.REQUEST, { iaids, server: SERVER_DUID }), FROM);
    const r = ias(replyOf(out));
    expect([...r.values()].filter((x) => x.address)).toHaveLength(2);
    expect(out.counter).toBe('client-limit');
    const again = ias(replyOf(responder.handle(message(MsgV6.REQUEST, { iaids: [6, 7], server: SERVER_DUID }), FROM)));
    expect([...again.values()].filter((x) => x.address)).toHaveLength(0);
    expect([...again.values()].map((x) => x.status)).toEqual([StatusV6.NoAddrsAvail, StatusV6.NoAddrsAvail]);
    const boundCount = iaids.concat([6, 7]).filter((i) => leases.forClient(`duid:${CLIENT_DUID.toString('hex')}/${i}`)?.state === 'bound').length;
    expect(boundCount).toBe(2);
  });

  it('SOLICIT without a client id, or with a server id, is dropped (RFC 8415 §16.2); server message types are never answered', () => {
    const { responder } = setup();
    expect(responder.handle(message(MsgV6.SOLICIT, { iaids: [1], client: null }), FROM)).toMatchObject({ counter: 'invalid' });
    expect(responder.handle(message(MsgV6.SOLICIT, { iaids: [1], server: SERVER_DUID }), FROM)).toMatchObject({ counter: 'invalid' });
    for (const type of [MsgV6.ADVERTISE, MsgV6.REPLY, MsgV6.RECONFIGURE]) {
      const out = responder.handle(message(type, { iaids: [1] }), FROM);
      expect(out.reply).toBeUndefined();
      expect(out.counter).toBe('unexpected-type');
    }
  });

  it('malformed datagrams are typed errors (DHCP_*), never a crash, and leave no lease', () => {
    const { responder, leases } = setup();
    const good = message(MsgV6.SOLICIT, { iaids: [1] });
    const cases: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from([MsgV6.SOLICIT, 0, 0]), // shorter than the 4-byte header
      good.subarray(0, good.length - 3), // an option cut short
      Buffer.concat([good.subarray(0, 4), Buffer.from([0, 1, 0xff, 0xff, 0, 1])]), // option length beyond the end
      Buffer.concat([good, Buffer.from([0, OptV6.IA_NA, 0, 4, 0, 0, 0, 9])]), // IA_NA of 4 bytes (needs 12)
      encodeV6({ kind: 'relay', msgType: MsgV6.RELAY_FORW, hopCount: 0, linkAddress: 'fd00:9::1', peerAddress: 'fe80::2', options: [] }), // RELAY-FORW without a relay message
    ];
    for (const bytes of cases) {
      let thrown: unknown;
      try {
        responder.handle(bytes, FROM);
      } catch (err) {
        thrown = err;
      }
      expect(isZtpError(thrown), `${bytes.toString('hex')}: ${String(thrown)}`).toBe(true);
      expect((thrown as { code: string }).code).toMatch(/^DHCP_/);
    }
    expect(leases.forClient(`duid:${CLIENT_DUID.toString('hex')}/1`)).toBeUndefined();
  });
});
