// What a given client gets: pure policy over a small inventory interface (STYLE.md practice 7).
// Scopes merge in order global → subnet → classes (config order) → reservation/device, later
// wins; only options the client requested (PRL 55 / ORO) are returned, except those marked
// `always`, the protocol-required echoes (60 for PXE/HTTP boot) and a forced sZTP redirect.
import type { DhcpClassConfig, DhcpOptionSetConfig, DhcpReservationConfig } from './config-schema.js';
import type { Profile } from '../devices/model.js';
import { hexColon, isIpv4 } from './codec/bytes.js';
import { archFamily, encodeIpv4List, encodeSztpRedirect, encodeU16, type SztpEncoding } from './codec/options.js';
import { Opt } from './codec/v4.js';
import { encodeDomainList, encodeIpv6List, OptV6 } from './codec/v6.js';
import { parseHex } from './settings.js';

/** The device facts policy needs; the DeviceStore adapter provides them. */
export interface DeviceView {
  serial: string;
  profile: Profile;
  bootImage: string | null;
  /** the device's catalogue image as a TFTP file name (by-mac/<mac>/<name>), when TFTP serves it */
  pxeFile?: string | undefined;
}

export interface Inventory {
  deviceByMac(mac: string): DeviceView | undefined;
}

/** What a request says about its client, from either protocol. */
export interface ClientFacts {
  family: 4 | 6;
  mac?: string | undefined;
  /** hex, no separators */
  clientId?: string | undefined;
  vendorClass?: string | undefined;
  userClasses: string[];
  arch: number[];
  circuitId?: Buffer | undefined;
  remoteId?: Buffer | undefined;
  /** PRL (v4 option 55) or ORO (v6 option 6) */
  requested: number[];
}

export interface PolicyInput {
  global?: DhcpOptionSetConfig | undefined;
  subnet?: DhcpOptionSetConfig | undefined;
  classes: DhcpClassConfig[];
  reservations: DhcpReservationConfig[];
  /** default sZTP base URLs (https://host:port) */
  sztpUrls: string[];
  sztpForce: boolean;
  defaultLeaseTime: number;
  /** the suite's TFTP server, when it runs: next-server for PXE clients (address: else serverAddress) */
  tftp?: { address?: string | undefined } | undefined;
  /** our own address on the serving interface (option 54) */
  serverAddress?: string | undefined;
  /** proxy mode: offers carry no address (decides how a PXE offer must look) */
  proxy?: boolean | undefined;
}

export interface Decision {
  device?: DeviceView | undefined;
  reservation?: DhcpReservationConfig | undefined;
  classes: string[];
  merged: DhcpOptionSetConfig;
  leaseTime: number;
  sztp?: { encoding: SztpEncoding; urls: string[]; force: boolean } | undefined;
  /** 'HTTPClient' or 'PXEClient' to echo in option 60 / v6 16 */
  vendorEcho?: 'HTTPClient' | 'PXEClient' | undefined;
  /** boot file name or URL for option 67 / the file field / v6 59 */
  bootFile?: string | undefined;
  nextServer?: string | undefined;
  serverName?: string | undefined;
  proxyOffer: boolean;
  /** a PXE client got a boot file (siaddr / option 66 go with it) */
  pxe?: boolean | undefined;
}

function normHex(s: string): string {
  return s.replace(/^0x/i, '').replace(/[:\s-]/g, '').toLowerCase();
}

function matchesBytes(patterns: string[], value: Buffer | undefined): boolean {
  if (!value) return false;
  return patterns.some((p) => (/^0x/i.test(p) ? normHex(p) === value.toString('hex') : value.toString('latin1') === p));
}

export function classMatches(c: DhcpClassConfig, facts: ClientFacts, device: DeviceView | undefined): boolean {
  const m = c.match;
  if (m.mac && !(facts.mac && m.mac.some((p) => facts.mac!.startsWith(p.toLowerCase().replace(/-/g, ':').replace(/[:*]+$/, ''))))) return false;
  if (m.clientId && !(facts.clientId && m.clientId.some((p) => normHex(p) === facts.clientId))) return false;
  if (m.vendorClass && !(facts.vendorClass !== undefined && m.vendorClass.some((p) => facts.vendorClass!.startsWith(p)))) return false;
  if (m.userClass && !m.userClass.some((u) => facts.userClasses.includes(u))) return false;
  if (m.arch && !m.arch.some((a) => facts.arch.includes(a))) return false;
  if (m.circuitId && !matchesBytes(m.circuitId, facts.circuitId)) return false;
  if (m.remoteId && !matchesBytes(m.remoteId, facts.remoteId)) return false;
  if (m.profile && device?.profile !== m.profile) return false;
  if (m.registered !== undefined && m.registered !== (device !== undefined)) return false;
  return true;
}

function mergeSets(sets: (DhcpOptionSetConfig | undefined)[]): DhcpOptionSetConfig {
  const out: DhcpOptionSetConfig = {};
  // v4 and v6 option codes are separate spaces: 66 in v4 is not 66 in v6.
  const raw = new Map<string, NonNullable<DhcpOptionSetConfig['raw']>[number]>();
  for (const s of sets) {
    if (!s) continue;
    for (const [k, v] of Object.entries(s) as [keyof DhcpOptionSetConfig, unknown][]) {
      if (v === undefined) continue;
      if (k === 'raw') for (const r of v as NonNullable<DhcpOptionSetConfig['raw']>) raw.set(`${r.family ?? 4}/${r.code}`, r);
      else if (k === 'sztp') out.sztp = { ...out.sztp, ...(v as object) };
      else if (k === 'boot') {
        const b = v as NonNullable<DhcpOptionSetConfig['boot']>;
        // arch maps merge key by key so a class can override just arm64
        out.boot = {
          ...out.boot,
          ...b,
          ...(b.httpUrl || out.boot?.httpUrl ? { httpUrl: { ...out.boot?.httpUrl, ...b.httpUrl } } : {}),
          ...(b.pxeFile || out.boot?.pxeFile ? { pxeFile: { ...out.boot?.pxeFile, ...b.pxeFile } } : {}),
        };
      } else (out as Record<string, unknown>)[k] = v;
    }
  }
  if (raw.size > 0) out.raw = [...raw.values()];
  return out;
}

/** global → subnet merged once per policy input (the case of most packets: no class, no reservation); read-only. */
const baseSets = new WeakMap<PolicyInput, DhcpOptionSetConfig>();
function baseSet(input: PolicyInput): DhcpOptionSetConfig {
  let m = baseSets.get(input);
  if (!m) baseSets.set(input, (m = mergeSets([input.global, input.subnet])));
  return m;
}

export function findReservation(reservations: DhcpReservationConfig[], facts: ClientFacts): DhcpReservationConfig | undefined {
  return reservations.find(
    (r) => (r.clientId !== undefined && facts.clientId !== undefined && normHex(r.clientId) === facts.clientId) || (r.mac !== undefined && facts.mac !== undefined && r.mac.toLowerCase().replace(/-/g, ':') === facts.mac),
  );
}

const isUrl = (s: string | null | undefined): s is string => !!s && /^(https?|tftp|ftp):\/\//i.test(s);

export function decide(facts: ClientFacts, input: PolicyInput, inventory: Inventory): Decision {
  const device = facts.mac ? inventory.deviceByMac(facts.mac) : undefined;
  const reservation = findReservation(input.reservations, facts);
  const matched = input.classes.filter((c) => classMatches(c, facts, device));
  const merged = matched.length === 0 && !reservation ? baseSet(input) : mergeSets([input.global, input.subnet, ...matched.map((c) => c.options), reservation?.options]);
  const vendor = facts.vendorClass ?? '';
  const arch = archFamily(facts.arch);
  const decision: Decision = {
    device,
    reservation,
    classes: matched.map((c) => c.name),
    merged,
    leaseTime: merged.leaseTime ?? input.defaultLeaseTime,
    proxyOffer: merged.proxyOffer ?? (vendor.startsWith('PXEClient') || vendor.startsWith('HTTPClient')),
  };
  // sZTP redirect: reservation/class encoding only when set explicitly there; else device profile.
  const sz = merged.sztp ?? {};
  const explicitReservation = reservation?.options?.sztp?.encoding;
  const encoding: SztpEncoding = explicitReservation ?? device?.profile ?? sz.encoding ?? 'rfc8572';
  const urls = sz.urls && sz.urls.length > 0 ? sz.urls : input.sztpUrls;
  if (!sz.disabled && urls.length > 0) decision.sztp = { encoding, urls, force: sz.force ?? input.sztpForce };
  // UEFI HTTP boot (vendor class HTTPClient) and PXE (PXEClient): echo the class, boot file by arch.
  const boot = merged.boot ?? {};
  if (vendor.startsWith('HTTPClient')) {
    const url = (arch && arch !== 'other' ? boot.httpUrl?.[arch] : undefined) ?? boot.httpUrl?.default ?? (isUrl(device?.bootImage) ? device.bootImage : undefined);
    if (url) {
      decision.vendorEcho = 'HTTPClient';
      decision.bootFile = url;
    }
  } else if (vendor.startsWith('PXEClient')) {
    // PXE 2.1 / RFC 4578: the boot file by client architecture (93), else a registered device's
    // own catalogue image over our TFTP server.
    const file = (arch && arch !== 'other' ? boot.pxeFile?.[arch] : undefined) ?? boot.pxeFile?.default ?? device?.pxeFile;
    if (file) {
      // PXE 2.1 §2.2.1 as UEFI firmware implements it (EDK2 PxeBcDhcp4.c, offer types): an offer
      // *with an address* that echoes "PXEClient" but has no option 43 is a "BINL" offer, and the
      // firmware then asks a boot server on port 4011 for the file (we run none: "PXE-E16 No
      // valid offer", seen with OVMF). Without the echo it is a plain DHCP offer whose siaddr and
      // boot file the firmware uses directly (what dnsmasq sends). A proxy offer (no address)
      // is only recognised with the echo.
      if (input.proxy) decision.vendorEcho = 'PXEClient';
      decision.bootFile = file;
      decision.pxe = true;
    }
  } else if (boot.pxeFile?.default ?? boot.httpUrl?.default) {
    // Neither PXE nor UEFI HTTP boot: option 67 / v6 59 still go to clients that ask for them.
    decision.bootFile = boot.pxeFile?.default ?? boot.httpUrl?.default;
  }
  // siaddr (RFC 2131 §2 "next server to use in bootstrap"): configured, else our TFTP server.
  decision.nextServer = boot.nextServer ?? (decision.pxe && input.tftp ? (input.tftp.address ?? input.serverAddress) : undefined);
  decision.serverName = boot.serverName;
  return decision;
}

export interface OptionOut {
  code: number;
  data: Buffer;
}

function rawValue(r: NonNullable<DhcpOptionSetConfig['raw']>[number], family: 4 | 6): Buffer {
  if (r.hex !== undefined) return parseHex(r.hex, `raw option ${r.code}`);
  if (r.text !== undefined) return Buffer.from(r.text, 'utf8');
  return family === 4 ? encodeIpv4List(r.ip ?? []) : encodeIpv6List(r.ip ?? []);
}

/**
 * DHCPv4 options from a decision, filtered by the PRL. Header-level options (53, 54, 51, 1, 58,
 * 59, 82) are the responder's job; this returns the policy's part in PRL order.
 */
/**
 * Encoded option values by the configuration object they come from (config arrays and objects
 * keep their identity between packets), so the per-packet path does not re-encode them. Values
 * are shared: callers copy them into the wire buffer and never write into them.
 */
const encoded = new WeakMap<object, Map<string, Buffer>>();
function memo(source: object, key: string, make: () => Buffer): Buffer {
  let m = encoded.get(source);
  if (!m) encoded.set(source, (m = new Map()));
  let v = m.get(key);
  if (v === undefined) m.set(key, (v = make()));
  return v;
}

export function optionsV4(d: Decision, requested: number[]): OptionOut[] {
  const m = d.merged;
  const candidates = new Map<number, { data: Buffer; always: boolean }>();
  const put = (code: number, data: Buffer, always = false) => candidates.set(code, { data, always });
  if (m.routers?.length) put(Opt.ROUTER, memo(m.routers, 'v4', () => encodeIpv4List(m.routers!)));
  // dns/ntp lists may hold both families (validated per scope): each protocol takes its own.
  const dns = m.dns && memo(m.dns, 'v4', () => encodeIpv4List(m.dns!.filter(isIpv4)));
  if (dns?.length) put(Opt.DNS, dns);
  if (m.domain) put(Opt.DOMAIN_NAME, Buffer.from(m.domain, 'ascii'));
  const ntp = m.ntp && memo(m.ntp, 'v4', () => encodeIpv4List(m.ntp!.filter(isIpv4)));
  if (ntp?.length) put(Opt.NTP, ntp);
  if (m.mtu) put(Opt.MTU, encodeU16(m.mtu));
  for (const r of m.raw ?? []) if ((r.family ?? 4) === 4) put(r.code, memo(r, 'v4', () => rawValue(r, 4)), r.always ?? false);
  if (d.sztp) {
    const { encoding, urls } = d.sztp;
    put(Opt.SZTP_REDIRECT, memo(urls, encoding, () => encodeSztpRedirect(encoding, urls)), d.sztp.force);
  }
  // RFC 4578 §2.3 / UEFI 2.x §24.7: the server identifies a PXE or HTTP boot offer by echoing
  // the vendor class; firmware ignores offers without it, whether or not it asked for 60.
  if (d.vendorEcho) put(Opt.VENDOR_CLASS, Buffer.from(d.vendorEcho, 'ascii'), true);
  if (d.bootFile) put(Opt.BOOTFILE, Buffer.from(d.bootFile, 'utf8'), d.vendorEcho === 'HTTPClient');
  // RFC 2132 §9.4: option 66 names the TFTP server for clients that ask for it (PXE ROMs do).
  if (d.nextServer && d.pxe) put(Opt.TFTP_SERVER, Buffer.from(d.nextServer, 'ascii'));
  return selectRequested(candidates, requested);
}

/**
 * Answer only what was asked (PRL / ORO), in the order asked, plus the options that must go
 * out regardless (forced 143/136, the vendor-class echo firmware looks for).
 */
function selectRequested(candidates: Map<number, { data: Buffer; always: boolean }>, requested: number[]): OptionOut[] {
  const out: OptionOut[] = [];
  const seen = new Set<number>();
  for (const code of requested) {
    const c = candidates.get(code);
    if (c && !seen.has(code)) {
      out.push({ code, data: c.data });
      seen.add(code);
    }
  }
  for (const [code, c] of candidates) if (c.always && !seen.has(code)) out.push({ code, data: c.data });
  return out;
}

/** RFC 5970 §3.1 / UEFI: enterprise 343 (Intel) carries "HTTPClient" in the v6 vendor class. */
export const HTTPCLIENT_ENTERPRISE = 343;

/** DHCPv6 options from a decision, filtered by the ORO (RFC 8415 §21.7). */
export function optionsV6(d: Decision, requested: number[]): OptionOut[] {
  const m = d.merged;
  const candidates = new Map<number, { data: Buffer; always: boolean }>();
  const put = (code: number, data: Buffer, always = false) => candidates.set(code, { data, always });
  const dns = m.dns?.filter((a) => !isIpv4(a));
  if (dns?.length) put(OptV6.DNS_SERVERS, encodeIpv6List(dns));
  if (m.domain) put(OptV6.DOMAIN_LIST, encodeDomainList([m.domain]));
  const ntp = m.ntp?.filter((a) => !isIpv4(a));
  if (ntp?.length) put(OptV6.NTP_SERVER, encodeNtpServersV6(ntp));
  for (const r of m.raw ?? []) if (r.family === 6) put(r.code, rawValue(r, 6), r.always ?? false);
  // RFC 8572 §8.4: option 136 always uses the server-list encoding (the opi agent has no v6).
  if (d.sztp) put(OptV6.SZTP_REDIRECT, encodeSztpRedirect('rfc8572', d.sztp.urls), d.sztp.force);
  if (d.bootFile && isUrl(d.bootFile)) put(OptV6.BOOTFILE_URL, Buffer.from(d.bootFile, 'utf8'), d.vendorEcho === 'HTTPClient');
  return selectRequested(candidates, requested);
}

/**
 * RFC 5908 §4: OPTION_NTP_SERVER (56) is a list of suboptions; NTP_SUBOPTION_SRV_ADDR (1)
 * carries one 16-byte server address.
 *   | suboption-code (1) | suboption-len (16) | IPv6 address (16 bytes) |
 */
export function encodeNtpServersV6(addresses: string[]): Buffer {
  return Buffer.concat(addresses.map((a) => Buffer.concat([Buffer.from([0, 1, 0, 16]), encodeIpv6List([a])])));
}

/** A compact description for logs and history events. */
export function describeFacts(f: ClientFacts): Record<string, unknown> {
  return {
    mac: f.mac,
    clientId: f.clientId,
    vendorClass: f.vendorClass,
    userClass: f.userClasses.length ? f.userClasses : undefined,
    arch: f.arch.length ? f.arch : undefined,
    circuitId: f.circuitId ? hexColon(f.circuitId) : undefined,
    remoteId: f.remoteId ? hexColon(f.remoteId) : undefined,
  };
}
