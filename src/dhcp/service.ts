// The DHCP service: UDP sockets (the adapters) around the pure responders. Decoding and handling
// never throw out of a socket handler: ZtpErrors are counted and logged at a limited rate,
// anything else is counted as internal and logged. Lease rows and history events are written in
// one SQLite transaction per event-loop turn, before the replies that acknowledge them are sent.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { ListenInfo, Service, SuiteContext } from '../service.js';
import { errorMessage, isZtpError } from '../errors.js';
import { RateLimitedLog } from '../log.js';
import type { NewEvent } from '../devices/store.js';
import { ipv4ToNumber } from './codec/bytes.js';
import { decodeV4, encodeV4 } from './codec/v4.js';
import { LeaseTable, SqliteLeasePersistence, type Lease } from './leases.js';
import type { Inventory, PolicyInput } from './policy.js';
import { buildSubnets, ResponderV4, type V4Outcome } from './responder-v4.js';
import { ALL_DHCP_RELAY_AGENTS_AND_SERVERS, buildSubnetsV6, ResponderV6, type V6Outcome } from './responder-v6.js';
import { inCidr, parseCidrV4 } from './settings.js';

export type DhcpServiceContext = Pick<SuiteContext, 'config' | 'log' | 'db' | 'store' | 'clock' | 'publicHost'>;

export interface DhcpService extends Service {
  /** drop and reply counters, for metrics and tests */
  stats(): Record<string, number>;
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
  return { global: d.options, classes: d.classes, reservations: d.reservations, sztpUrls: defaultSztpUrls(ctx), sztpForce: d.sztpForce, defaultLeaseTime: d.leaseTime };
}

/** Turns a device's catalogue image name into the URL its firmware fetches (option 67 / 59). */
export type ImageUrlResolver = (name: string, mac: string) => string | undefined;

export function storeInventory(ctx: Pick<SuiteContext, 'store'>, imageUrlFor?: ImageUrlResolver): Inventory {
  return {
    deviceByMac: (mac) => {
      const d = ctx.store.cachedByMac(mac);
      if (!d) return undefined;
      const image = d.bootImage && !/^[a-z][a-z0-9+.-]*:\/\//i.test(d.bootImage) ? (imageUrlFor?.(d.bootImage, mac) ?? null) : d.bootImage;
      return { serial: d.serial, profile: d.profile, bootImage: image };
    },
  };
}

interface Pending {
  writes: Lease[];
  events: NewEvent[];
  sends: (() => void)[];
}

export function createDhcpService(ctx: DhcpServiceContext, options: { imageUrlFor?: ImageUrlResolver } = {}): DhcpService {
  const log = ctx.log.child({ service: 'dhcp' });
  const hostile = new RateLimitedLog(log);
  const counters: Record<string, number> = {};
  const count = (name: string) => (counters[name] = (counters[name] ?? 0) + 1);
  let v4: Socket[] = [];
  let v6: Socket | undefined;
  let pending: Pending | undefined;
  let persistence: SqliteLeasePersistence | undefined;

  const flush = () => {
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
      setImmediate(flush);
    }
    pending.writes.push(...outcome.writes);
    pending.events.push(...outcome.events);
    if (send) pending.sends.push(send);
  };

  const logOutcome = (o: V4Outcome | V6Outcome) => {
    if (o.counter) count(o.counter);
    if (o.log.level === 'warn') hostile.warn(o.log.fields, o.log.msg);
    else log[o.log.level](o.log.fields, o.log.msg);
  };

  const onError = (err: unknown, rinfo: RemoteInfo, family: string) => {
    if (isZtpError(err)) {
      count(`drop-${err.code}`);
      hostile.warn({ from: `${rinfo.address}:${rinfo.port}`, family, code: err.code, reason: err.message }, 'DHCP: dropped packet');
    } else {
      count('internal-error');
      log.error({ from: `${rinfo.address}:${rinfo.port}`, family, err: errorMessage(err) }, 'DHCP: internal error handling a packet (dropped)');
    }
  };

  return {
    name: 'dhcp',
    stats: () => ({ ...counters }),
    async start(): Promise<ListenInfo[]> {
      const d = ctx.config.dhcp;
      if (!d.interface) {
        log.info('DHCP responder disabled: dhcp.interface (ZTP_DHCP_INTERFACE) is empty');
        return [];
      }
      const iface = networkInterfaces()[d.interface];
      const addr4 = iface?.find((a) => a.family === 'IPv4');
      if (!iface || !addr4) {
        log.error({ interface: d.interface }, `DHCP responder disabled: interface ${d.interface} does not exist or has no IPv4 address`);
        return [];
      }
      const cidr = parseCidrV4(addr4.cidr ?? `${addr4.address}/32`);
      const serverId = d.serverAddress || addr4.address;
      const subnets = buildSubnets(d.subnets);
      if (d.mode === 'server' && !subnets.some((s) => inCidr(ipv4ToNumber(addr4.address), s.cidr))) {
        log.warn({ interface: d.interface, address: addr4.address }, 'DHCP: no dhcp.subnets entry contains the interface address: only relayed requests get addresses');
      }
      persistence = new SqliteLeasePersistence(ctx.db);
      const policy = policyInput(ctx);
      const inventory = storeInventory(ctx, options.imageUrlFor);
      const now = () => ctx.clock.now().getTime();
      const responder = new ResponderV4({
        mode: d.mode,
        serverId,
        subnets,
        interfaceAddress: addr4.address,
        policy,
        inventory,
        leases: new LeaseTable(4, persistence.loadAll(4)),
        now,
        offerHoldMs: d.offerHold * 1000,
        interfaceCidr: cidr,
        relays: d.relays,
      });
      const onMessage4 = (msg: Buffer, rinfo: RemoteInfo) => {
        try {
          count('received');
          const outcome = responder.handle(decodeV4(msg));
          logOutcome(outcome);
          const reply = outcome.reply;
          let send: (() => void) | undefined;
          if (reply) {
            const bytes = encodeV4(reply.packet, { maxSize: reply.maxSize, allowOverload: true });
            send = () => {
              count('sent');
              reply4.send(bytes, reply.to.port, reply.to.address, (err) => {
                if (err) hostile.warn({ to: reply.to, err: errorMessage(err) }, 'DHCP: send failed');
              });
            };
          }
          deliver(outcome, send);
        } catch (err) {
          onError(err, rinfo, 'v4');
        }
      };
      // Two sockets on the DHCP port. The wildcard one receives broadcasts (clients without an
      // address send to 255.255.255.255). The one bound to the interface's own address receives
      // unicasts to us (renewals, relays) and sends every reply: Linux routes a limited broadcast
      // (and multicast) out of the device that owns the bound source address, with no default
      // route needed ("special hack" in ip_route_output_key_hash_rcu), so an OFFER to
      // 255.255.255.255:68 leaves the DHCP interface. SO_REUSEADDR lets both bind the same port.
      const listen4 = createSocket({ type: 'udp4', reuseAddr: true });
      const reply4 = createSocket({ type: 'udp4', reuseAddr: true });
      for (const s of [listen4, reply4]) {
        s.on('error', (err) => log.error({ err: errorMessage(err) }, 'DHCP: socket error'));
        s.on('message', onMessage4);
      }
      const bind = (s: Socket, port: number, address: string) =>
        new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.bind({ port, address, exclusive: false }, () => {
            s.off('error', reject);
            resolve();
          });
        });
      try {
        await bind(listen4, d.port, '0.0.0.0');
        await bind(reply4, listen4.address().port, addr4.address);
      } catch (err) {
        listen4.close();
        reply4.close();
        if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
        log.warn({ port: d.port }, 'DHCP responder disabled: ports below 1024 need root or CAP_NET_BIND_SERVICE (or set ZTP_DHCP_PORT for a test port)');
        return [];
      }
      reply4.setBroadcast(true);
      v4 = [listen4, reply4];
      const listen: ListenInfo[] = [{ service: 'dhcp', protocol: 'udp4', address: serverId, port: listen4.address().port }];
      log.info({ interface: d.interface, serverId, port: d.port, mode: d.mode, subnets: d.subnets.map((s) => s.subnet), sztp: policy.sztpUrls }, `DHCP responder listening (${d.mode} mode)`);

      if (d.v6.enabled) {
        const link = iface.find((a) => a.family === 'IPv6' && a.address.startsWith('fe80'));
        const mac = iface.find((a) => a.mac && a.mac !== '00:00:00:00:00:00')?.mac ?? '02:00:00:00:00:01';
        // RFC 8415 §11.4 DUID-LL: type 3, hardware type 1 (Ethernet), link-layer address.
        const serverDuid = Buffer.concat([Buffer.from([0, 3, 0, 1]), Buffer.from(mac.split(':').map((h) => parseInt(h, 16)))]);
        const responder6 = new ResponderV6({
          serverDuid,
          subnets: buildSubnetsV6(d.v6.subnets),
          interfaceAddresses: iface.filter((a) => a.family === 'IPv6' && !a.address.startsWith('fe80')).map((a) => a.address),
          policy,
          inventory,
          leases: new LeaseTable(6, persistence.loadAll(6)),
          relays: d.relays,
          now,
          preferredLifetime: d.v6.preferredLifetime,
          validLifetime: d.v6.validLifetime,
          offerHoldMs: d.offerHold * 1000,
        });
        const socket6 = createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true });
        socket6.on('error', (err) => log.error({ err: errorMessage(err) }, 'DHCPv6: socket error'));
        socket6.on('message', (msg, rinfo) => {
          try {
            count('v6-received');
            const from = { address: rinfo.address.includes('%') || !rinfo.address.startsWith('fe80') ? rinfo.address : `${rinfo.address}%${d.interface}`, port: rinfo.port };
            const outcome = responder6.handle(msg, from);
            logOutcome(outcome);
            const reply = outcome.reply;
            deliver(
              outcome,
              reply
                ? () => {
                    count('v6-sent');
                    socket6.send(reply.data, reply.to.port, reply.to.address, (err) => {
                      if (err) hostile.warn({ to: reply.to, err: errorMessage(err) }, 'DHCPv6: send failed');
                    });
                  }
                : undefined,
            );
          } catch (err) {
            onError(err, rinfo, 'v6');
          }
        });
        await new Promise<void>((resolve, reject) => {
          socket6.once('error', reject);
          socket6.bind({ port: d.v6.port, address: '::', exclusive: false }, () => {
            socket6.off('error', reject);
            try {
              socket6.addMembership(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, `::%${d.interface}`);
            } catch (err) {
              reject(err as Error);
              return;
            }
            resolve();
          });
        });
        v6 = socket6;
        listen.push({ service: 'dhcp', protocol: 'udp6', address: link?.address ?? '::', port: d.v6.port });
        log.info({ interface: d.interface, port: d.v6.port, duid: serverDuid.toString('hex') }, 'DHCPv6 responder listening');
      }
      return listen;
    },
    async stop(): Promise<void> {
      flush();
      const close = (s: Socket | undefined) => (s ? new Promise<void>((resolve) => s.close(() => resolve())) : Promise.resolve());
      await Promise.all([...v4.map(close), close(v6)]);
      v4 = [];
      v6 = undefined;
      log.info({ counters }, 'DHCP responder stopped');
    },
  };
}
