// The DHCP service: UDP sockets (the adapters) around the pure responders. Decoding and handling
// never throw out of a socket handler: ZtpErrors are counted and logged at a limited rate,
// anything else is counted as internal and logged. Lease rows and history events are group
// committed: everything produced within GROUP_COMMIT_MS (or GROUP_COMMIT_MAX rows) goes in one
// SQLite transaction, and the replies that acknowledge them (ACKs) are sent only after it commits.
//
// dhcp.interface may name several interfaces. Each has its own sockets bound to the device
// (SO_BINDTOIFINDEX, src/dhcp/bind-device.ts), so a broadcast DISCOVER is known to come from
// that interface and its reply leaves through it; lease tables, limits, pools and the group
// commit are shared. Each interface may come and go (a bridge whose tap appears later, a link
// without carrier, an address added after start): it waits with back-off, logs once while
// waiting, starts when it is usable, and is watched afterwards (address change → sockets
// rebound; gone → waiting again). Its state is what readiness reports. Per-packet lines are
// debug; a summary of the counters goes out at info every dhcp.summaryInterval seconds.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { ListenInfo, Service, SuiteContext } from '../service.js';
import { errorMessage, isZtpError } from '../errors.js';
import { RateLimitedLog } from '../log.js';
import type { NewEvent } from '../devices/store.js';
import { ipv4ToNumber } from './codec/bytes.js';
import { decodeV4, encodeV4, getOption, MESSAGE_TYPE_NAMES, Opt, type DhcpV4Packet } from './codec/v4.js';
import { MSG_V6_NAMES } from './codec/v6.js';
import { LeaseTable, SqliteLeasePersistence, type Lease } from './leases.js';
import type { Inventory, PolicyInput } from './policy.js';
import { buildSubnets, CLIENT_PORT, LIMITED_BROADCAST, ResponderV4, SERVER_PORT, type V4Outcome } from './responder-v4.js';
import { ALL_DHCP_RELAY_AGENTS_AND_SERVERS, buildSubnetsV6, ResponderV6, type V6Outcome } from './responder-v6.js';
import { dhcpInterfaces, inCidr, parseCidrV4 } from './settings.js';
import { ClientRateLimiter } from './limits.js';
import { bindToDevice } from './bind-device.js';

// Counter keys per DHCP message type ('rx:DISCOVER', 'tx:OFFER', 'v6-rx:SOLICIT', ...), built
// once: counting by type costs a lookup per packet, no string building.
const V4_KEYS = { rx: new Map<number, string>(), tx: new Map<number, string>() };
for (const [n, name] of Object.entries(MESSAGE_TYPE_NAMES)) {
  V4_KEYS.rx.set(Number(n), `rx:${name}`);
  V4_KEYS.tx.set(Number(n), `tx:${name}`);
}
const V6_RX_KEYS: Record<number, string> = Object.fromEntries(Object.entries(MSG_V6_NAMES).map(([n, name]) => [n, `v6-rx:${name}`]));
const V6_TX_KEYS: Record<number, string> = Object.fromEntries(Object.entries(MSG_V6_NAMES).map(([n, name]) => [n, `v6-tx:${name}`]));

function typeKey(p: DhcpV4Packet, dir: 'rx' | 'tx'): string {
  const t = getOption(p, Opt.MESSAGE_TYPE);
  return (t?.length === 1 ? V4_KEYS[dir].get(t[0]!) : undefined) ?? `${dir}:BOOTP`;
}

export type DhcpServiceContext = Pick<SuiteContext, 'config' | 'log' | 'db' | 'store' | 'clock' | 'publicHost'>;

export type DhcpStateName = 'disabled' | 'waiting' | 'running' | 'stopped';

/** One served interface. */
export interface DhcpInterfaceState {
  state: DhcpStateName;
  interface: string;
  /** why not running (waiting/disabled) */
  reason?: string;
  /** the interface IPv4 address in use (running) */
  address?: string;
  /** the sockets (running) */
  listen?: ListenInfo[];
  /** ISO time of the last change */
  since: string;
}

/**
 * The service: running when every interface is, waiting while any waits (its reason, prefixed by
 * the interface name when there are several), disabled when one cannot be served at all.
 * `interface` is dhcp.interface as configured; `interfaces` has one entry per interface.
 */
export interface DhcpState extends DhcpInterfaceState {
  interfaces?: DhcpInterfaceState[];
}

export interface DhcpService extends Service {
  /** drop and reply counters, for metrics and tests */
  stats(): Record<string, number>;
  /** for readiness and `ztp serve` output */
  state(): DhcpState;
}

/** What the service needs to know about its interface; the default reads the kernel's view. */
export type InterfaceProbe = (name: string) => { usable: true; addrs: NetworkInterfaceInfo[] } | { usable: false; reason: string };

function sysfs(name: string, file: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Usable = exists, administratively up, has carrier (where the kernel reports it) and an IPv4 address. */
export const linuxInterfaceProbe: InterfaceProbe = (name) => {
  const addrs = networkInterfaces()[name];
  const operstate = sysfs(name, 'operstate');
  if (!addrs && operstate === undefined) return { usable: false, reason: `interface ${name} does not exist` };
  const flags = sysfs(name, 'flags');
  if (flags !== undefined && (parseInt(flags, 16) & 1) === 0) return { usable: false, reason: `interface ${name} is down` };
  // carrier reads 0 without link; "unknown" operstate (tun, dummy) has no carrier notion.
  if (sysfs(name, 'carrier') === '0' || operstate === 'down' || operstate === 'lowerlayerdown') return { usable: false, reason: `interface ${name} has no carrier` };
  if (!addrs?.some((a) => a.family === 'IPv4')) return { usable: false, reason: `interface ${name} has no IPv4 address` };
  return { usable: true, addrs };
};

export interface DhcpServiceOptions {
  imageUrlFor?: ImageUrlResolver;
  /** a catalogue image name → its per-device TFTP file name (PXE), when TFTP serves it */
  tftpPathFor?: ImageUrlResolver;
  probe?: InterfaceProbe;
  /** ties a bound socket to an interface (default: SO_BINDTOIFINDEX, src/dhcp/bind-device.ts) */
  bindDevice?: (socket: Socket, name: string) => void;
  /** back-off while waiting for the interface, and how often a running one is re-checked (ms) */
  retry?: { initialMs: number; maxMs: number; watchMs: number };
}

/** The bootstrap server's base URL as devices reach it (IPv6 literals bracketed). */
export function defaultSztpUrls(ctx: DhcpServiceContext): string[] {
  const d = ctx.config.dhcp;
  if (d.sztpUrls) return d.sztpUrls.split(',').map((u) => u.trim()).filter(Boolean);
  if (!ctx.config.bootstrap.enabled || !ctx.publicHost) return [];
  const host = ctx.publicHost.includes(':') && !ctx.publicHost.startsWith('[') ? `[${ctx.publicHost}]` : ctx.publicHost;
  return [`https://${host}:${ctx.config.bootstrap.port}`];
}

export function policyInput(ctx: DhcpServiceContext): Omit<PolicyInput, 'subnet'> {
  const d = ctx.config.dhcp;
  const tftp = ctx.config.tftp.enabled ? { address: ctx.config.tftp.host !== '0.0.0.0' ? ctx.config.tftp.host : undefined } : undefined;
  return { global: d.options, classes: d.classes, reservations: d.reservations, sztpUrls: defaultSztpUrls(ctx), sztpForce: d.sztpForce, defaultLeaseTime: d.leaseTime, tftp, proxy: d.mode === 'proxy' };
}

/** Turns a device's catalogue image name into the URL its firmware fetches (option 67 / 59). */
export type ImageUrlResolver = (name: string, mac: string) => string | undefined;

export function storeInventory(ctx: Pick<SuiteContext, 'store'>, imageUrlFor?: ImageUrlResolver, tftpPathFor?: ImageUrlResolver): Inventory {
  return {
    deviceByMac: (mac) => {
      const d = ctx.store.cachedByMac(mac);
      if (!d) return undefined;
      const image = d.bootImage && !/^[a-z][a-z0-9+.-]*:\/\//i.test(d.bootImage) ? (imageUrlFor?.(d.bootImage, mac) ?? null) : d.bootImage;
      const pxeFile = d.bootImage && !/^[a-z][a-z0-9+.-]*:\/\//i.test(d.bootImage) ? tftpPathFor?.(d.bootImage, mac) : undefined;
      return { serial: d.serial, profile: d.profile, bootImage: image, pxeFile };
    },
  };
}

/** How long lease rows and events may wait to share a transaction, and how many may (then at once). */
const GROUP_COMMIT_MS = 4;
const GROUP_COMMIT_MAX = 2048;
/** one reply in this many on a connected socket is sent with a completion callback (error detection) */
const SEND_SAMPLE = 32;
/** relays (giaddr) that get a connected reply socket of their own, per interface */
const MAX_RELAY_SOCKETS = 64;

interface Pending {
  writes: Lease[];
  events: NewEvent[];
  sends: (() => void)[];
}

export function createDhcpService(ctx: DhcpServiceContext, options: DhcpServiceOptions = {}): DhcpService {
  const log = ctx.log.child({ service: 'dhcp' });
  const hostile = new RateLimitedLog(log);
  // A Map: counter names include error codes, and a string-keyed object in dictionary mode costs
  // more per increment than the rest of a packet's bookkeeping.
  const counterMap = new Map<string, number>();
  const count = (name: string) => counterMap.set(name, (counterMap.get(name) ?? 0) + 1);
  const snapshot = (): Record<string, number> => Object.fromEntries(counterMap);
  const probe = options.probe ?? linuxInterfaceProbe;
  const bindDevice = options.bindDevice ?? bindToDevice;
  const retry = options.retry ?? { initialMs: 250, maxMs: 10_000, watchMs: 2_000 };
  const d = ctx.config.dhcp;
  const names = dhcpInterfaces(d.interface);
  const several = names.length > 1;
  let stoppedState: DhcpInterfaceState = { state: 'stopped', interface: d.interface, since: new Date().toISOString() };
  let pending: Pending | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  let persistence: SqliteLeasePersistence | undefined;
  let leases4: LeaseTable | undefined;
  let leases6: LeaseTable | undefined;
  // Shared by every interface: one pool state per address range, one rate budget per client.
  let subnets4: ReturnType<typeof buildSubnets> | undefined;
  let subnets6: ReturnType<typeof buildSubnetsV6> | undefined;
  const newLimiter = () => (d.limits.packetsPerSecond > 0 ? new ClientRateLimiter(d.limits.packetsPerSecond, d.limits.packetBurst) : undefined);
  const limiter4 = newLimiter();
  const limiter6 = newLimiter();
  let summaryTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  const flush = () => {
    clearTimeout(flushTimer);
    const batch = pending;
    pending = undefined;
    if (!batch) return;
    try {
      // Through the store so history listeners (dashboard, SSE) hear of the events once committed.
      ctx.store.transaction(() => {
        persistence!.saveInTransaction(batch.writes);
        if (batch.events.length > 0) ctx.store.recordMany(batch.events);
      });
    } catch (err) {
      // Not committed: do not acknowledge. Clients retry; the log says why.
      count('persist-failed');
      log.error({ err: errorMessage(err), replies: batch.sends.length }, 'DHCP: could not persist leases; replies withheld');
      return;
    }
    for (const send of batch.sends) send();
  };

  const deliver = (outcome: { writes: Lease[]; events: NewEvent[] }, send: (() => void) | undefined) => {
    if (outcome.writes.length === 0 && outcome.events.length === 0) {
      send?.();
      return;
    }
    if (!pending) {
      pending = { writes: [], events: [], sends: [] };
      // Group commit: everything that arrives within GROUP_COMMIT_MS shares one transaction
      // (under load a commit per few packets costs more than the packets); the replies wait for it.
      flushTimer = setTimeout(flush, GROUP_COMMIT_MS);
    }
    for (const w of outcome.writes) pending.writes.push(w);
    for (const e of outcome.events) pending.events.push(e);
    if (send) pending.sends.push(send);
    if (pending.writes.length + pending.events.length >= GROUP_COMMIT_MAX) flush();
  };

  const debugOn = () => log.isLevelEnabled('debug');
  const logOutcome = (o: V4Outcome | V6Outcome, iface: string) => {
    if (o.counter) count(o.counter);
    const level = o.log.level;
    if (level === 'debug' && !debugOn()) return;
    const f = o.log.fields;
    const fields = typeof f === 'function' ? f() : f;
    const withIface = several ? { ...fields, interface: iface } : fields;
    if (level === 'warn') hostile.warn(withIface, o.log.msg);
    else if (level === 'info') log.info(withIface, o.log.msg);
    else log.debug(withIface, o.log.msg);
  };

  const onError = (err: unknown, rinfo: RemoteInfo, family: string, iface: string) => {
    if (isZtpError(err)) {
      count(`drop-${err.code}`);
      hostile.warn({ from: `${rinfo.address}:${rinfo.port}`, family, interface: iface, code: err.code, reason: err.message }, 'DHCP: dropped packet');
    } else {
      count('internal-error');
      log.error({ from: `${rinfo.address}:${rinfo.port}`, family, interface: iface, err: errorMessage(err) }, 'DHCP: internal error handling a packet (dropped)');
    }
  };

  const sendFailed = (to: unknown, err: Error, iface: string) => {
    count('send-failed');
    hostile.warn({ to, interface: iface, err: errorMessage(err) }, 'DHCP: send failed');
  };

  const bind = (s: Socket, port: number, address: string) =>
    new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ port, address, exclusive: false }, () => {
        s.off('error', reject);
        resolve();
      });
    });

  /** One served interface: its sockets, responders and waiting/retry/watch lifecycle. */
  const createInterface = (name: string) => {
    let state: DhcpInterfaceState = { state: 'stopped', interface: name, since: new Date().toISOString() };
    const setState = (next: Omit<DhcpInterfaceState, 'since' | 'interface'>) => {
      state = { ...next, interface: name, since: new Date().toISOString() };
    };
    let sockets: Socket[] = [];
    let timer: NodeJS.Timeout | undefined;
    let backoff = retry.initialMs;
    let running: { address: string; ipv6: string } | undefined;
    let unboundWarned = false;

    /**
     * Ties a bound socket to this interface. With one interface a kernel or binding without
     * SO_BINDTOIFINDEX leaves the socket as it was (the wildcard socket then also hears other
     * interfaces' broadcasts: the behaviour before several interfaces were supported); with
     * several it is an error, since replies could not be told apart.
     */
    const tie = (s: Socket) => {
      try {
        bindDevice(s, name);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (several || code === 'ENODEV') throw err;
        if (!unboundWarned) log.warn({ interface: name, err: errorMessage(err) }, 'DHCP: sockets not bound to the interface (SO_BINDTOIFINDEX unavailable); broadcasts from other interfaces reach the responder too');
        unboundWarned = true;
      }
    };

    const closeSockets = async () => {
      const all = sockets;
      sockets = [];
      running = undefined;
      await Promise.all(all.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    };

    /** Opens the sockets on the interface's current addresses. Throws bind errors. */
    const open = async (iface: NetworkInterfaceInfo[]): Promise<ListenInfo[]> => {
      const addr4 = iface.find((a) => a.family === 'IPv4')!;
      const cidr = parseCidrV4(addr4.cidr ?? `${addr4.address}/32`);
      const serverId = d.serverAddress || addr4.address;
      subnets4 ??= buildSubnets(d.subnets);
      const subnets = subnets4;
      if (d.mode === 'server' && !subnets.some((s) => inCidr(ipv4ToNumber(addr4.address), s.cidr))) {
        log.warn({ interface: name, address: addr4.address }, 'DHCP: no dhcp.subnets entry contains the interface address: only relayed requests get addresses');
      }
      const policy = policyInput(ctx);
      const inventory = storeInventory(ctx, options.imageUrlFor, options.tftpPathFor);
      const now = () => ctx.clock.now().getTime();
      leases4 ??= new LeaseTable(4, persistence!.loadAll(4));
      const responder = new ResponderV4({
        mode: d.mode,
        serverId,
        subnets,
        interfaceAddress: addr4.address,
        policy,
        inventory,
        leases: leases4,
        now,
        offerHoldMs: d.offerHold * 1000,
        interfaceCidr: cidr,
        relays: d.relays,
        leasesPerClient: d.limits.leasesPerClient,
        limiter: limiter4,
      });
      // Three sockets on the DHCP port. The wildcard one, bound to this interface's device,
      // receives the broadcasts (clients without an address send to 255.255.255.255) and unicasts
      // that arrived on this interface only. The one bound to the interface's own address
      // receives unicasts to it (renewals, relays, whatever interface they came in on) and sends
      // unicast replies by the routing table (a relay may sit behind another interface). The
      // third, on the same address and bound to the device, is connected to 255.255.255.255:68:
      // most replies go there, and a connected socket sends them without a per-send destination
      // lookup; bound to the device, the limited broadcast leaves this interface, default route
      // or not. Being connected to that peer, it receives nothing. SO_REUSEADDR lets them (and
      // other interfaces' wildcard sockets) share the port.
      const listen4 = createSocket({ type: 'udp4', reuseAddr: true });
      const reply4 = createSocket({ type: 'udp4', reuseAddr: true });
      const bcast4 = createSocket({ type: 'udp4', reuseAddr: true });
      let bcastConnected = false;
      let sends = 0;
      /**
       * A send on a connected socket. Without a callback it completes synchronously in Node (no
       * request object, no completion callback: half the user CPU of a send). Failures are then
       * only seen on the sampled sends that carry one (1 in SEND_SAMPLE), which is enough to
       * count and log a persistent failure (ENOBUFS, a firewall's EPERM).
       */
      const sendConnected = (s: Socket, bytes: Buffer, to: { address: string; port: number }) => {
        count('sent');
        if (++sends % SEND_SAMPLE === 0) {
          s.send(bytes, (err) => {
            if (err) sendFailed(to, err, name);
          });
        } else s.send(bytes);
      };
      // Relayed replies (giaddr:67) go through a socket connected to the relay, made on its first
      // reply: a relay is one peer that gets many replies, and a connected socket sends them
      // without Node's per-send address lookup (a tick and a callback) and the kernel's per-send
      // route lookup. Bound like reply4, it also receives that relay's requests (a connected
      // socket is the best match for them), which go to the same handler. Relays are few: at
      // most MAX_RELAY_SOCKETS, the others through reply4. null: still connecting.
      const relaySockets = new Map<string, Socket | null>();
      const relaySocket = (address: string): Socket | undefined => {
        const known = relaySockets.get(address);
        if (known !== undefined) return known ?? undefined;
        if (relaySockets.size >= MAX_RELAY_SOCKETS || sockets !== opened) return undefined;
        relaySockets.set(address, null);
        const s = createSocket({ type: 'udp4', reuseAddr: true });
        s.on('error', (err) => log.error({ interface: name, relay: address, err: errorMessage(err) }, 'DHCP: relay socket error'));
        s.on('message', onMessage4);
        opened.push(s);
        bind(s, listen4.address().port, addr4.address).then(
          () =>
            s.connect(SERVER_PORT, address, (err?: Error) => {
              if (err) log.warn({ interface: name, relay: address, err: errorMessage(err) }, 'DHCP: could not connect a relay socket; replies to it go through the unconnected one');
              else if (sockets === opened) relaySockets.set(address, s);
            }),
          (err: unknown) => log.warn({ interface: name, relay: address, err: errorMessage(err) }, 'DHCP: could not bind a relay socket; replies to it go through the unconnected one'),
        );
        return undefined;
      };
      const onMessage4 = (msg: Buffer, rinfo: RemoteInfo) => {
        try {
          count('received');
          const packet = decodeV4(msg);
          count(typeKey(packet, 'rx'));
          const outcome = responder.handle(packet);
          logOutcome(outcome, name);
          const reply = outcome.reply;
          let send: (() => void) | undefined;
          if (reply) {
            const bytes = encodeV4(reply.packet, { maxSize: reply.maxSize, allowOverload: true });
            const txKey = typeKey(reply.packet, 'tx');
            const to = reply.to;
            const connected = to.port === CLIENT_PORT ? (to.address === LIMITED_BROADCAST && bcastConnected ? bcast4 : undefined) : to.port === SERVER_PORT ? relaySocket(to.address) : undefined;
            send = connected
              ? () => {
                  count(txKey);
                  sendConnected(connected, bytes, to);
                }
              : () => {
                  count('sent');
                  count(txKey);
                  reply4.send(bytes, to.port, to.address, (err) => {
                    if (err) sendFailed(to, err, name);
                  });
                };
          }
          deliver(outcome, send);
        } catch (err) {
          onError(err, rinfo, 'v4', name);
        }
      };
      for (const s of [listen4, reply4]) {
        s.on('error', (err) => log.error({ interface: name, err: errorMessage(err) }, 'DHCP: socket error'));
        s.on('message', onMessage4);
      }
      bcast4.on('error', (err) => log.error({ interface: name, err: errorMessage(err) }, 'DHCP: socket error'));
      const opened = sockets;
      opened.push(listen4, reply4, bcast4);
      await bind(listen4, d.port, '0.0.0.0');
      // Between bind and here (the same tick) a broadcast from another interface could be queued.
      tie(listen4);
      await bind(reply4, listen4.address().port, addr4.address);
      reply4.setBroadcast(true);
      await bind(bcast4, listen4.address().port, addr4.address);
      bcast4.setBroadcast(true);
      tie(bcast4);
      await new Promise<void>((resolve) =>
        bcast4.connect(CLIENT_PORT, LIMITED_BROADCAST, (err?: Error) => {
          // Without it, broadcasts go through reply4 like every other reply.
          if (err) log.warn({ interface: name, err: errorMessage(err) }, 'DHCP: could not connect the broadcast socket; using the unconnected one');
          else bcastConnected = true;
          resolve();
        }),
      );
      const listen: ListenInfo[] = [{ service: 'dhcp', protocol: 'udp4', address: serverId, port: listen4.address().port }];
      log.info({ interface: name, serverId, port: listen4.address().port, mode: d.mode, subnets: d.subnets.map((s) => s.subnet), sztp: policy.sztpUrls }, `DHCP responder listening on ${name} (${d.mode} mode)`);

      let ipv6 = '';
      if (d.v6.enabled) {
        const link = iface.find((a) => a.family === 'IPv6' && a.address.startsWith('fe80'));
        const globals = iface.filter((a) => a.family === 'IPv6' && !a.address.startsWith('fe80')).map((a) => a.address);
        ipv6 = globals.join(',');
        const mac = iface.find((a) => a.mac && a.mac !== '00:00:00:00:00:00')?.mac ?? '02:00:00:00:00:01';
        // RFC 8415 §11.4 DUID-LL: type 3, hardware type 1 (Ethernet), link-layer address.
        const serverDuid = Buffer.concat([Buffer.from([0, 3, 0, 1]), Buffer.from(mac.split(':').map((h) => parseInt(h, 16)))]);
        leases6 ??= new LeaseTable(6, persistence!.loadAll(6));
        subnets6 ??= buildSubnetsV6(d.v6.subnets);
        const responder6 = new ResponderV6({
          serverDuid,
          subnets: subnets6,
          interfaceAddresses: globals,
          policy,
          inventory,
          leases: leases6,
          relays: d.relays,
          now,
          preferredLifetime: d.v6.preferredLifetime,
          validLifetime: d.v6.validLifetime,
          offerHoldMs: d.offerHold * 1000,
          leasesPerClient: d.limits.leasesPerClient,
          limiter: limiter6,
        });
        const socket6 = createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true });
        socket6.on('error', (err) => log.error({ interface: name, err: errorMessage(err) }, 'DHCPv6: socket error'));
        socket6.on('message', (msg, rinfo) => {
          try {
            count('v6-received');
            count(msg.length > 0 ? V6_RX_KEYS[msg[0]!] ?? 'v6-rx:unknown' : 'v6-rx:unknown');
            const from = { address: rinfo.address.includes('%') || !rinfo.address.startsWith('fe80') ? rinfo.address : `${rinfo.address}%${name}`, port: rinfo.port };
            const outcome = responder6.handle(msg, from);
            logOutcome(outcome, name);
            const reply = outcome.reply;
            deliver(
              outcome,
              reply
                ? () => {
                    count('v6-sent');
                    count(V6_TX_KEYS[reply.data[0]!] ?? 'v6-tx:unknown');
                    socket6.send(reply.data, reply.to.port, reply.to.address, (err) => {
                      if (err) sendFailed(reply.to, err, name);
                    });
                  }
                : undefined,
            );
          } catch (err) {
            onError(err, rinfo, 'v6', name);
          }
        });
        sockets.push(socket6);
        await bind(socket6, d.v6.port, '::');
        tie(socket6);
        socket6.addMembership(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, `::%${name}`);
        listen.push({ service: 'dhcp', protocol: 'udp6', address: link?.address ?? '::', port: socket6.address().port });
        log.info({ interface: name, port: socket6.address().port, duid: serverDuid.toString('hex') }, `DHCPv6 responder listening on ${name}`);
      }
      running = { address: addr4.address, ipv6 };
      return listen;
    };

    const schedule = (fn: () => void, ms: number) => {
      if (stopped) return;
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
      timer.unref();
    };

    /** One attempt to (re)start on the interface; never throws after the first start. */
    const attempt = async (first: boolean): Promise<ListenInfo[]> => {
      const p = probe(name);
      if (!p.usable) {
        if (state.state !== 'waiting' || state.reason !== p.reason) log.warn({ interface: name, reason: p.reason }, `DHCP: waiting for interface ${name} (${p.reason}); will start when it is usable`);
        setState({ state: 'waiting', reason: p.reason });
        schedule(() => void attempt(false), backoff);
        backoff = Math.min(backoff * 2, retry.maxMs);
        return [];
      }
      try {
        const listen = await open(p.addrs);
        backoff = retry.initialMs;
        setState({ state: 'running', address: running!.address, listen });
        if (!first) log.info({ interface: name, address: running!.address, listen }, `DHCP: interface ${name} is usable; responder started`);
        schedule(watch, retry.watchMs);
        return listen;
      } catch (err) {
        await closeSockets();
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EACCES') {
          setState({ state: 'disabled', reason: 'ports below 1024 need root or CAP_NET_BIND_SERVICE' });
          log.warn({ port: d.port, interface: name }, 'DHCP responder disabled: ports below 1024 need root or CAP_NET_BIND_SERVICE (or set ZTP_DHCP_PORT for a test port)');
          return [];
        }
        if (code === 'EPERM' || code === 'ENOPROTOOPT' || code === 'ENOTSUP') {
          const reason = `cannot bind sockets to ${name}: ${errorMessage(err)} (several interfaces need SO_BINDTOIFINDEX: Linux 5.0+, CAP_NET_RAW before 5.7)`;
          setState({ state: 'disabled', reason });
          log.error({ interface: name, err: errorMessage(err) }, `DHCP responder disabled on ${name}: ${reason}`);
          return [];
        }
        // The address or interface went away between probe and bind (EADDRNOTAVAIL, ENODEV) or a
        // port is taken: retry.
        if (first && code !== 'EADDRNOTAVAIL' && code !== 'ENODEV') throw err;
        const reason = `cannot bind: ${errorMessage(err)}`;
        if (state.reason !== reason) log.warn({ interface: name, err: errorMessage(err) }, 'DHCP: could not open sockets; retrying');
        setState({ state: 'waiting', reason });
        schedule(() => void attempt(false), backoff);
        backoff = Math.min(backoff * 2, retry.maxMs);
        return [];
      }
    };

    /** A running responder re-checks its interface: gone → wait again; new address → rebind. */
    const watch = () => {
      if (stopped) return;
      const p = probe(name);
      const addr4 = p.usable ? p.addrs.find((a) => a.family === 'IPv4')?.address : undefined;
      const ipv6 = p.usable ? p.addrs.filter((a) => a.family === 'IPv6' && !a.address.startsWith('fe80')).map((a) => a.address).join(',') : '';
      if (p.usable && running && addr4 === running.address && (!d.v6.enabled || ipv6 === running.ipv6)) {
        schedule(watch, retry.watchMs);
        return;
      }
      flush();
      if (!p.usable) log.warn({ interface: name, reason: p.reason }, `DHCP: interface ${name} no longer usable (${p.reason}); responder paused`);
      else log.info({ interface: name, was: running?.address, now: addr4 }, `DHCP: interface ${name} address changed; rebinding`);
      void closeSockets().then(() => {
        backoff = retry.initialMs;
        if (!stopped) void attempt(false);
      });
    };

    return {
      name,
      state: () => state,
      start: () => {
        backoff = retry.initialMs;
        return attempt(true);
      },
      async stop(): Promise<void> {
        clearTimeout(timer);
        await closeSockets();
        if (state.state !== 'disabled') setState({ state: 'stopped' });
      },
    };
  };

  const ifaces = names.map(createInterface);

  /** The service's state from its interfaces' (see DhcpState). */
  const aggregate = (): DhcpState => {
    if (ifaces.length === 0) return { ...stoppedState };
    const all = ifaces.map((i) => ({ ...i.state() }));
    const pick = (s: DhcpStateName) => all.find((i) => i.state === s);
    const worst = pick('disabled') ?? pick('waiting') ?? pick('stopped');
    const since = all.map((i) => i.since).sort().at(-1)!;
    if (!several) return { ...all[0]!, interface: d.interface };
    const base: DhcpState = worst
      ? { state: worst.state, interface: d.interface, since, ...(worst.reason ? { reason: `${worst.interface}: ${worst.reason}` } : {}) }
      : { state: 'running', interface: d.interface, since, listen: all.flatMap((i) => i.listen ?? []) };
    return { ...base, interfaces: all };
  };

  let last: Record<string, number> = {};
  const summary = () => {
    const counters = snapshot();
    const changed = Object.keys(counters).some((k) => counters[k] !== last[k]);
    if (changed) {
      const delta: Record<string, number> = {};
      for (const [k, v] of Object.entries(counters)) if (v !== (last[k] ?? 0)) delta[k] = v - (last[k] ?? 0);
      const now = ctx.clock.now().getTime();
      const s = aggregate();
      log.info(
        { interval: d.summaryInterval, delta, totals: { ...counters }, leases: leases4?.activeCount(now), leases6: leases6?.activeCount(now), state: s.state, ...(s.interfaces ? { interfaces: Object.fromEntries(s.interfaces.map((i) => [i.interface, i.state])) } : {}) },
        'DHCP summary',
      );
      last = { ...counters };
    }
  };

  return {
    name: 'dhcp',
    stats: snapshot,
    state: aggregate,
    async start(): Promise<ListenInfo[]> {
      stopped = false;
      if (ifaces.length === 0) {
        stoppedState = { state: 'disabled', interface: d.interface, reason: 'dhcp.interface (ZTP_DHCP_INTERFACE) is empty', since: new Date().toISOString() };
        log.info('DHCP responder disabled: dhcp.interface (ZTP_DHCP_INTERFACE) is empty');
        return [];
      }
      persistence = new SqliteLeasePersistence(ctx.db);
      if (d.summaryInterval > 0) {
        summaryTimer = setInterval(summary, d.summaryInterval * 1000);
        summaryTimer.unref();
      }
      // One after the other: the first bind of a taken port throws, as with one interface.
      const listen: ListenInfo[] = [];
      try {
        for (const i of ifaces) listen.push(...(await i.start()));
      } catch (err) {
        stopped = true;
        await Promise.all(ifaces.map((i) => i.stop()));
        throw err;
      }
      return listen;
    },
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(summaryTimer);
      flush();
      await Promise.all(ifaces.map((i) => i.stop()));
      log.info({ counters: snapshot() }, 'DHCP responder stopped');
    },
  };
}
