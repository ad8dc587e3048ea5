// Policy and the v4 protocol handler without sockets: PRL-only answers, 143 per profile,
// HTTP boot by architecture, option 82 classes, relay destination, pool exhaustion, hostile input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isZtpError } from '../../src/errors.js';
import { encodeSubOptions, decodeSztpServerList } from '../../src/dhcp/codec/options.js';
import { decodeV4, encodeV4, getOption, type DhcpV4Packet } from '../../src/dhcp/codec/v4.js';
import { LeaseTable } from '../../src/dhcp/leases.js';
import { decide, optionsV4, type Inventory, type PolicyInput } from '../../src/dhcp/policy.js';
import { buildSubnets, replyDestination, ResponderV4 } from '../../src/dhcp/responder-v4.js';
import { parseCidrV4 } from '../../src/dhcp/settings.js';

const inventory: Inventory = {
  deviceByMac: (mac) => (mac === '02:00:00:00:00:01' ? { serial: 'OPI1', profile: 'opi', bootImage: null } : mac === '02:00:00:00:00:02' ? { serial: 'RFC1', profile: 'rfc8572', bootImage: null } : undefined),
};
const policy: Omit<PolicyInput, 'subnet'> = {
  global: { dns: ['10.0.0.53'], boot: { httpUrl: { x64: 'http://img/x64.efi', arm64: 'http://img/aa64.efi' } } },
  classes: [
    { name: 'bf-bmc', match: { vendorClass: ['NVIDIA/BF/BMC'] }, options: { ntp: ['10.0.0.123'] } },
    { name: 'rack7', match: { circuitId: ['rack7-port1'] }, options: { sztp: { urls: ['https://rack7-ztp:9443'], force: true } } },
  ],
  reservations: [],
  sztpUrls: ['https://ztp:8443'],
  sztpForce: false,
  defaultLeaseTime: 600,
};
const facts = (over: Partial<Parameters<typeof decide>[0]> = {}) => ({ family: 4 as const, userClasses: [], arch: [], requested: [], ...over });

describe('policy', () => {
  it('answers only what the PRL asks: no 143 unless requested', () => {
    const d = decide(facts({ mac: '02:00:00:00:00:02', requested: [6] }), policy, inventory);
    expect(optionsV4(d, [6]).map((o) => o.code)).toEqual([6]);
    expect(optionsV4(d, [6, 143]).map((o) => o.code)).toEqual([6, 143]);
  });

  it('chooses the 143 encoding by device profile', () => {
    const opi = optionsV4(decide(facts({ mac: '02:00:00:00:00:01' }), policy, inventory), [143])[0]!;
    expect(opi.data.toString()).toBe('https://ztp:8443/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data');
    const rfc = optionsV4(decide(facts({ mac: '02:00:00:00:00:02' }), policy, inventory), [143])[0]!;
    expect(decodeSztpServerList(rfc.data)).toEqual(['https://ztp:8443']);
  });

  it('matches classes by vendor class and by option 82 circuit-id (forced 143 with a class URL)', () => {
    expect(decide(facts({ vendorClass: 'NVIDIA/BF/BMC' }), policy, inventory).classes).toEqual(['bf-bmc']);
    const d = decide(facts({ circuitId: Buffer.from('rack7-port1') }), policy, inventory);
    expect(d.classes).toEqual(['rack7']);
    const out = optionsV4(d, []);
    expect(out.map((o) => o.code)).toEqual([143]);
    expect(decodeSztpServerList(out[0]!.data)).toEqual(['https://rack7-ztp:9443']);
  });

  it('UEFI HTTP boot: echoes HTTPClient in 60 and picks the image URL by architecture (93)', () => {
    const x64 = decide(facts({ vendorClass: 'HTTPClient:Arch:00016:UNDI:003001', arch: [0x10] }), policy, inventory);
    expect(optionsV4(x64, [60, 67]).map((o) => [o.code, o.data.toString()])).toEqual([[60, 'HTTPClient'], [67, 'http://img/x64.efi']]);
    const arm = decide(facts({ vendorClass: 'HTTPClient:Arch:00019:UNDI:003000', arch: [0x13] }), policy, inventory);
    expect(arm.bootFile).toBe('http://img/aa64.efi');
    // The echo is sent even when 60 was not requested: firmware needs it to accept the offer.
    expect(optionsV4(arm, [67]).map((o) => o.code)).toEqual([67, 60]);
  });
});

function request(type: number, over: Partial<DhcpV4Packet> = {}, extra: { code: number; data: Buffer }[] = []): DhcpV4Packet {
  const chaddr = Buffer.alloc(16);
  Buffer.from([2, 0, 0, 0, 0, 2]).copy(chaddr);
  return { op: 1, htype: 1, hlen: 6, hops: 0, xid: 42, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options: [{ code: 53, data: Buffer.from([type]) }, { code: 55, data: Buffer.from([1, 3, 6, 143]) }, ...extra], ...over };
}

function responder(pool = { start: '10.1.0.10', end: '10.1.0.11' }) {
  let now = 1_000_000;
  const r = new ResponderV4({
    mode: 'server',
    serverId: '10.1.0.1',
    subnets: buildSubnets([{ subnet: '10.1.0.0/24', pools: [pool] }, { subnet: '10.2.0.0/24', pools: [{ start: '10.2.0.50', end: '10.2.0.60' }] }]),
    interfaceAddress: '10.1.0.1',
    policy,
    inventory,
    leases: new LeaseTable(4),
    now: () => now,
    offerHoldMs: 30_000,
    interfaceCidr: parseCidrV4('10.1.0.1/24'),
    relays: ['192.0.2.7'],
  });
  return { r, tick: (ms: number) => (now += ms) };
}

describe('ResponderV4', () => {
  it('DISCOVER → OFFER to the limited broadcast 255.255.255.255:68 (issue 8: firmware drops subnet broadcasts), REQUEST → ACK with a lease row and a history event', () => {
    const { r } = responder();
    const offer = r.handle(request(1));
    expect(offer.reply?.packet.yiaddr).toBe('10.1.0.10');
    expect(offer.reply?.to).toEqual({ address: '255.255.255.255', port: 68 });
    const ack = r.handle(request(3, {}, [{ code: 54, data: Buffer.from([10, 1, 0, 1]) }, { code: 50, data: Buffer.from([10, 1, 0, 10]) }]));
    expect(getOption(ack.reply!.packet, 53)).toEqual(Buffer.from([5]));
    expect(ack.writes).toMatchObject([{ address: '10.1.0.10', state: 'bound', serial: 'RFC1' }]);
    expect(ack.events).toMatchObject([{ serial: 'RFC1', source: 'dhcp', type: 'lease' }]);
  });

  it('a relayed request gets an address from the giaddr subnet, sent unicast to giaddr:67 with option 82 echoed', () => {
    const { r } = responder();
    const o82 = encodeSubOptions([{ code: 1, data: Buffer.from('rack7-port1') }]);
    const out = r.handle(request(1, { giaddr: '10.2.0.1' }, [{ code: 82, data: o82 }]));
    expect(out.reply?.to).toEqual({ address: '10.2.0.1', port: 67 });
    expect(out.reply?.packet.yiaddr).toBe('10.2.0.50');
    expect(getOption(out.reply!.packet, 82)).toEqual(o82);
    expect(getOption(out.reply!.packet, 143)).toBeDefined(); // class rack7 matched on circuit-id
  });

  it('a dry pool gives no offer and a counted warning; a REQUEST for a taken address is NAKed', () => {
    const { r } = responder({ start: '10.1.0.10', end: '10.1.0.10' });
    r.handle(request(1));
    r.handle(request(3, {}, [{ code: 54, data: Buffer.from([10, 1, 0, 1]) }, { code: 50, data: Buffer.from([10, 1, 0, 10]) }]));
    const other = request(1);
    other.chaddr[5] = 9;
    const dry = r.handle(other);
    expect(dry.reply).toBeUndefined();
    expect(dry.counter).toBe('pool-exhausted');
    const steal = request(3, {}, [{ code: 50, data: Buffer.from([10, 1, 0, 10]) }]);
    steal.chaddr[5] = 9;
    expect(getOption(r.handle(steal).reply!.packet, 53)).toEqual(Buffer.from([6]));
  });

  it('RFC 2131 §4.1 destinations: relay → giaddr:67, ciaddr on a served subnet → unicast, NAK → limited broadcast', () => {
    const scope = { subnets: [parseCidrV4('10.1.0.0/24')], relays: ['192.0.2.7'] };
    const p = (giaddr: string, ciaddr: string, flags = 0) => ({ giaddr, ciaddr, flags });
    expect(replyDestination(p('10.1.0.9', '0.0.0.0'), false, scope)).toEqual({ address: '10.1.0.9', port: 67 });
    expect(replyDestination(p('192.0.2.7', '0.0.0.0'), false, scope)).toEqual({ address: '192.0.2.7', port: 67 });
    expect(replyDestination(p('0.0.0.0', '10.1.0.20'), false, scope)).toEqual({ address: '10.1.0.20', port: 68 });
    expect(replyDestination(p('0.0.0.0', '10.1.0.20', 0x8000), false, scope)).toEqual({ address: '10.1.0.20', port: 68 });
    expect(replyDestination(p('0.0.0.0', '0.0.0.0', 0x8000), false, scope)).toEqual({ address: '255.255.255.255', port: 68 });
    expect(replyDestination(p('0.0.0.0', '0.0.0.0'), false, scope)).toEqual({ address: '255.255.255.255', port: 68 });
    expect(replyDestination(p('0.0.0.0', '10.1.0.20'), true, scope)).toEqual({ address: '255.255.255.255', port: 68 });
    expect(replyDestination(p('198.51.100.1', '0.0.0.0'), false, scope)).toEqual({ drop: 'giaddr-unmatched' });
    expect(replyDestination(p('0.0.0.0', '198.51.100.1'), false, scope)).toEqual({ drop: 'ciaddr-foreign' });
  });

  it('no reflection (issue 8): INFORM with a foreign ciaddr and a giaddr matching nothing are dropped and counted', () => {
    const { r } = responder();
    const inform = r.handle(request(8, { ciaddr: '203.0.113.9' }));
    expect(inform.reply).toBeUndefined();
    expect(inform.counter).toBe('ciaddr-foreign');
    const relayed = r.handle(request(1, { giaddr: '203.0.113.1' }));
    expect(relayed.reply).toBeUndefined();
    expect(relayed.counter).toBe('giaddr-unmatched');
    const nak = r.handle(request(3, { giaddr: '203.0.113.1' }, [{ code: 50, data: Buffer.from([10, 1, 0, 99]) }]));
    expect(nak.reply).toBeUndefined();
    // on-subnet INFORM and a configured relay are answered
    expect(r.handle(request(8, { ciaddr: '10.1.0.77' })).reply?.to).toEqual({ address: '10.1.0.77', port: 68 });
    expect(r.handle(request(8, { giaddr: '192.0.2.7', ciaddr: '10.9.9.9' })).reply?.to).toEqual({ address: '192.0.2.7', port: 67 });
  });

  it('hostile packets only ever raise ZtpError from decode + handle', () => {
    const { r } = responder();
    const valid = request(1, {}, [{ code: 93, data: Buffer.from([0, 16]) }, { code: 82, data: Buffer.from([1, 3, 65, 66, 67]) }]);
    fc.assert(
      fc.property(fc.nat(400), fc.nat(255), fc.nat(20), (pos, byte, cut) => {
        const wire = Buffer.from(encodeV4(valid));
        if (pos < wire.length) wire[pos] = byte;
        try {
          r.handle(decodeV4(wire.subarray(0, wire.length - cut)));
        } catch (err) {
          if (!isZtpError(err)) throw err;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('catalogue images for UEFI HTTP boot (suite wiring)', () => {
  it('storeInventory maps a catalogue image name to the per-device image URL, leaves URLs alone', async () => {
    const { storeInventory } = await import('../../src/dhcp/service.js');
    const { openDatabase } = await import('../../src/db/database.js');
    const { DeviceStore } = await import('../../src/devices/store.js');
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    store.upsert({ serial: 'CAT', macs: ['02:00:00:00:00:aa'], bootImage: 'installer.iso' });
    store.upsert({ serial: 'URL', macs: ['02:00:00:00:00:bb'], bootImage: 'http://x/boot.efi', bootImageSha256: 'ab'.repeat(32) });
    const inventory = storeInventory({ store }, (name, mac) => (name === 'installer.iso' ? `http://img:8080/by-mac/${mac}/${name}` : undefined));
    expect(inventory.deviceByMac('02:00:00:00:00:aa')?.bootImage).toBe('http://img:8080/by-mac/02:00:00:00:00:aa/installer.iso');
    expect(inventory.deviceByMac('02:00:00:00:00:bb')?.bootImage).toBe('http://x/boot.efi');
    expect(storeInventory({ store }).deviceByMac('02:00:00:00:00:aa')?.bootImage).toBeNull();
  });
});
