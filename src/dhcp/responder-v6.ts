// DHCPv6 protocol handler (RFC 8415 §18.3): SOLICIT/ADVERTISE, REQUEST/RENEW/REBIND/REPLY,
// INFORMATION-REQUEST, RELEASE, DECLINE, CONFIRM, and RELAY-FORW/RELAY-REPL (§19). No sockets.
import type { DhcpSubnetV6Config } from './config-schema.js';
import type { NewEvent } from '../devices/store.js';
import type { LogFields } from './responder-v4.js';
import { macToString } from './codec/bytes.js';
import { decodeU16List } from './codec/options.js';
import {
  decodeIaNa,
  decodeLengthPrefixedList16,
  decodeOro,
  decodeV6,
  decodeVendorClassV6,
  encodeIaAddr,
  encodeIaNa,
  encodeStatus,
  encodeV6,
  encodeVendorClassV6,
  findV6,
  HOP_COUNT_LIMIT,
  MSG_V6_NAMES,
  MsgV6,
  OptV6,
  StatusV6,
  type ClientMessageV6,
  type MessageV6,
  type OptionV6,
} from './codec/v6.js';
import { ZtpError } from '../errors.js';
import type { LeaseTable} from './leases.js';
import { poolV6, type Lease, type Pool } from './leases.js';
import { decide, describeFacts, HTTPCLIENT_ENTERPRISE, optionsV6, type ClientFacts, type Inventory, type PolicyInput } from './policy.js';
import { inCidrV6, parseCidrV6, type CidrV6 } from './settings.js';
import { ipv6ToBytes } from './codec/bytes.js';
import type { ClientRateLimiter } from './limits.js';

export const CLIENT_PORT_V6 = 546;
export const SERVER_PORT_V6 = 547;
export const ALL_DHCP_RELAY_AGENTS_AND_SERVERS = 'ff02::1:2';

export interface SubnetV6Runtime {
  config: DhcpSubnetV6Config;
  cidr: CidrV6;
  pools: Pool[];
}

export function buildSubnetsV6(configs: DhcpSubnetV6Config[]): SubnetV6Runtime[] {
  return configs.map((c) => {
    // Raw options inside a v6 subnet are DHCPv6 codes unless they say otherwise.
    const options = c.options?.raw ? { ...c.options, raw: c.options.raw.map((r) => ({ ...r, family: r.family ?? (6 as const) })) } : c.options;
    const config = { ...c, options };
    return { config, cidr: parseCidrV6(c.prefix), pools: c.pools.map((p) => poolV6(c.prefix, p.start, p.end)) };
  });
}

export interface ResponderV6Deps {
  /** our DUID (option 2) */
  serverDuid: Buffer;
  subnets: SubnetV6Runtime[];
  /** global addresses of the interface, to pick the subnet of unrelayed requests */
  interfaceAddresses: string[];
  policy: Omit<PolicyInput, 'subnet'>;
  inventory: Inventory;
  leases: LeaseTable;
  now: () => number;
  preferredLifetime: number;
  validLifetime: number;
  offerHoldMs: number;
  /** relay agents answered even when their link-address matches no subnet (dhcp.relays) */
  relays?: readonly string[] | undefined;
  /** leases (IA_NA) per DUID and per MAC; also the IA_NA handled per message (default 4) */
  leasesPerClient?: number | undefined;
  /** per-client (DUID) packet rate limit; absent = unlimited */
  limiter?: ClientRateLimiter | undefined;
}

/**
 * The largest reply we send: the IPv6 minimum MTU (1280) less IPv6 and UDP headers, so a reply
 * never needs fragmenting, and one request can never draw a reply of many kilobytes.
 */
export const MAX_V6_REPLY = 1232;

export interface V6Outcome {
  reply?: { data: Buffer; to: { address: string; port: number } };
  writes: Lease[];
  events: NewEvent[];
  log: { level: 'info' | 'warn' | 'debug'; msg: string; fields: LogFields };
  counter?: string;
}

/** DUID-LLT (1) and DUID-LL (3) with hardware type 1 carry the client's MAC (RFC 8415 §11.2, §11.4). */
export function macFromDuid(duid: Buffer): string | undefined {
  if (duid.length < 4 || duid.readUInt16BE(2) !== 1) return undefined;
  const type = duid.readUInt16BE(0);
  if (type === 1 && duid.length === 14) return macToString(duid, 8);
  if (type === 3 && duid.length === 10) return macToString(duid, 4);
  return undefined;
}

/** RFC 6939 client link-layer address option (79) from a relay: type (2) + address. */
const OPTION_CLIENT_LINKLAYER_ADDR = 79;

export function factsV6(msg: ClientMessageV6, relayLinkLayer?: Buffer): ClientFacts {
  const duid = findV6(msg.options, OptV6.CLIENTID);
  const vendor = findV6(msg.options, OptV6.VENDOR_CLASS);
  const user = findV6(msg.options, OptV6.USER_CLASS);
  const arch = findV6(msg.options, OptV6.CLIENT_ARCH_TYPE);
  const oro = findV6(msg.options, OptV6.ORO);
  let mac = duid ? macFromDuid(duid) : undefined;
  if (!mac && relayLinkLayer && relayLinkLayer.length === 8 && relayLinkLayer.readUInt16BE(0) === 1) mac = macToString(relayLinkLayer, 2);
  return {
    family: 6,
    mac,
    clientId: duid?.toString('hex'),
    vendorClass: vendor ? decodeVendorClassV6(vendor).data.map((d) => d.toString('latin1')).join(' ') : undefined,
    userClasses: user ? decodeLengthPrefixedList16(user, 'user class').map((b) => b.toString('latin1')) : [],
    arch: arch ? decodeU16List(arch, 'client architecture (61)') : [],
    requested: oro ? decodeOro(oro) : [],
  };
}

export class ResponderV6 {
  private readonly limit: number;

  constructor(private readonly deps: ResponderV6Deps) {
    this.limit = deps.leasesPerClient ?? 4;
    for (const s of deps.subnets) deps.leases.register(s.pools);
  }

  /** Handles one datagram from `from`; throws only ZtpError (malformed). */
  handle(data: Uint8Array, from: { address: string; port: number }): V6Outcome {
    const msg = decodeV6(data);
    // No reflection: replies go to the datagram's source, so a source off-link must be a relay
    // we serve (configured, or its link-address on a subnet) or a client on a served prefix.
    const source = from.address.replace(/%.*$/, '');
    const onLink = /^fe[89ab]/i.test(source);
    if (msg.kind === 'relay') {
      if (msg.msgType !== MsgV6.RELAY_FORW) return this.ignore(`DHCPv6: ${MSG_V6_NAMES[msg.msgType]} is not for a server`, 'unexpected-type');
      const known = onLink || (this.deps.relays ?? []).includes(source) || (msg.linkAddress !== '::' && this.subnetFor(msg.linkAddress) !== undefined);
      if (!known) return this.ignore('DHCPv6: RELAY-FORW from a relay matching no subnet nor dhcp.relays; dropped', 'relay-unmatched', { from: source });
      return this.relayed(msg, from, 0);
    }
    if (!onLink && !this.onServedPrefix(source)) return this.ignore('DHCPv6: client message from an address on no served prefix; dropped', 'source-foreign', { from: source });
    const out = this.client(msg, undefined, undefined);
    if (out.reply) out.reply.to = from;
    return out;
  }

  private ignore(msg: string, counter?: string, fields: Record<string, unknown> = {}): V6Outcome {
    return { writes: [], events: [], log: { level: 'debug', msg, fields }, ...(counter ? { counter } : {}) };
  }

  private relayed(msg: MessageV6 & { kind: 'relay' }, from: { address: string; port: number }, depth: number): V6Outcome {
    if (depth >= HOP_COUNT_LIMIT || msg.hopCount > HOP_COUNT_LIMIT) throw new ZtpError('DHCP_OPTION_LOOP', 'DHCPv6 relay nesting exceeds the hop count limit');
    const inner = findV6(msg.options, OptV6.RELAY_MSG);
    if (!inner) throw new ZtpError('DHCP_MALFORMED', 'RELAY-FORW without a relay message option');
    const innerMsg = decodeV6(inner);
    let out: V6Outcome;
    if (innerMsg.kind === 'relay') out = this.relayed(innerMsg, from, depth + 1);
    else out = this.client(innerMsg, msg.linkAddress, findV6(msg.options, OPTION_CLIENT_LINKLAYER_ADDR));
    if (!out.reply) return out;
    // RFC 8415 §19.3: wrap in RELAY-REPL with the same hop-count, link and peer addresses, echoing interface-id.
    const options: OptionV6[] = [];
    const ifaceId = findV6(msg.options, OptV6.INTERFACE_ID);
    if (ifaceId) options.push({ code: OptV6.INTERFACE_ID, data: ifaceId });
    options.push({ code: OptV6.RELAY_MSG, data: out.reply.data });
    // The reply goes back to the relay that sent the RELAY-FORW, at its source address and port.
    out.reply = { data: encodeV6({ kind: 'relay', msgType: MsgV6.RELAY_REPL, hopCount: msg.hopCount, linkAddress: msg.linkAddress, peerAddress: msg.peerAddress, options }), to: from };
    return out;
  }

  private onServedPrefix(address: string): boolean {
    try {
      const bytes = ipv6ToBytes(address);
      return this.deps.subnets.some((x) => inCidrV6(bytes, x.cidr));
    } catch {
      return false;
    }
  }

  private subnetFor(linkAddress: string | undefined): SubnetV6Runtime | undefined {
    const probes = linkAddress && linkAddress !== '::' ? [linkAddress] : this.deps.interfaceAddresses;
    for (const probe of probes) {
      let bytes: Buffer;
      try {
        bytes = ipv6ToBytes(probe);
      } catch {
        continue;
      }
      const s = this.deps.subnets.find((x) => inCidrV6(bytes, x.cidr));
      if (s) return s;
    }
    return !linkAddress || linkAddress === '::' ? (this.deps.subnets.length === 1 ? this.deps.subnets[0] : undefined) : undefined;
  }

  private client(msg: ClientMessageV6, linkAddress: string | undefined, linkLayer: Buffer | undefined): V6Outcome {
    const name = MSG_V6_NAMES[msg.msgType] ?? String(msg.msgType);
    const now = this.deps.now();
    const duid = findV6(msg.options, OptV6.CLIENTID);
    if (duid && this.deps.limiter && !this.deps.limiter.admit(duid.toString('hex'), now)) return this.ignore('DHCPv6: client over its packet rate; dropped', 'rate-limited', { xid: msg.transactionId, type: name });
    const facts = factsV6(msg, linkLayer);
    const subnet = this.subnetFor(linkAddress);
    const decision = decide(facts, { ...this.deps.policy, subnet: subnet?.config.options }, this.deps.inventory);
    const fields = { xid: msg.transactionId, type: name, ...describeFacts(facts), classes: decision.classes, serial: decision.device?.serial, subnet: subnet?.config.prefix };
    const serverId = findV6(msg.options, OptV6.SERVERID);
    const forUs = !serverId || serverId.equals(this.deps.serverDuid);

    let replyType: number = MsgV6.REPLY;
    let bind = false;
    switch (msg.msgType) {
      case MsgV6.SOLICIT:
        if (!duid || serverId) return this.ignore('DHCPv6: SOLICIT without client id or with server id dropped (RFC 8415 §16.2)', 'invalid', fields);
        replyType = MsgV6.ADVERTISE;
        break;
      case MsgV6.REQUEST:
      case MsgV6.RENEW:
        if (!duid || !serverId || !forUs) return this.ignore(`DHCPv6: ${name} for another server or without ids`, undefined, fields);
        bind = true;
        break;
      case MsgV6.REBIND:
        if (!duid || serverId) return this.ignore('DHCPv6: REBIND invalid', 'invalid', fields);
        bind = true;
        break;
      case MsgV6.INFORMATION_REQUEST:
        if (!forUs) return this.ignore('DHCPv6: INFORMATION-REQUEST for another server', undefined, fields);
        break;
      case MsgV6.RELEASE:
      case MsgV6.DECLINE:
      case MsgV6.CONFIRM:
        if (!duid) return this.ignore(`DHCPv6: ${name} without client id`, 'invalid', fields);
        if (msg.msgType !== MsgV6.CONFIRM && !forUs) return this.ignore(`DHCPv6: ${name} for another server`, undefined, fields);
        break;
      default:
        // ADVERTISE, REPLY, RECONFIGURE are server messages: never answered.
        return this.ignore(`DHCPv6: ignoring ${name} from a client`, 'unexpected-type', fields);
    }
    const options: OptionV6[] = [];
    if (duid) options.push({ code: OptV6.CLIENTID, data: duid });
    options.push({ code: OptV6.SERVERID, data: this.deps.serverDuid });
    const writes: Lease[] = [];
    const bound: string[] = [];
    const allIa = msg.options.filter((o) => o.code === OptV6.IA_NA);
    // One message handles at most `limit` IA_NA (issue 8: one REBIND with 500 IA_NA took the pool).
    const iaOptions = allIa.slice(0, this.limit);
    const hasIa = iaOptions.length > 0;
    let limited = allIa.length > iaOptions.length;
    if (msg.msgType === MsgV6.SOLICIT || bind) {
      const pref = this.deps.preferredLifetime;
      const valid = this.deps.validLifetime;
      const iaReply = (iaid: number, address: string) =>
        options.push({ code: OptV6.IA_NA, data: encodeIaNa({ iaid, t1: Math.floor(pref / 2), t2: Math.floor((pref * 4) / 5), options: [{ code: OptV6.IAADDR, data: encodeIaAddr({ address, preferred: pref, valid, options: [] }) }] }) });
      const iaStatus = (iaid: number, status: number, text: string) => options.push({ code: OptV6.IA_NA, data: encodeIaNa({ iaid, t1: 0, t2: 0, options: [{ code: OptV6.STATUS_CODE, data: encodeStatus(status, text) }] }) });
      for (const o of iaOptions) {
        const ia = decodeIaNa(o.data);
        const key = `duid:${duid!.toString('hex')}/${ia.iaid}`;
        const existing = this.deps.leases.forClient(key);
        const known = existing?.state === 'bound' && existing.expiresAt > now && subnet !== undefined && subnet.pools.some((p) => p.indexOf(existing.address) >= 0);
        // RFC 8415 §18.3.4/§18.3.5: RENEW and REBIND extend bindings we have; they never create
        // new ones (RENEW answers NoBinding, REBIND leaves the IA out).
        if ((msg.msgType === MsgV6.RENEW || msg.msgType === MsgV6.REBIND) && !known) {
          if (msg.msgType === MsgV6.RENEW) iaStatus(ia.iaid, StatusV6.NoBinding, 'no binding');
          continue;
        }
        let address: string | undefined;
        if (known) address = existing.address;
        else if (subnet && this.deps.leases.ownerLoad(key, facts.mac, now) < this.limit) address = this.deps.leases.allocate(subnet.pools, key, now);
        else if (subnet) limited = true;
        if (!address) {
          iaStatus(ia.iaid, StatusV6.NoAddrsAvail, 'no addresses available');
          continue;
        }
        if (bind) {
          const lease: Lease = { family: 6, address, clientKey: key, mac: facts.mac ?? null, hostname: null, subnet: subnet!.config.prefix, state: 'bound', startsAt: now, expiresAt: now + valid * 1000, serial: decision.device?.serial ?? null };
          writes.push(...this.deps.leases.bind(lease));
        } else {
          this.deps.leases.hold(address, key, now + this.deps.offerHoldMs, now, facts.mac);
        }
        bound.push(address);
        iaReply(ia.iaid, address);
      }
      if (msg.msgType === MsgV6.REBIND && bound.length === 0) {
        return this.ignore('DHCPv6: REBIND for no binding we hold: no reply (RFC 8415 §18.3.5)', limited ? 'client-limit' : 'rebind-unknown', fields);
      }
      if (msg.msgType === MsgV6.SOLICIT && hasIa && bound.length === 0) {
        // RFC 8415 §18.3.1: no addresses at all: ADVERTISE with status NoAddrsAvail.
        options.push({ code: OptV6.STATUS_CODE, data: encodeStatus(StatusV6.NoAddrsAvail, 'no addresses available') });
      }
    } else if (msg.msgType === MsgV6.RELEASE || msg.msgType === MsgV6.DECLINE) {
      for (const o of iaOptions) {
        const ia = decodeIaNa(o.data);
        const key = `duid:${duid!.toString('hex')}/${ia.iaid}`;
        const current = this.deps.leases.forClient(key);
        if (!current) continue;
        const row = msg.msgType === MsgV6.RELEASE ? this.deps.leases.release(current.address, key, now) : this.deps.leases.decline(current.address, key, current.subnet, now, 600_000);
        if (row) writes.push(row);
      }
      options.push({ code: OptV6.STATUS_CODE, data: encodeStatus(StatusV6.Success, 'done') });
    } else if (msg.msgType === MsgV6.CONFIRM) {
      options.push({ code: OptV6.STATUS_CODE, data: encodeStatus(subnet ? StatusV6.Success : StatusV6.NotOnLink, subnet ? 'on link' : 'not on link') });
    }
    const policyOptions = msg.msgType === MsgV6.RELEASE || msg.msgType === MsgV6.DECLINE ? [] : optionsV6(decision, facts.requested);
    options.push(...policyOptions);
    if (decision.vendorEcho === 'HTTPClient' && policyOptions.some((o) => o.code === OptV6.BOOTFILE_URL)) {
      options.push({ code: OptV6.VENDOR_CLASS, data: encodeVendorClassV6({ enterprise: HTTPCLIENT_ENTERPRISE, data: [Buffer.from('HTTPClient')] }) });
    }
    const data = encodeV6({ kind: 'client', msgType: replyType, transactionId: msg.transactionId, options });
    if (data.length > MAX_V6_REPLY) return this.ignore(`DHCPv6: ${MSG_V6_NAMES[replyType]} of ${data.length} bytes exceeds ${MAX_V6_REPLY}; not sent`, 'reply-too-large', fields);
    const sent = options.map((o) => o.code);
    const events: NewEvent[] = [];
    if (bind && bound.length > 0 && (decision.device || writes.length > 0)) {
      events.push({ serial: decision.device?.serial ?? null, source: 'dhcp', type: 'lease', data: { family: 6, mac: facts.mac, xid: msg.transactionId, ip: bound[0], classes: decision.classes, options: sent } });
    } else if (decision.device && policyOptions.length > 0 && msg.msgType === MsgV6.INFORMATION_REQUEST) {
      events.push({ serial: decision.device.serial, source: 'dhcp', type: 'options', data: { family: 6, mac: facts.mac, xid: msg.transactionId, classes: decision.classes, options: sent } });
    }
    return {
      reply: { data, to: { address: '::', port: CLIENT_PORT_V6 } },
      writes,
      events,
      log: { level: 'debug', msg: `DHCPv6: ${MSG_V6_NAMES[replyType]} to ${name}`, fields: { ...fields, ip: bound.length ? bound : undefined, options: sent } },
      ...(limited ? { counter: 'client-limit' } : {}),
    };
  }
}
