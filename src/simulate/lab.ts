// A virtual lab: N simulated DPUs (dpu.ts), each with its identity (lab IDevID), profile and
// injected faults, optionally behind emulated BMCs (a BmcLab, the Redfish emulator), ready to
// be registered with a running suite so that `ztp onboard --all` onboards them.
//
// Fault plan (`--faults`): comma-separated `NAME[:N|:P%]`, N devices (default 1) or P percent
// of the fleet get that fault, assigned in order from the first device, one fault per device.
//   DPU faults:  bad-image-hash, agent-crash, wrong-password, never-boots, bad-script
//   BMC faults:  bmc/<emulator fault entry>, e.g. bmc/timeout=insert:2, bmc/media-never-inserted
//                (passed to the emulator's fault injection for that device's BMC)
import type { EventEmitter } from 'node:events';
import type { Profile } from '../devices/model.js';
import { ZtpError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { PemKeyPair } from '../pki/material.js';
import type { BmcStats } from '../redfish/emulator/bmc.js';
import type { BootingEvent } from '../redfish/emulator/hooks.js';
import type { DhcpPath } from './dhcp.js';
import { DPU_FAULTS, faultsFromNames, SimulatedDpu, type DpuFaultName, type DpuRun, type SimulatedDpuConfig } from './dpu.js';

export type LabProfile = Profile | 'mixed';

export interface DeviceFaults {
  dpu: DpuFaultName[];
  /** emulator fault entries (faults.ts syntax without the target) */
  bmc: string[];
}

/** Parses a fault plan for a fleet of `count` devices: one DeviceFaults per device. */
export function parseFaultPlan(text: string, count: number): DeviceFaults[] {
  const plan: DeviceFaults[] = Array.from({ length: count }, () => ({ dpu: [], bmc: [] }));
  let next = 0;
  for (const raw of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(bmc\/)?([a-z0-9-]+(?:=[^:]*)?)(?::(\d+)(%)?)?$/i.exec(raw);
    if (!m) throw new ZtpError('SIM_INVALID', `fault "${raw}": expected NAME[:N|:P%] or bmc/ENTRY[:N|:P%]`);
    const [, bmc, name, amount, percent] = m as unknown as [string, string | undefined, string, string | undefined, string | undefined];
    if (!bmc && !(DPU_FAULTS as readonly string[]).includes(name)) throw new ZtpError('SIM_INVALID', `fault "${raw}": unknown DPU fault (known: ${DPU_FAULTS.join(', ')}; BMC faults take the bmc/ prefix)`);
    const n = amount === undefined ? 1 : percent ? Math.round((Number(amount) / 100) * count) : Number(amount);
    if (next + n > count) throw new ZtpError('SIM_INVALID', `fault plan needs more than the ${count} devices of the fleet (one fault per device)`);
    for (let i = 0; i < n; i++, next++) {
      if (bmc) plan[next]!.bmc.push(name);
      else plan[next]!.dpu.push(name as DpuFaultName);
    }
  }
  return plan;
}

/** The BMC side of a lab (the Redfish emulator behind a port): one endpoint per device, in order. */
export interface BmcLab {
  /** factoryPassword: the BMC is factory-fresh and demands a change from it to `password` */
  endpoints: { id: string; url: string; username: string; password: string; systemId: string; caBundle?: string; factoryPassword?: string }[];
  /** emits 'booting' (BootingEvent) */
  events: EventEmitter;
  /** the emulator's own counters per BMC (requests, InsertMedia, resets, …), when it has them */
  stats?(): { id: string; stats: BmcStats }[];
  close(): Promise<void>;
}

/** Builds the BMCs of the lab's devices that have one (`index`: the device's place in the lab). */
export type BmcLabFactory = (devices: { index: number; serial: string; macs: string[]; faults: string[] }[]) => Promise<BmcLab>;

export interface VirtualLabOptions {
  count: number;
  profile: LabProfile;
  faults?: string;
  /** serials are <prefix>-0001 … (default SIM) */
  serialPrefix?: string;
  /** second MAC byte, so that two labs do not share MACs (default 0x7a) */
  macTag?: number;
  /** catalogue name of the boot image every device gets */
  bootImage: string;
  bootstrapUrl: string;
  serverCaPem: string;
  masaCaPem: string;
  /** lab IDevIDs (src/pki issueDeviceIdentity); without it devices authenticate by Basic only */
  issueIdevid?: (serial: string) => Promise<PemKeyPair>;
  /** give every device an HTTP Basic password (default: only the wrong-password ones need one) */
  basicAuth?: boolean;
  dhcp: DhcpPath;
  /** emulated BMCs; without it devices are "racked and powered by hand" (powerOn()) */
  bmcs?: BmcLabFactory;
  /** which devices get a BMC when `bmcs` is set (default: all); the others are powered by hand */
  withBmc?: (index: number) => boolean;
  /** configuration conveyed to every device (the record's `config`) */
  config?: string;
  /** step timeouts written into the records (seconds, conductor keys): the same for every
   * device, or chosen per device (e.g. short ones only where a fault makes a device stall) */
  onboardingTimeouts?: Record<string, number> | ((device: LabDevice) => Record<string, number> | undefined);
  agent?: SimulatedDpuConfig['agent'];
  rangeBytes?: number;
  log?: Logger;
}

export interface LabDevice {
  index: number;
  serial: string;
  macs: string[];
  profile: Profile;
  faults: DeviceFaults;
  password?: string;
  bmc?: BmcLab['endpoints'][number];
  dpu: SimulatedDpu;
}

function timeoutsField(t: Record<string, number> | undefined): { onboardingTimeouts?: Record<string, number> } {
  return t && Object.keys(t).length ? { onboardingTimeouts: t } : {};
}

/** A binary "script": ELF magic and control bytes (what bad-script conveys). */
const NOT_A_SCRIPT = '\u007fELF\u0002\u0001\u0001';

export class VirtualLab {
  private unbind: (() => void)[] = [];

  private constructor(
    readonly devices: LabDevice[],
    private readonly bmcLab: BmcLab | undefined,
    private readonly options: VirtualLabOptions,
  ) {}

  static async create(options: VirtualLabOptions): Promise<VirtualLab> {
    if (!Number.isInteger(options.count) || options.count < 1 || options.count > 100_000) throw new ZtpError('SIM_INVALID', 'count must be 1 … 100000');
    const log = options.log ?? silentLogger;
    const plan = parseFaultPlan(options.faults ?? '', options.count);
    const prefix = options.serialPrefix ?? 'SIM';
    const tag = (options.macTag ?? 0x7a) & 0xff;
    const hex = (n: number) => n.toString(16).padStart(2, '0');
    const base = Array.from({ length: options.count }, (_, index) => {
      const n = index + 1;
      const serial = `${prefix}-${String(n).padStart(4, '0')}`;
      const macs = [`02:${hex(tag)}:${hex((n >> 16) & 0xff)}:${hex((n >> 8) & 0xff)}:${hex(n & 0xff)}:00`, `02:${hex(tag)}:${hex((n >> 16) & 0xff)}:${hex((n >> 8) & 0xff)}:${hex(n & 0xff)}:01`];
      const profile: Profile = options.profile === 'mixed' ? (index % 2 === 0 ? 'rfc8572' : 'opi') : options.profile;
      return { index, serial, macs, profile, faults: plan[index]! };
    });
    const behindBmc = options.bmcs ? base.filter((d) => options.withBmc?.(d.index) ?? true) : [];
    for (const d of base) {
      if (d.faults.bmc.length && !behindBmc.includes(d)) throw new ZtpError('SIM_INVALID', `${d.serial} has a BMC fault (${d.faults.bmc.join(', ')}) but no BMC`);
    }
    const bmcLab = options.bmcs && behindBmc.length ? await options.bmcs(behindBmc.map((d) => ({ index: d.index, serial: d.serial, macs: d.macs, faults: d.faults.bmc }))) : undefined;
    const endpointOf = new Map(behindBmc.map((d, i) => [d.index, bmcLab?.endpoints[i]]));
    const devices: LabDevice[] = [];
    for (const d of base) {
      const password = options.basicAuth || d.faults.dpu.includes('wrong-password') ? `sim-${d.serial}` : undefined;
      const idevid = options.issueIdevid ? await options.issueIdevid(d.serial) : undefined;
      const dpu = new SimulatedDpu({
        serial: d.serial,
        macs: d.macs,
        profile: d.profile,
        identity: { serial: d.serial, ...(password ? { password } : {}), ...(idevid ? { idevid } : {}), serverCaPem: options.serverCaPem, masaCaPem: options.masaCaPem },
        bootstrapUrl: options.bootstrapUrl,
        dhcp: options.dhcp,
        faults: faultsFromNames(d.faults.dpu),
        ...(options.rangeBytes ? { rangeBytes: options.rangeBytes } : {}),
        ...(options.agent ? { agent: options.agent } : {}),
        log,
      });
      devices.push({ ...d, ...(password ? { password } : {}), ...(endpointOf.get(d.index) ? { bmc: endpointOf.get(d.index)! } : {}), dpu });
    }
    const lab = new VirtualLab(devices, bmcLab, options);
    if (bmcLab) for (const d of devices) if (d.bmc) lab.unbind.push(d.dpu.bind(bmcLab.events, { bmcId: d.bmc!.id, systemId: d.bmc!.systemId }));
    log.info({ count: devices.length, profile: options.profile, faults: options.faults ?? '', bmcs: bmcLab ? bmcLab.endpoints.length : 0, dhcp: options.dhcp.mode }, 'virtual lab ready');
    return lab;
  }

  /** Device records for the suite (POST /api/v1/devices/import, `ztp device import`). */
  deviceRecords(): Record<string, unknown>[] {
    const timeouts = this.options.onboardingTimeouts;
    return this.devices.map((d) => ({
      serial: d.serial,
      profile: d.profile,
      macs: d.macs,
      bootImage: this.options.bootImage,
      hwModel: 'simulated-dpu',
      ...(d.password ? { password: d.password } : {}),
      ...(d.faults.dpu.includes('bad-script') ? { preScript: NOT_A_SCRIPT } : {}),
      ...(this.options.config !== undefined ? { config: this.options.config } : {}),
      ...(d.bmc ? { bmc: { address: d.bmc.url, username: d.bmc.username, password: d.bmc.password, systemId: d.bmc.systemId, ...(d.bmc.caBundle ? { caBundle: d.bmc.caBundle } : {}), ...(d.bmc.factoryPassword ? { factoryPassword: d.bmc.factoryPassword } : {}) } } : {}),
      ...timeoutsField(typeof timeouts === 'function' ? timeouts(d) : timeouts),
    }));
  }

  /**
   * Devices without a BMC are powered "by hand" (devices behind a BMC are left to it): each boots (PXE-style: DHCP, then the agent;
   * with `imageUrlFor`, UEFI HTTP boot of that URL). Resolves when every run has ended.
   */
  async powerOn(imageUrlFor?: (device: LabDevice) => string | null): Promise<DpuRun[]> {
    return Promise.all(
      this.devices.filter((d) => !d.bmc).map((d) => {
        const imageUrl = imageUrlFor?.(d) ?? null;
        const ev: BootingEvent = { bmcId: 'none', systemId: 'none', serial: d.serial, via: imageUrl ? 'uefi-http' : 'pxe', imageUrl, target: null, at: new Date() };
        return d.dpu.boot(ev);
      }),
    );
  }

  /** The emulated BMCs' own counters (empty without BMCs). */
  bmcStats(): { id: string; stats: BmcStats }[] {
    return this.bmcLab?.stats?.() ?? [];
  }

  /** Every run of every device so far. */
  runs(): { serial: string; runs: DpuRun[] }[] {
    return this.devices.map((d) => ({ serial: d.serial, runs: d.dpu.runs }));
  }

  async stop(): Promise<void> {
    for (const u of this.unbind) u();
    this.unbind = [];
    await Promise.all(this.devices.map((d) => d.dpu.stop()));
    await this.bmcLab?.close();
  }
}
