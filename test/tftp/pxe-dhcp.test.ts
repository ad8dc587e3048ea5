// DHCP for PXE clients (vendor class "PXEClient", RFC 4578): siaddr/next-server = our TFTP
// server, option 66 when asked, boot file (67 and the `file` field) by client architecture (93),
// else a registered device's per-device TFTP name. No sockets: the policy and ResponderV4.
import { describe, expect, it } from 'vitest';
import { encodeV4, getOption, MessageType, Opt, type DhcpV4Packet } from '../../src/dhcp/codec/v4.js';
import { LeaseTable } from '../../src/dhcp/leases.js';
import { decide, optionsV4, type Inventory, type PolicyInput } from '../../src/dhcp/policy.js';
import { buildSubnets, ResponderV4 } from '../../src/dhcp/responder-v4.js';
import { policyInput, storeInventory } from '../../src/dhcp/service.js';
import { validateConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';

const DEVICE_MAC = '52:54:00:00:00:01';
const inventory: Inventory = {
  deviceByMac: (mac) => (mac === DEVICE_MAC ? { serial: 'PXE1', profile: 'rfc8572', bootImage: 'http://10.98.0.1:8080/by-mac/52:54:00:00:00:01/dev.efi', pxeFile: 'by-mac/52:54:00:00:00:01/dev.efi' } : undefined),
};
const base: Omit<PolicyInput, 'subnet'> = {
  classes: [{ name: 'pxe-x64', match: { vendorClass: ['PXEClient'] }, options: { boot: { pxeFile: { x64: 'grub-x64.efi', arm64: 'grub-aa64.efi' } } } }],
  reservations: [],
  sztpUrls: [],
  sztpForce: false,
  defaultLeaseTime: 600,
  tftp: {},
  serverAddress: '10.98.0.1',
};
// What OVMF sends (captured with dnsmasq --log-dhcp): vendor class, arch 7 (x64 UEFI), PRL with 66/67.
const OVMF_PXE = 'PXEClient:Arch:00007:UNDI:003000';
const facts = (over: Partial<Parameters<typeof decide>[0]> = {}) => ({ family: 4 as const, userClasses: [], arch: [7], requested: [1, 3, 60, 66, 67], vendorClass: OVMF_PXE, ...over });

describe('PXE policy', () => {
  it('a class rule picks the x64 EFI file by option 93; next-server is our TFTP server; 66 and 67 when asked', () => {
    const d = decide(facts({ mac: '52:54:00:99:99:99' }), base, inventory);
    expect(d).toMatchObject({ bootFile: 'grub-x64.efi', nextServer: '10.98.0.1', pxe: true });
    // Regression (OVMF "PXE-E16 No valid offer"): an offer with an address must not echo
    // PXEClient without option 43, or UEFI PXE looks for a BINL server on port 4011.
    expect(optionsV4(d, [60, 66, 67]).map((o) => [o.code, o.data.toString()])).toEqual([
      [66, '10.98.0.1'],
      [67, 'grub-x64.efi'],
    ]);
    // A proxy offer carries no address: there the echo is what makes it a PXE offer.
    expect(optionsV4(decide(facts(), { ...base, proxy: true }, inventory), [67]).map((o) => o.code)).toEqual([67, 60]);
    expect(decide(facts({ arch: [0x0b] }), base, inventory).bootFile).toBe('grub-aa64.efi');
  });

  it('without a class file, a registered device gets its own catalogue image by its per-device TFTP name', () => {
    const d = decide(facts({ mac: DEVICE_MAC }), { ...base, classes: [] }, inventory);
    expect(d).toMatchObject({ bootFile: 'by-mac/52:54:00:00:00:01/dev.efi', nextServer: '10.98.0.1', pxe: true });
  });

  it('a configured nextServer or tftp.host wins; TFTP off and nothing configured: no next-server', () => {
    const configured = { ...base, classes: [{ ...base.classes[0]!, options: { boot: { pxeFile: { x64: 'a.efi' }, nextServer: '10.98.0.9' } } }] };
    expect(decide(facts(), configured, inventory).nextServer).toBe('10.98.0.9');
    expect(decide(facts(), { ...base, tftp: { address: '10.98.0.5' } }, inventory).nextServer).toBe('10.98.0.5');
    expect(decide(facts(), { ...base, tftp: undefined }, inventory).nextServer).toBeUndefined();
    // HTTP boot clients never get a TFTP next-server
    expect(decide(facts({ vendorClass: 'HTTPClient:Arch:00016', mac: DEVICE_MAC }), base, inventory).nextServer).toBeUndefined();
  });

  it('policyInput carries tftp when tftp.enabled; storeInventory maps the device image to its TFTP name', () => {
    const on = validateConfig({ tftp: { enabled: true } });
    expect(policyInput({ config: on } as Parameters<typeof policyInput>[0]).tftp).toEqual({ address: undefined });
    expect(policyInput({ config: validateConfig({}) } as Parameters<typeof policyInput>[0]).tftp).toBeUndefined();
    const db = openDatabase({ file: ':memory:' });
    const store = new DeviceStore(db);
    store.upsert({ serial: 'PXE2', macs: ['52:54:00:00:00:02'], bootImage: 'dev.efi' });
    const inv = storeInventory({ store }, (n, m) => `http://x/by-mac/${m}/${n}`, (n, m) => `by-mac/${m}/${n}`);
    expect(inv.deviceByMac('52:54:00:00:00:02')).toMatchObject({ pxeFile: 'by-mac/52:54:00:00:00:02/dev.efi' });
    db.close();
  });
});

describe('ResponderV4 OFFER to a PXE client', () => {
  it('sets siaddr and the file field beside options 66/67, without the PXEClient echo', () => {
    const subnets = buildSubnets([{ subnet: '10.98.0.0/24', pools: [{ start: '10.98.0.100', end: '10.98.0.150' }] }]);
    const r = new ResponderV4({
      mode: 'server',
      serverId: '10.98.0.1',
      subnets,
      interfaceAddress: '10.98.0.1',
      policy: base,
      inventory,
      leases: new LeaseTable(4),
      now: () => 1_700_000_000_000,
      offerHoldMs: 30_000,
      broadcastAddress: '10.98.0.255',
    } as ConstructorParameters<typeof ResponderV4>[0]);
    const discover: DhcpV4Packet = {
      op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x1234, secs: 0, flags: 0x8000,
      ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
      chaddr: Buffer.from('525400999999', 'hex'), sname: '', file: '',
      options: [
        { code: Opt.MESSAGE_TYPE, data: Buffer.from([MessageType.DISCOVER]) },
        { code: Opt.VENDOR_CLASS, data: Buffer.from(OVMF_PXE) },
        { code: Opt.CLIENT_ARCH, data: Buffer.from([0, 7]) },
        { code: Opt.PARAMETER_REQUEST_LIST, data: Buffer.from([1, 3, 60, 66, 67]) },
      ],
    };
    const out = r.handle(discover);
    const offer = out.reply!.packet;
    expect(offer.siaddr).toBe('10.98.0.1');
    expect(offer.file).toBe('grub-x64.efi');
    expect(getOption(offer, Opt.TFTP_SERVER)?.toString()).toBe('10.98.0.1');
    expect(getOption(offer, Opt.BOOTFILE)?.toString()).toBe('grub-x64.efi');
    expect(getOption(offer, Opt.VENDOR_CLASS)).toBeUndefined();
    expect(encodeV4(offer).length).toBeGreaterThan(240);
  });
});
