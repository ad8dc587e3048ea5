// DHCPv4 protocol handler (RFC 2131 §4.3): one decoded request in, at most one reply out, plus
// the lease rows and history events the reply depends on. No sockets, no SQLite: the service
// persists `writes`/`events` before sending a reply that acknowledges them.
import type { DhcpReservationConfig, DhcpSubnetV4Config } from './config-schema.js';
import type { NewEvent } from '../devices/store.js';
import { ipv4ToNumber, macToString, numberToIpv4 } from './codec/bytes.js';
import { decodeSubOptions, decodeU16, decodeU16List, decodeUserClassV4, decodeIpv4, encodeU32, RelaySub } from './codec/options.js';
import { BOOTREPLY, BOOTREQUEST, getOption, MESSAGE_TYPE_NAMES, MessageType, Opt, type DhcpOption, type DhcpV4Packet } from './codec/v4.js';
import { decide, describeFacts, optionsV4, type ClientFacts, type Decision, type Inventory, type PolicyInput } from './policy.js';
import { inCidr, parseCidrV4, type CidrV4 } from './settings.js';
import type { LeaseTable} from './leases.js';
import { poolV4, type Lease, type Pool } from './leases.js';
import { ZtpError } from '../errors.js';
import type { ClientRateLimiter } from './limits.js';

export const CLIENT_PORT = 68;
export const SERVER_PORT = 67;

export interface SubnetRuntime {
  config: DhcpSubnetV4Config;
  cidr: CidrV4;
  pools: Pool[];
  reservations: DhcpReservationConfig[];
}

export function buildSubnets(configs: DhcpSubnetV4Config[]): SubnetRuntime[] {
  return configs.map((config) => {
    const cidr = parseCidrV4(config.subnet);
    return { config, cidr, pools: config.pools.map((p) => poolV4(cidr.text, p.start, p.end)), reservations: config.reservations ?? [] };
  });
}

export interface ResponderV4Deps {
  mode: 'server' | 'proxy';
  /** our address: option 54 and the reply source */
  serverId: string;
  /** subnets; the one containing `interfaceAddress` serves requests without giaddr */
  subnets: SubnetRuntime[];
  interfaceAddress: string;
  policy: Omit<PolicyInput, 'subnet'>;
  inventory: Inventory;
  leases: LeaseTable;
  now: () => number;
  offerHoldMs: number;
  declineProbationMs?: number;
  /** the DHCP interface's own subnet: ciaddr there may be unicast to (besides dhcp.subnets) */
  interfaceCidr?: CidrV4 | undefined;
  /** relay agents (giaddr) answered even when no subnet contains them (dhcp.relays) */
  relays?: readonly string[] | undefined;
  /** leases and offers per MAC (client-ids sharing a MAC count together); default 4 */
  leasesPerClient?: number | undefined;
  /** per-client (MAC) packet rate limit; absent = unlimited */
  limiter?: ClientRateLimiter | undefined;
}

export interface Destination {
  address: string;
  port: number;
}

export const LIMITED_BROADCAST = '255.255.255.255';

/** Where unicast replies may go: the served subnets and the relays we answer. */
export interface ReplyScope {
  subnets: readonly CidrV4[];
  relays: readonly string[];
}

/**
 * RFC 2131 §4.1, "If the 'giaddr' field in a DHCP message from a client is non-zero, the server
 * sends any return messages to the 'DHCP server' port on the BOOTP relay agent whose address
 * appears in 'giaddr'. If the 'giaddr' field is zero and the 'ciaddr' field is nonzero, then the
 * server unicasts DHCPOFFER and DHCPACK messages to the address in 'ciaddr'. If 'giaddr' is zero
 * and 'ciaddr' is zero, and the broadcast bit is set, then the server broadcasts DHCPOFFER and
 * DHCPACK messages to 0xffffffff. If the broadcast bit is not set and 'giaddr' is zero and
 * 'ciaddr' is zero, then the server unicasts DHCPOFFER and DHCPACK messages to the client's
 * hardware address and 'yiaddr' address. In all cases, when 'giaddr' is zero, the server
 * broadcasts any DHCPNAK messages to 0xffffffff."
 *
 * Unicast to an unconfigured client's hardware address needs an ARP entry we cannot write
 * without raw sockets, so that case is a limited broadcast too (what dnsmasq does without
 * --dhcp-broadcast support). No reflection: a unicast destination must be a relay we serve (a
 * subnet contains giaddr, or it is configured) or a ciaddr on a served subnet; anything else is
 * dropped with a counter, since the source of a UDP request proves nothing.
 */
export function replyDestination(p: Pick<DhcpV4Packet, 'giaddr' | 'ciaddr' | 'flags'>, nak: boolean, scope: ReplyScope): Destination | { drop: string } {
  if (p.giaddr !== ZERO) {
    if (scope.relays.includes(p.giaddr)) return { address: p.giaddr, port: SERVER_PORT };
    const g = ipv4ToNumber(p.giaddr);
    return scope.subnets.some((c) => inCidr(g, c)) ? { address: p.giaddr, port: SERVER_PORT } : { drop: 'giaddr-unmatched' };
  }
  if (nak || p.ciaddr === ZERO) return { address: LIMITED_BROADCAST, port: CLIENT_PORT };
  const c = ipv4ToNumber(p.ciaddr);
  return scope.subnets.some((s) => inCidr(c, s)) ? { address: p.ciaddr, port: CLIENT_PORT } : { drop: 'ciaddr-foreign' };
}

/** Log fields, or a function building them when the line is actually written. */
export type LogFields = Record<string, unknown> | (() => Record<string, unknown>);

export interface V4Outcome {
  reply?: { packet: DhcpV4Packet; to: Destination; maxSize: number };
  writes: Lease[];
  events: NewEvent[];
  /** one log line per decision (mac, xid, classes, result) */
  log: { level: 'info' | 'warn' | 'debug'; msg: string; fields: LogFields };
  /** counter name when nothing is sent for a reason worth counting */
  counter?: string;
}

export function clientKeyV4(p: DhcpV4Packet, hw = macToString(p.chaddr, 0, p.hlen)): string {
  const id = getOption(p, Opt.CLIENT_ID);
  if (id && id.length > 0) return `id:${id.toString('hex')}`;
  return `mac:${hw}`;
}

/** Facts for policy; sub-decoders throw ZtpError on malformed options (the packet is dropped). */
export function factsV4(p: DhcpV4Packet, hw?: string): ClientFacts {
  const vendor = getOption(p, Opt.VENDOR_CLASS);
  const user = getOption(p, Opt.USER_CLASS);
  const arch = getOption(p, Opt.CLIENT_ARCH);
  const id = getOption(p, Opt.CLIENT_ID);
  const relay = getOption(p, Opt.RELAY_AGENT_INFO);
  const subs = relay ? decodeSubOptions(relay) : [];
  return {
    family: 4,
    mac: p.htype === 1 && p.hlen === 6 ? (hw ?? macToString(p.chaddr)) : undefined,
    clientId: id && id.length > 0 ? id.toString('hex') : undefined,
    vendorClass: vendor?.toString('latin1'),
    userClasses: user ? decodeUserClassV4(user) : [],
    arch: arch ? decodeU16List(arch, 'client architecture (93)') : [],
    circuitId: subs.find((s) => s.code === RelaySub.CIRCUIT_ID)?.data,
    remoteId: subs.find((s) => s.code === RelaySub.REMOTE_ID)?.data,
    requested: [...(getOption(p, Opt.PARAMETER_REQUEST_LIST) ?? [])],
  };
}

const ZERO = '0.0.0.0';

export class ResponderV4 {
  private readonly scope: ReplyScope;
  private readonly limit: number;
  /** option values every reply carries, encoded once (the encoder copies them) */
  private readonly serverIdBytes: Buffer;
  private readonly typeBytes = new Map<number, Buffer>();
  private readonly timeBytes = new Map<number, Buffer[]>();
  private readonly maskBytes = new Map<SubnetRuntime, Buffer>();

  constructor(private readonly deps: ResponderV4Deps) {
    const cidrs = deps.subnets.map((s) => s.cidr);
    if (deps.interfaceCidr) cidrs.push(deps.interfaceCidr);
    this.scope = { subnets: cidrs, relays: deps.relays ?? [] };
    this.limit = deps.leasesPerClient ?? 4;
    this.serverIdBytes = Buffer.from(deps.serverId.split('.').map(Number));
    for (const t of [MessageType.OFFER, MessageType.ACK, MessageType.NAK]) this.typeBytes.set(t, Buffer.from([t]));
    for (const s of deps.subnets) deps.leases.register(s.pools);
    for (const s of deps.subnets) {
      for (const r of [...s.reservations, ...deps.policy.reservations]) {
        if (r.address && inCidr(ipv4ToNumber(r.address), s.cidr)) deps.leases.reserve(r.address, r.clientId ? `id:${r.clientId.replace(/[:\s-]/g, '').toLowerCase()}` : `mac:${r.mac!.toLowerCase().replace(/-/g, ':')}`);
      }
    }
  }

  private readonly policies = new Map<SubnetRuntime | undefined, PolicyInput>();

  /** The policy input for a subnet: the same for every packet, built once. */
  private policyFor(subnet: SubnetRuntime | undefined): PolicyInput {
    let input = this.policies.get(subnet);
    if (!input) {
      input = { ...this.deps.policy, serverAddress: this.deps.serverId, subnet: subnet?.config.options, reservations: [...(subnet?.reservations ?? []), ...this.deps.policy.reservations] };
      this.policies.set(subnet, input);
    }
    return input;
  }

  private subnetFor(p: DhcpV4Packet): SubnetRuntime | undefined {
    const probe = p.giaddr !== ZERO ? p.giaddr : this.deps.interfaceAddress;
    const n = ipv4ToNumber(probe);
    return this.deps.subnets.find((s) => inCidr(n, s.cidr)) ?? (p.giaddr === ZERO && this.deps.subnets.length === 1 ? this.deps.subnets[0] : undefined);
  }

  /** Throws only ZtpError (malformed options); the caller counts and rate-limits those. */
  handle(p: DhcpV4Packet): V4Outcome {
    if (p.op !== BOOTREQUEST) throw new ZtpError('DHCP_WRONG_OP', `op ${p.op} is not BOOTREQUEST`, { details: { op: p.op } });
    const typeOpt = getOption(p, Opt.MESSAGE_TYPE);
    const type = typeOpt?.length === 1 ? typeOpt[0]! : 0;
    const name = MESSAGE_TYPE_NAMES[type];
    // hlen <= 16 (the decoder checks): the hardware address, formatted once per packet.
    const hw = macToString(p.chaddr, 0, p.hlen);
    if (this.deps.limiter && !this.deps.limiter.admit(hw, this.deps.now())) {
      return { writes: [], events: [], log: { level: 'debug', msg: 'DHCP: client over its packet rate; dropped', fields: { xid: p.xid } }, counter: 'rate-limited' };
    }
    const facts = factsV4(p, hw);
    const base = { xid: p.xid, mac: facts.mac, type: name ?? type, giaddr: p.giaddr !== ZERO ? p.giaddr : undefined };
    const none = (msg: string, counter?: string, level: 'info' | 'debug' | 'warn' = 'debug'): V4Outcome => ({ writes: [], events: [], log: { level, msg, fields: base }, ...(counter ? { counter } : {}) });
    if (!name) return none('DHCP: packet without a valid message type (53): BOOTP is not served', 'no-message-type', 'debug');
    // No reflection: decide where a reply would go before doing any work for it.
    const early = replyDestination(p, false, this.scope);
    if ('drop' in early && (p.giaddr !== ZERO || type === MessageType.INFORM)) {
      return none(early.drop === 'giaddr-unmatched' ? 'DHCP: relay (giaddr) matches no subnet nor dhcp.relays; dropped' : 'DHCP: INFORM from an address on no served subnet; dropped', early.drop, 'debug');
    }
    const subnet = this.subnetFor(p);
    const decision = decide(facts, this.policyFor(subnet), this.deps.inventory);
    // Log fields are built only when a line is written (per-packet lines are debug).
    const fields = () => ({ ...base, ...describeFacts(facts), classes: decision.classes, serial: decision.device?.serial, subnet: subnet?.cidr.text });
    const ctx: Ctx = { p, facts, decision, subnet, fields, clientKey: clientKeyV4(p, hw) };
    if (this.deps.mode === 'proxy') return this.proxy(ctx, type);
    switch (type) {
      case MessageType.DISCOVER:
        return this.discover(ctx);
      case MessageType.REQUEST:
        return this.request(ctx);
      case MessageType.INFORM:
        return this.inform(ctx);
      case MessageType.RELEASE:
        return this.release(ctx);
      case MessageType.DECLINE:
        return this.decline(ctx);
      default:
        // OFFER, ACK, NAK are server messages: a client never sends them (RFC 2131 §4.1).
        return { writes: [], events: [], log: { level: 'debug', msg: `DHCP: ignoring ${name} from a client`, fields }, counter: 'unexpected-type' };
    }
  }

  private proxy(ctx: Ctx, type: number): V4Outcome {
    const { decision, fields } = ctx;
    if (type === MessageType.INFORM) return this.inform(ctx);
    if (type === MessageType.DISCOVER) {
      if (!decision.proxyOffer) return { writes: [], events: [], log: { level: 'debug', msg: 'DHCP proxy: DISCOVER not for a PXE/HTTP boot client, not answered', fields } };
      // PXE spec §2.2.3 / RFC 4578: a proxyDHCP offer carries no address (yiaddr 0) and the vendor class.
      const packet = this.reply(ctx, MessageType.OFFER, ZERO, undefined);
      return this.send(ctx, packet, 'DHCP proxy: OFFER (options only)', { type: 'options', data: { offer: true } });
    }
    // REQUEST/RELEASE/DECLINE belong to the address server beside us.
    return { writes: [], events: [], log: { level: 'debug', msg: 'DHCP proxy: address messages are left to the address server', fields } };
  }

  private discover(ctx: Ctx): V4Outcome {
    const { p, subnet, fields, clientKey, decision } = ctx;
    if (!subnet) return { writes: [], events: [], log: { level: 'warn', msg: 'DHCP: no subnet configured for this request (giaddr/interface); no offer', fields }, counter: 'no-subnet' };
    const now = this.deps.now();
    const requested = optIp(p, Opt.REQUESTED_IP);
    const pools = this.poolsFor(subnet, decision);
    if (this.overLimit(ctx, now)) return { writes: [], events: [], log: { level: 'warn', msg: `DHCP: client (MAC) already holds ${this.limit} leases/offers; no offer`, fields }, counter: 'client-limit' };
    const address = this.deps.leases.allocate(pools, clientKey, now, requested);
    if (!address) return { writes: [], events: [], log: { level: 'warn', msg: 'DHCP: address pool exhausted; no offer', fields }, counter: 'pool-exhausted' };
    this.deps.leases.hold(address, clientKey, now + this.deps.offerHoldMs, now, ctx.facts.mac);
    const packet = this.reply(ctx, MessageType.OFFER, address, decision.leaseTime);
    return this.send(ctx, packet, 'DHCP: OFFER', { type: 'offer', data: {} }, { ip: address });
  }

  /** A new lease or offer for this client key would exceed the per-MAC limit. */
  private overLimit(ctx: Ctx, now: number): boolean {
    const current = this.deps.leases.forClient(ctx.clientKey);
    if (current?.state === 'bound' && current.expiresAt > now) return false;
    return this.deps.leases.ownerLoad(ctx.clientKey, ctx.facts.mac, now) >= this.limit;
  }

  private poolsFor(subnet: SubnetRuntime, decision: Decision): Pool[] {
    const fixed = decision.reservation?.address;
    if (fixed && inCidr(ipv4ToNumber(fixed), subnet.cidr)) return [poolV4(subnet.cidr.text, fixed, fixed)];
    return subnet.pools;
  }

  private request(ctx: Ctx): V4Outcome {
    const { p, subnet, fields, clientKey, decision } = ctx;
    const now = this.deps.now();
    const serverId = optIp(p, Opt.SERVER_ID);
    const requested = optIp(p, Opt.REQUESTED_IP);
    if (serverId !== undefined && serverId !== this.deps.serverId) {
      // SELECTING, another server chosen (RFC 2131 §4.3.2): free our offer, stay silent.
      this.deps.leases.dropHold(clientKey);
      return { writes: [], events: [], log: { level: 'debug', msg: 'DHCP: client selected another server', fields: () => ({ ...fields(), serverId }) } };
    }
    const address = requested ?? (p.ciaddr !== ZERO ? p.ciaddr : undefined);
    if (!address) return this.nak(ctx, 'REQUEST names no address');
    if (!subnet) {
      if (serverId === undefined) return { writes: [], events: [], log: { level: 'debug', msg: 'DHCP: REQUEST for a subnet we do not serve; silent', fields } };
      return this.nak(ctx, 'no subnet for this request');
    }
    const pools = this.poolsFor(subnet, decision);
    const inPool = pools.some((pl) => pl.indexOf(address) >= 0);
    const current = this.deps.leases.forClient(clientKey);
    const ours = current?.address === address && current.state === 'bound';
    if (!inCidr(ipv4ToNumber(address), subnet.cidr) || !inPool) return this.nak(ctx, `address ${address} is not on this subnet/pool`, { ip: address });
    if (!this.deps.leases.isFreeFor(address, clientKey, now)) return this.nak(ctx, `address ${address} belongs to another client`, { ip: address });
    if (!ours && this.overLimit(ctx, now)) return { writes: [], events: [], log: { level: 'warn', msg: `DHCP: client (MAC) already holds ${this.limit} leases; REQUEST ignored`, fields }, counter: 'client-limit' };
    const hostname = getOption(p, Opt.HOSTNAME)?.toString('latin1') ?? current?.hostname ?? null;
    const lease: Lease = {
      family: 4,
      address,
      clientKey,
      mac: ctx.facts.mac ?? null,
      hostname,
      subnet: subnet.cidr.text,
      state: 'bound',
      startsAt: now,
      expiresAt: now + decision.leaseTime * 1000,
      serial: decision.device?.serial ?? null,
    };
    const writes = this.deps.leases.bind(lease);
    const packet = this.reply(ctx, MessageType.ACK, address, decision.leaseTime);
    const isNew = !ours;
    const event = decision.device || isNew ? { type: 'lease', data: { renewal: !isNew } } : undefined;
    const out = this.send(ctx, packet, isNew ? 'DHCP: ACK (new lease)' : 'DHCP: ACK (renewal)', event, { ip: address, leaseTime: decision.leaseTime });
    out.writes = writes;
    return out;
  }

  private inform(ctx: Ctx): V4Outcome {
    // RFC 2131 §4.3.5: ACK with configuration only, no lease time, no yiaddr; unicast to ciaddr.
    const packet = this.reply(ctx, MessageType.ACK, ZERO, undefined);
    packet.ciaddr = ctx.p.ciaddr;
    return this.send(ctx, packet, 'DHCP: ACK to INFORM (options only)', { type: 'options', data: { inform: true } });
  }

  private release(ctx: Ctx): V4Outcome {
    const released = this.deps.leases.release(ctx.p.ciaddr, ctx.clientKey, this.deps.now());
    return { writes: released ? [released] : [], events: [], log: { level: 'debug', msg: released ? 'DHCP: RELEASE' : 'DHCP: RELEASE of an unknown lease ignored', fields: () => ({ ...ctx.fields(), ip: ctx.p.ciaddr }) } };
  }

  private decline(ctx: Ctx): V4Outcome {
    const address = optIp(ctx.p, Opt.REQUESTED_IP);
    if (!address || !ctx.subnet || !ctx.subnet.pools.some((pl) => pl.indexOf(address) >= 0)) {
      return { writes: [], events: [], log: { level: 'debug', msg: 'DHCP: DECLINE without a pool address ignored', fields: ctx.fields } };
    }
    const row = this.deps.leases.decline(address, ctx.clientKey, ctx.subnet.cidr.text, this.deps.now(), this.deps.declineProbationMs ?? 600_000);
    return { writes: [row], events: [], log: { level: 'warn', msg: 'DHCP: DECLINE: address in use on the wire, quarantined', fields: () => ({ ...ctx.fields(), ip: address }) } };
  }

  private nak(ctx: Ctx, reason: string, extra: Record<string, unknown> = {}): V4Outcome {
    const { p } = ctx;
    const packet: DhcpV4Packet = {
      op: BOOTREPLY,
      htype: p.htype,
      hlen: p.hlen,
      hops: 0,
      xid: p.xid,
      secs: 0,
      // RFC 2131 §4.3.2: a NAK through a relay has the broadcast bit set.
      flags: p.giaddr !== ZERO ? p.flags | 0x8000 : p.flags,
      ciaddr: ZERO,
      yiaddr: ZERO,
      siaddr: ZERO,
      giaddr: p.giaddr,
      chaddr: p.chaddr,
      sname: '',
      file: '',
      options: [
        { code: Opt.MESSAGE_TYPE, data: Buffer.from([MessageType.NAK]) },
        { code: Opt.SERVER_ID, data: this.serverIdBytes },
        { code: Opt.MESSAGE, data: Buffer.from(reason, 'utf8') },
        ...relayEcho(p),
      ],
    };
    const to = replyDestination(p, true, this.scope);
    if ('drop' in to) return { writes: [], events: [], log: { level: 'debug', msg: `DHCP: NAK (${reason}) not sent: no allowed destination`, fields: ctx.fields }, counter: to.drop };
    return { reply: { packet, to, maxSize: 576 }, writes: [], events: [], log: { level: 'debug', msg: `DHCP: NAK (${reason})`, fields: () => ({ ...ctx.fields(), ...extra }) }, counter: 'nak' };
  }

  private reply(ctx: Ctx, type: number, yiaddr: string, leaseTime: number | undefined): DhcpV4Packet {
    const { p, decision, facts, subnet } = ctx;
    const options: DhcpOption[] = [
      { code: Opt.MESSAGE_TYPE, data: this.typeBytes.get(type) ?? Buffer.from([type]) },
      { code: Opt.SERVER_ID, data: this.serverIdBytes },
    ];
    if (leaseTime !== undefined) {
      let t = this.timeBytes.get(leaseTime);
      if (!t) {
        t = [encodeU32(leaseTime), encodeU32(Math.floor(leaseTime / 2)), encodeU32(Math.floor((leaseTime * 7) / 8))];
        if (this.timeBytes.size < 64) this.timeBytes.set(leaseTime, t);
      }
      options.push({ code: Opt.LEASE_TIME, data: t[0]! }, { code: Opt.RENEWAL_TIME, data: t[1]! }, { code: Opt.REBINDING_TIME, data: t[2]! });
    }
    if (subnet && yiaddr !== ZERO) {
      let mask = this.maskBytes.get(subnet);
      if (!mask) this.maskBytes.set(subnet, (mask = Buffer.from(numberToIpv4(subnet.cidr.mask).split('.').map(Number))));
      options.push({ code: Opt.SUBNET_MASK, data: mask });
    }
    for (const o of optionsV4(decision, facts.requested)) options.push(o);
    options.push(...relayEcho(p));
    const file = decision.bootFile && Buffer.byteLength(decision.bootFile, 'latin1') <= 127 ? decision.bootFile : '';
    return {
      op: BOOTREPLY,
      htype: p.htype,
      hlen: p.hlen,
      hops: 0,
      xid: p.xid,
      secs: 0,
      flags: p.flags,
      ciaddr: ZERO,
      yiaddr,
      siaddr: decision.nextServer ?? ZERO,
      giaddr: p.giaddr,
      chaddr: p.chaddr,
      sname: decision.serverName ?? '',
      file,
      options,
    };
  }

  private send(ctx: Ctx, packet: DhcpV4Packet, msg: string, event: { type: string; data: Record<string, unknown> } | undefined, extra: Record<string, unknown> = {}): V4Outcome {
    const { p, decision, fields } = ctx;
    const to = replyDestination(p, false, this.scope);
    if ('drop' in to) return { writes: [], events: [], log: { level: 'debug', msg: `${msg} not sent: no allowed destination`, fields }, counter: to.drop };
    const maxSizeOpt = getOption(p, Opt.MAX_MESSAGE_SIZE);
    let maxSize = 576;
    if (maxSizeOpt?.length === 2) maxSize = Math.max(576, decodeU16(maxSizeOpt, 'maximum message size (57)'));
    const sent = packet.options.map((o) => o.code);
    const events: NewEvent[] = [];
    if (event && (decision.device || event.type === 'lease')) {
      events.push({
        serial: decision.device?.serial ?? null,
        source: 'dhcp',
        type: event.type,
        // A fixed-shape literal, then the event's own keys (an object spread first is far slower here).
        data: Object.assign({ mac: ctx.facts.mac, xid: p.xid, ip: packet.yiaddr !== ZERO ? packet.yiaddr : p.ciaddr !== ZERO ? p.ciaddr : undefined, classes: decision.classes, options: sent, sztp: sent.includes(Opt.SZTP_REDIRECT) ? decision.sztp?.encoding : undefined }, event.data),
      });
    }
    return { reply: { packet, to, maxSize }, writes: [], events, log: { level: 'debug', msg, fields: () => ({ ...fields(), ...extra, options: sent }) } };
  }
}

interface Ctx {
  p: DhcpV4Packet;
  facts: ClientFacts;
  decision: Decision;
  subnet: SubnetRuntime | undefined;
  fields: () => Record<string, unknown>;
  clientKey: string;
}

function optIp(p: DhcpV4Packet, code: number): string | undefined {
  const v = getOption(p, code);
  return v ? decodeIpv4(v, `option ${code}`) : undefined;
}

/** RFC 3046 §2.2: the server copies option 82 into its reply, unchanged. */
function relayEcho(p: DhcpV4Packet): DhcpOption[] {
  const v = getOption(p, Opt.RELAY_AGENT_INFO);
  return v ? [{ code: Opt.RELAY_AGENT_INFO, data: v }] : [];
}

