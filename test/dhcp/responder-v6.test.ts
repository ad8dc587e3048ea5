// DHCPv6 responder (pure): who gets an answer (no reflection) and how much one packet may take.
import { describe, expect, it } from 'vitest';
import { encodeIaNa, encodeV6, MsgV6, OptV6, decodeV6, findV6, type OptionV6 } from '../../src/dhcp/codec/v6.js';
import { LeaseTable } from '../../src/dhcp/leases.js';
import { buildSubnetsV6, ResponderV6 } from '../../src/dhcp/responder-v6.js';

const policy = { classes: [], reservations: [], sztpUrls: [], sztpForce: false, defaultLeaseTime: 3600 };
const CLIENT_DUID = Buffer.from('00030001020000000001', 'hex');

export function responderV6(pool = { start: 'fd00:9::100', end: 'fd00:9::1ff' }, relays: string[] = []) {
  const now = 1_000_000;
  return new ResponderV6({
    serverDuid: Buffer.from('000300010200000000ff', 'hex'),
    subnets: buildSubnetsV6([{ prefix: 'fd00:9::/64', pools: [pool] }]),
    interfaceAddresses: ['fd00:9::1'],
    policy,
    inventory: { deviceByMac: () => undefined },
    leases: new LeaseTable(6),
    now: () => now,
    preferredLifetime: 3000,
    validLifetime: 3600,
    offerHoldMs: 30_000,
    relays,
  });
}

export function clientMsg(type: number, iaids: number[] = [1], extra: OptionV6[] = []): Buffer {
  const options: OptionV6[] = [{ code: OptV6.CLIENTID, data: CLIENT_DUID }, ...iaids.map((iaid) => ({ code: OptV6.IA_NA, data: encodeIaNa({ iaid, t1: 0, t2: 0, options: [] }) })), ...extra];
  return Buffer.from(encodeV6({ kind: 'client', msgType: type, transactionId: 0x123456, options }));
}

function relayForw(inner: Buffer, linkAddress: string): Buffer {
  return Buffer.from(encodeV6({ kind: 'relay', msgType: MsgV6.RELAY_FORW, hopCount: 0, linkAddress, peerAddress: 'fe80::2', options: [{ code: OptV6.RELAY_MSG, data: inner }] }));
}

const LINK_LOCAL = { address: 'fe80::2%eth0', port: 546 };

describe('ResponderV6 reply scope (issue 8: no reflection)', () => {
  it('answers link-local clients and relays on a served link-address; drops off-link sources and unknown relays', () => {
    const r = responderV6(undefined, ['2001:db8::7']);
    const solicit = clientMsg(MsgV6.SOLICIT);
    expect(r.handle(solicit, LINK_LOCAL).reply?.to).toEqual(LINK_LOCAL);
    const foreign = r.handle(solicit, { address: '2001:db8:bad::1', port: 546 });
    expect(foreign.reply).toBeUndefined();
    expect(foreign.counter).toBe('source-foreign');
    const servedRelay = r.handle(relayForw(solicit, 'fd00:9::1'), { address: '2001:db8:1::1', port: 547 });
    expect(servedRelay.reply?.to).toEqual({ address: '2001:db8:1::1', port: 547 });
    const unknownRelay = r.handle(relayForw(solicit, '2001:db8:99::1'), { address: '2001:db8:1::1', port: 547 });
    expect(unknownRelay.counter).toBe('relay-unmatched');
    expect(r.handle(relayForw(solicit, '2001:db8:99::1'), { address: '2001:db8::7', port: 547 }).reply).toBeDefined();
    const reply = decodeV6(servedRelay.reply!.data);
    expect(reply.kind === 'relay' && findV6(reply.options, OptV6.RELAY_MSG)).toBeTruthy();
  });
});
