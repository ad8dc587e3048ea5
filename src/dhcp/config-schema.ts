// Schema of the `dhcp` configuration section (JSON config file and ZTP_DHCP_* variables). Kept
// in the DHCP module so its validation (settings.ts, preflight.ts) needs nothing from config.ts,
// which composes this section into the suite's one schema.
import { Type, type Static } from '../schema.js';

/** Marks a leaf with its environment variable; the flag is derived (--dhcp-port). */
const env = (name: string) => ({ env: name });

// DHCP structured settings (JSON config file only): option sets, subnets, classes, reservations.
// Values are validated further (addresses, CIDRs, pools inside subnets) by validateDhcpSettings.
const DhcpRawOption = Type.Object(
  {
    code: Type.Integer({ minimum: 1, maximum: 65534, description: 'option code (v4: 1-254, v6: 1-65534)' }),
    hex: Type.Optional(Type.String({ description: 'value as hex, colons allowed' })),
    text: Type.Optional(Type.String({ description: 'value as UTF-8 text' })),
    ip: Type.Optional(Type.Array(Type.String(), { description: 'value as a list of addresses' })),
    always: Type.Optional(Type.Boolean({ description: 'send even when not requested (PRL/ORO)' })),
    family: Type.Optional(Type.Union([Type.Literal(4), Type.Literal(6)], { description: 'protocol the code belongs to: 4 (DHCPv4, the default) or 6 (DHCPv6, the default inside dhcp.v6.subnets)' })),
  },
  { additionalProperties: false },
);
const DhcpArchUrls = Type.Object(
  { x64: Type.Optional(Type.String()), arm64: Type.Optional(Type.String()), default: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
const DhcpOptionSet = Type.Object(
  {
    routers: Type.Optional(Type.Array(Type.String(), { description: 'option 3 (IPv4 only; not in dhcp.v6)' })),
    dns: Type.Optional(Type.Array(Type.String(), { description: 'IPv4 and/or IPv6 addresses: the IPv4 ones go in option 6 (v4), the IPv6 ones in option 23 (v6)' })),
    domain: Type.Optional(Type.String({ description: 'option 15 (v4) / 24 (v6)' })),
    ntp: Type.Optional(Type.Array(Type.String(), { description: 'IPv4 and/or IPv6 addresses: IPv4 in option 42 (v4), IPv6 in option 56 (v6, RFC 5908)' })),
    mtu: Type.Optional(Type.Integer({ minimum: 68, maximum: 65535, description: 'option 26' })),
    leaseTime: Type.Optional(Type.Integer({ minimum: 60, maximum: 31_536_000 })),
    sztp: Type.Optional(
      Type.Object(
        {
          encoding: Type.Optional(Type.Union([Type.Literal('rfc8572'), Type.Literal('opi')], { description: 'default: the device profile, else rfc8572' })),
          urls: Type.Optional(Type.Array(Type.String(), { description: 'bootstrap server base URLs https://host[:port] (opi: the first, full RPC URL derived)' })),
          force: Type.Optional(Type.Boolean({ description: 'send 143/136 even when not requested' })),
          disabled: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    boot: Type.Optional(
      Type.Object(
        {
          httpUrl: Type.Optional(DhcpArchUrls),
          pxeFile: Type.Optional(DhcpArchUrls),
          nextServer: Type.Optional(Type.String({ description: 'siaddr for PXE/TFTP' })),
          serverName: Type.Optional(Type.String({ description: 'sname header field' })),
        },
        { additionalProperties: false },
      ),
    ),
    proxyOffer: Type.Optional(Type.Boolean({ description: 'proxy mode: answer DISCOVER with an address-less offer (default: PXEClient/HTTPClient only)' })),
    raw: Type.Optional(Type.Array(DhcpRawOption)),
  },
  { additionalProperties: false },
);
const DhcpReservation = Type.Object(
  {
    mac: Type.Optional(Type.String()),
    clientId: Type.Optional(Type.String({ description: 'option 61 as hex' })),
    address: Type.Optional(Type.String()),
    hostname: Type.Optional(Type.String()),
    options: Type.Optional(DhcpOptionSet),
  },
  { additionalProperties: false },
);
const DhcpPool = Type.Object({ start: Type.String(), end: Type.String() }, { additionalProperties: false });
const DhcpSubnetV4 = Type.Object(
  {
    subnet: Type.String({ description: 'a.b.c.d/len' }),
    pools: Type.Array(DhcpPool, { default: [] }),
    options: Type.Optional(DhcpOptionSet),
    reservations: Type.Optional(Type.Array(DhcpReservation)),
  },
  { additionalProperties: false },
);
const DhcpSubnetV6 = Type.Object(
  {
    prefix: Type.String({ description: 'xxxx::/len' }),
    pools: Type.Array(DhcpPool, { default: [] }),
    options: Type.Optional(DhcpOptionSet),
  },
  { additionalProperties: false },
);
const DhcpMatch = Type.Object(
  {
    mac: Type.Optional(Type.Array(Type.String(), { description: 'MACs or prefixes (aa:bb:cc)' })),
    clientId: Type.Optional(Type.Array(Type.String())),
    vendorClass: Type.Optional(Type.Array(Type.String(), { description: 'prefixes of option 60 / v6 16' })),
    userClass: Type.Optional(Type.Array(Type.String(), { description: 'option 77 / v6 15 entries' })),
    arch: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 65535 }), { description: 'option 93 / v6 61 values' })),
    circuitId: Type.Optional(Type.Array(Type.String(), { description: 'option 82.1 as text or 0x-hex' })),
    remoteId: Type.Optional(Type.Array(Type.String(), { description: 'option 82.2 as text or 0x-hex' })),
    profile: Type.Optional(Type.Union([Type.Literal('rfc8572'), Type.Literal('opi')])),
    registered: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const DhcpClass = Type.Object(
  { name: Type.String({ minLength: 1 }), match: DhcpMatch, options: DhcpOptionSet },
  { additionalProperties: false },
);
export type DhcpOptionSetConfig = Static<typeof DhcpOptionSet>;
export type DhcpReservationConfig = Static<typeof DhcpReservation>;
export type DhcpSubnetV4Config = Static<typeof DhcpSubnetV4>;
export type DhcpSubnetV6Config = Static<typeof DhcpSubnetV6>;
export type DhcpClassConfig = Static<typeof DhcpClass>;
export type DhcpMatchConfig = Static<typeof DhcpMatch>;

export const DhcpSectionSchema = Type.Object(
  {
    interface: Type.String({ default: '', description: 'network interface(s) the DHCP responder serves, comma-separated for several (br0,br1): each gets sockets bound to it and replies leave the interface the request came in on (empty disables it)', ...env('ZTP_DHCP_INTERFACE') }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 67, description: 'DHCPv4 server port', ...env('ZTP_DHCP_PORT') }),
    mode: Type.Union([Type.Literal('server'), Type.Literal('proxy')], {
      default: 'server',
      description: 'server: addresses from dhcp.subnets plus options; proxy: options only, beside another DHCP server (PXE-style offers, INFORM)',
      ...env('ZTP_DHCP_MODE'),
    }),
    serverAddress: Type.String({ default: '', description: 'server identifier (option 54) and reply source; default: the interface IPv4 address', ...env('ZTP_DHCP_SERVER_ADDRESS') }),
    leaseTime: Type.Integer({ minimum: 60, maximum: 31_536_000, default: 3600, description: 'default lease time, seconds (per subnet/class: leaseTime)', ...env('ZTP_DHCP_LEASE_TIME') }),
    offerHold: Type.Integer({ minimum: 1, maximum: 600, default: 30, description: 'seconds an offered address stays reserved for the client that was offered it', ...env('ZTP_DHCP_OFFER_HOLD') }),
    sztpUrls: Type.String({ default: '', description: 'sZTP bootstrap server base URLs for option 143/136, comma-separated (default: https://<publicHost>:<bootstrap.port>)', ...env('ZTP_DHCP_SZTP_URLS') }),
    sztpForce: Type.Boolean({ default: false, description: 'send option 143/136 even when the client did not request it (PRL/ORO)', ...env('ZTP_DHCP_SZTP_FORCE') }),
    limits: Type.Object(
      {
        leasesPerClient: Type.Integer({ minimum: 1, maximum: 1024, default: 4, description: 'leases and offers one client may hold: per MAC (v4 and v6) and per DUID (v6 IA_NA); also the IA_NA handled per DHCPv6 message', ...env('ZTP_DHCP_LEASES_PER_CLIENT') }),
        packetsPerSecond: Type.Number({ minimum: 0, default: 20, description: 'packets per second one client (MAC / DUID) may send before the excess is dropped; 0 = unlimited', ...env('ZTP_DHCP_PACKETS_PER_SECOND') }),
        packetBurst: Type.Integer({ minimum: 1, default: 40, description: 'packets one client may send at once before its rate applies', ...env('ZTP_DHCP_PACKET_BURST') }),
      },
      { additionalProperties: false, default: {} },
    ),
    thread: Type.Union([Type.Literal('worker'), Type.Literal('main')], {
      default: 'worker',
      description: 'worker: packet handling on its own thread (own sockets, SQLite connection and heap), so a DHCP flood does not delay the HTTP services; main: on the event loop of every other service',
      ...env('ZTP_DHCP_THREAD'),
    }),
    summaryInterval: Type.Integer({ minimum: 0, maximum: 86_400, default: 60, description: 'seconds between DHCP summary lines at info level (per-packet lines are debug); 0 = none', ...env('ZTP_DHCP_SUMMARY_INTERVAL') }),
    relays: Type.Array(Type.String(), { default: [], description: 'relay agent addresses (giaddr / v6 relay source) answered even when no subnet contains them; others are dropped (JSON config file only)' }),
    v6: Type.Object(
      {
        enabled: Type.Boolean({ default: false, description: 'run the DHCPv6 responder on the same interface', ...env('ZTP_DHCP_V6_ENABLED') }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 547, description: 'DHCPv6 server port', ...env('ZTP_DHCP_V6_PORT') }),
        preferredLifetime: Type.Integer({ minimum: 60, default: 3000, description: 'IA_NA preferred lifetime, seconds', ...env('ZTP_DHCP_V6_PREFERRED_LIFETIME') }),
        validLifetime: Type.Integer({ minimum: 60, default: 3600, description: 'IA_NA valid lifetime, seconds', ...env('ZTP_DHCP_V6_VALID_LIFETIME') }),
        subnets: Type.Array(DhcpSubnetV6, { default: [], description: 'IPv6 prefixes with address pools (JSON config file only)' }),
      },
      { additionalProperties: false, default: {} },
    ),
    options: Type.Optional(DhcpOptionSet),
    subnets: Type.Array(DhcpSubnetV4, { default: [], description: 'IPv4 subnets with pools and reservations (JSON config file only)' }),
    classes: Type.Array(DhcpClass, { default: [], description: 'client classes: match rules and the options they add, applied in order (JSON config file only)' }),
    reservations: Type.Array(DhcpReservation, { default: [], description: 'per-device entries by MAC or client-id: fixed address and option overrides (JSON config file only)' }),
  },
  { additionalProperties: false, default: {} },
);
export type DhcpSection = Static<typeof DhcpSectionSchema>;
