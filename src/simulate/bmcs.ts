// The lab's BMCs: the Redfish emulator (src/redfish/emulator), one emulated BMC per simulated
// DPU that has one, each presenting its DPU's serial and MACs, with the lab's BMC faults passed
// to the emulator's fault injection. Delays default to zero (ZERO_TIMING): the lab measures the
// suite, not a BMC's boot time.
//
// All BMCs sit behind one listener under /bmc/<id>/redfish/v1 (scales to thousands). A vendor
// profile can be chosen per device (e.g. BlueField BMCs: no virtual media, UEFI HTTP boot). A
// racked lab BMC is commissioned: a factory account that demands a password change
// (PasswordChangeRequired) gets a lab password first, over Redfish, as an operator would on
// first racking; the endpoints handed to the suite carry that password.
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { ZtpError } from '../errors.js';
import type { Logger } from '../log.js';
import { bmcIdFor, parseFaults, startBmcEmulator, ZERO_TIMING, type EmulatorTiming, type QuirkMode } from '../redfish/emulator/index.js';
import type { BmcLab, BmcLabFactory } from './lab.js';

export interface EmulatedBmcsOptions {
  log: Logger;
  timing?: Partial<EmulatorTiming>;
  /** one vendor profile for all, or one per lab device index */
  quirks?: QuirkMode | ((deviceIndex: number) => QuirkMode);
  /** CA the BMCs trust when they fetch https:// virtual media (the suite's lab root) */
  mediaCa?: string;
  /** TLS for the emulator's listener; the endpoints carry `caBundle` (what the suite must trust) */
  https?: { cert: string; key: string; caBundle: string };
  /** change factory passwords that must be changed before first use (default true); false: leave
   * the BMCs factory-fresh and hand the suite the factory password plus a lab password to set
   * (the record's bmc.factoryPassword and bmc.password: the conductor makes the change) */
  commission?: boolean;
  host?: string;
  port?: number;
}

export function emulatedBmcs(options: EmulatedBmcsOptions): BmcLabFactory {
  return async (devices) => {
    const ids = devices.map((_, i) => bmcIdFor(i));
    const faultText = devices.flatMap((d, i) => d.faults.map((f) => `${ids[i]}@${f}`)).join(',');
    const quirks = options.quirks;
    const running = await startBmcEmulator({
      ids,
      timing: { ...ZERO_TIMING, ...(options.timing ?? {}) },
      ...(quirks ? { quirks: typeof quirks === 'function' ? (_id: string, i: number) => quirks(devices[i]!.index) : quirks } : {}),
      identity: (_id, index) => ({ serial: devices[index]!.serial, macs: devices[index]!.macs }),
      ...(faultText ? { faults: parseFaults(faultText) } : {}),
      ...(options.mediaCa ? { mediaCa: options.mediaCa } : {}),
      ...(options.https ? { https: { cert: options.https.cert, key: options.https.key } } : {}),
      // One listener fronts every BMC of the lab, in a process that also runs the DPUs: under load
      // its event loop lags, and a 5 s keep-alive then closes connections the suite has just
      // written a request on (a reset POST, not retried). An aggregator's longer keep-alive.
      keepAliveTimeoutMs: 60_000,
      host: options.host ?? '127.0.0.1',
      ...(options.port !== undefined ? { port: options.port } : {}),
      log: options.log,
    });
    const caBundle = options.https?.caBundle;
    const endpoints: BmcLab['endpoints'] = running.endpoints.map((e) => ({ id: e.id, url: e.url, username: e.username, password: e.password, systemId: e.systemId, ...(caBundle ? { caBundle } : {}) }));
    try {
      const mustChange = running.emulator.bmcs.map((b) => b.account.passwordChangeRequired);
      if (options.commission !== false) {
        const changed = await commission(endpoints, mustChange);
        if (changed) options.log.info({ bmcs: changed }, 'lab BMCs: factory passwords changed (commissioned)');
      } else {
        for (const [i, e] of endpoints.entries()) {
          if (!mustChange[i]) continue;
          e.factoryPassword = e.password;
          e.password = labPassword();
        }
      }
    } catch (err) {
      await running.close();
      throw err;
    }
    options.log.info({ url: running.url, bmcs: ids.length, faults: faultText || 'none' }, 'lab BMCs: Redfish emulator listening');
    return {
      endpoints,
      events: running.emulator.events,
      stats: () => running.emulator.bmcs.map((b) => ({ id: b.id, stats: b.stats })),
      close: () => running.close(),
    };
  };
}

function labPassword(): string {
  return `lab-${randomBytes(9).toString('base64url')}`;
}

/** PATCHes a new password on every account that demands one; returns how many were changed. */
async function commission(endpoints: BmcLab['endpoints'], mustChange: boolean[]): Promise<number> {
  let changed = 0;
  const agent = endpoints[0]?.caBundle ? new Agent({ connect: { ca: endpoints[0].caBundle, timeout: 10_000 } }) : undefined;
  for (const [i, e] of endpoints.entries()) {
    if (!mustChange[i]) continue;
    const password = labPassword();
    const basic = `Basic ${Buffer.from(`${e.username}:${e.password}`).toString('base64')}`;
    const res = await request(`${e.url}/redfish/v1/AccountService/Accounts/1`, {
      method: 'PATCH',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ Password: password }),
      headersTimeout: 10_000,
      ...(agent ? { dispatcher: agent } : {}),
      bodyTimeout: 10_000,
    });
    await res.body.dump();
    if (res.statusCode !== 200 && res.statusCode !== 204) throw new ZtpError('SIM_INVALID', `lab BMC ${e.id}: the factory password change answered HTTP ${res.statusCode}`);
    e.password = password;
    changed++;
  }
  await agent?.close();
  return changed;
}
