// Refuse at start a DHCP configuration that validates field by field but cannot be encoded on
// the wire (issue 8: a README example made every DHCPv6 packet fail DHCP_ENCODE_FAILED, v6 dead
// behind a rate-limited warning). Each option scope is encoded once, for every family it feeds,
// as if a client had requested every option; the first failure names the scope's key.
import type { DhcpOptionSetConfig, DhcpSection } from './config-schema.js';
import { isZtpError, ZtpError } from '../errors.js';
import { encodeV4, MessageType, Opt, type DhcpOption } from './codec/v4.js';
import { encodeV6, MsgV6 } from './codec/v6.js';
import { decide, optionsV4, optionsV6, type PolicyInput } from './policy.js';
import type { Scope } from './settings.js';

const ALL_V4 = Array.from({ length: 254 }, (_, i) => i + 1);
const ALL_V6 = Array.from({ length: 300 }, (_, i) => i + 1);

function tryScope(set: DhcpOptionSetConfig | undefined, key: string, scope: Scope, d: DhcpSection): void {
  if (!set) return;
  const input: PolicyInput = { global: set, classes: [], reservations: [], sztpUrls: ['https://preflight.invalid'], sztpForce: true, defaultLeaseTime: d.leaseTime };
  for (const [family, vendorClass, arch] of [
    [4, 'HTTPClient:Arch:00016', [16]],
    [4, 'PXEClient:Arch:00007', [7]],
    [6, 'HTTPClient', [16]],
  ] as const) {
    if (scope !== 'both' && scope !== family) continue;
    if (family === 6 && !d.v6.enabled && scope === 'both') continue;
    const facts = { family, vendorClass, arch: [...arch], userClasses: [], requested: family === 4 ? ALL_V4 : ALL_V6 };
    try {
      const decision = decide(facts, input, { deviceByMac: () => undefined });
      if (family === 4) {
        const options: DhcpOption[] = [{ code: Opt.MESSAGE_TYPE, data: Buffer.from([MessageType.OFFER]) }, ...optionsV4(decision, facts.requested)];
        encodeV4({ op: 2, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: decision.nextServer ?? '0.0.0.0', giaddr: '0.0.0.0', chaddr: Buffer.alloc(16), sname: decision.serverName ?? '', file: '', options }, { maxSize: 1500, allowOverload: true });
      } else {
        encodeV6({ kind: 'client', msgType: MsgV6.REPLY, transactionId: 1, options: optionsV6(decision, facts.requested) });
      }
    } catch (err) {
      if (!isZtpError(err)) throw err;
      throw new ZtpError('CONFIG_INVALID', `configuration key "${key}": cannot be encoded for DHCPv${family}: ${err.message}`, { details: { key, family }, cause: err });
    }
  }
}

/** Throws CONFIG_INVALID naming the scope whose options cannot be encoded. */
export function preflightDhcp(d: DhcpSection): void {
  tryScope(d.options, 'dhcp.options', 'both', d);
  d.classes.forEach((c, i) => tryScope(c.options, `dhcp.classes[${i}].options`, 'both', d));
  d.reservations.forEach((r, i) => tryScope(r.options, `dhcp.reservations[${i}].options`, 4, d));
  d.subnets.forEach((s, i) => {
    tryScope(s.options, `dhcp.subnets[${i}].options`, 4, d);
    s.reservations?.forEach((r, j) => tryScope(r.options, `dhcp.subnets[${i}].reservations[${j}].options`, 4, d));
  });
  d.v6.subnets.forEach((s, i) => {
    const options = s.options?.raw ? { ...s.options, raw: s.options.raw.map((r) => ({ ...r, family: r.family ?? (6 as const) })) } : s.options;
    tryScope(options, `dhcp.v6.subnets[${i}].options`, 6, d);
  });
}
