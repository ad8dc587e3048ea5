// The lab's BMCs: the Redfish emulator (src/redfish/emulator), one emulated BMC per simulated
// DPU, each presenting its DPU's serial and MACs, with the lab's BMC faults passed to the
// emulator's fault injection. Delays default to zero (ZERO_TIMING): the lab measures the suite,
// not a BMC's boot time.
import type { Logger } from '../log.js';
import { bmcIdFor, parseFaults, startBmcEmulator, ZERO_TIMING, type EmulatorTiming, type QuirkMode } from '../redfish/emulator/index.js';
import type { BmcLabFactory } from './lab.js';

export interface EmulatedBmcsOptions {
  log: Logger;
  timing?: Partial<EmulatorTiming>;
  quirks?: QuirkMode;
  /** CA the BMCs trust when they fetch https:// virtual media (the suite's lab root) */
  mediaCa?: string;
  host?: string;
  port?: number;
}

export function emulatedBmcs(options: EmulatedBmcsOptions): BmcLabFactory {
  return async (devices) => {
    const ids = devices.map((_, i) => bmcIdFor(i));
    const faultText = devices.flatMap((d, i) => d.faults.map((f) => `${ids[i]}@${f}`)).join(',');
    const running = await startBmcEmulator({
      ids,
      timing: { ...ZERO_TIMING, ...(options.timing ?? {}) },
      ...(options.quirks ? { quirks: options.quirks } : {}),
      identity: (_id, index) => ({ serial: devices[index]!.serial, macs: devices[index]!.macs }),
      ...(faultText ? { faults: parseFaults(faultText) } : {}),
      ...(options.mediaCa ? { mediaCa: options.mediaCa } : {}),
      host: options.host ?? '127.0.0.1',
      ...(options.port !== undefined ? { port: options.port } : {}),
      log: options.log,
    });
    options.log.info({ url: running.url, bmcs: ids.length, faults: faultText || 'none' }, 'lab BMCs: Redfish emulator listening');
    return {
      endpoints: running.endpoints.map((e) => ({ id: e.id, url: e.url, username: e.username, password: e.password, systemId: e.systemId })),
      events: running.emulator.events,
      stats: () => running.emulator.bmcs.map((b) => ({ id: b.id, stats: b.stats })),
      close: () => running.close(),
    };
  };
}
