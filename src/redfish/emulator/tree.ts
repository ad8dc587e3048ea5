// The emulator's starting resource tree: a DMTF mockup read from disk at run time (never copied
// into the project), or a minimal DPU tree built here when none is given. A Template is that
// tree shaped for one quirk mode (ids renamed, host systems dropped, virtual media moved) and
// shared read-only by every emulated BMC; each BMC renders its own identity (serial, UUID,
// MACs) over it by token replacement, so 1,000 BMCs cost one tree.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ZtpError } from '../../errors.js';
import { QUIRKS, type QuirkMode, type QuirkProfile } from './quirks.js';

export type Json = Record<string, unknown>;
export const ROOT = '/redfish/v1';

/** Resource path as a key: no trailing slash, except none at all for the root. */
export function normalizePath(path: string): string {
  let p = path.replace(/\/{2,}/g, '/');
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** Reads every `index.json` under a DMTF mockup directory (the layout of Redfish-Publications' mockups). */
export function loadMockup(dir: string): Map<string, Json> {
  if (!existsSync(join(dir, 'index.json'))) {
    throw new ZtpError('CONFIG_INVALID', `${dir} is not a Redfish mockup (no index.json at its root)`, { details: { mockup: dir } });
  }
  const tree = new Map<string, Json>();
  const walk = (rel: string) => {
    const abs = join(dir, rel);
    for (const name of readdirSync(abs)) {
      const child = join(abs, name);
      if (name === 'index.json') {
        const key = normalizePath(`${ROOT}/${rel}`);
        try {
          tree.set(key, JSON.parse(readFileSync(child, 'utf8')) as Json);
        } catch (err) {
          throw new ZtpError('CONFIG_INVALID', `mockup file ${child} is not JSON`, { cause: err, details: { mockup: dir } });
        }
      } else if (!name.startsWith('$') && statSync(child).isDirectory()) {
        walk(rel ? `${rel}/${name}` : name);
      }
    }
  };
  walk('');
  return tree;
}

const link = (path: string) => ({ '@odata.id': path });
const collection = (path: string, type: string, name: string, members: string[]): Json => ({
  '@odata.type': `#${type}.${type}`,
  '@odata.id': path,
  Name: name,
  Members: members.map(link),
  'Members@odata.count': members.length,
});

/** A minimal DPU BMC tree: one DPU system, its card chassis with two ports, one manager. */
export function builtinDpuTree(): Map<string, Json> {
  const t = new Map<string, Json>();
  const sys = `${ROOT}/Systems/DPU`;
  const chassis = `${ROOT}/Chassis/Card1`;
  const mgr = `${ROOT}/Managers/BMC`;
  const adapter = `${chassis}/NetworkAdapters/NIC1`;
  t.set(ROOT, {
    '@odata.type': '#ServiceRoot.v1_15_0.ServiceRoot',
    '@odata.id': `${ROOT}/`,
    Id: 'RootService',
    Name: 'Root Service',
    RedfishVersion: '1.15.0',
    UUID: '00000000-0000-4000-8000-000000000000',
    Systems: link(`${ROOT}/Systems`),
    Chassis: link(`${ROOT}/Chassis`),
    Managers: link(`${ROOT}/Managers`),
    SessionService: link(`${ROOT}/SessionService`),
    AccountService: link(`${ROOT}/AccountService`),
    Links: { Sessions: link(`${ROOT}/SessionService/Sessions`) },
  });
  t.set(`${ROOT}/Systems`, collection(`${ROOT}/Systems`, 'ComputerSystemCollection', 'Computer System Collection', [sys]));
  t.set(sys, {
    '@odata.type': '#ComputerSystem.v1_20_0.ComputerSystem',
    '@odata.id': sys,
    Id: 'DPU',
    Name: 'DPU System',
    SystemType: 'DPU',
    Manufacturer: 'dpu-ztp',
    Model: 'Emulated DPU',
    SerialNumber: 'EMU0000000000',
    UUID: '00000000-0000-4000-8000-00000000d0d0',
    BiosVersion: 'UEFI 4.2.0',
    Status: { State: 'Enabled', Health: 'OK' },
    PowerState: 'Off',
    ProcessorSummary: { Count: 1, Model: 'ARM Cortex-A78AE', CoreCount: 16 },
    MemorySummary: { TotalSystemMemoryGiB: 32 },
    Boot: { BootSourceOverrideEnabled: 'Disabled', BootSourceOverrideTarget: 'None', BootSourceOverrideMode: 'UEFI' },
    Links: { Chassis: [link(chassis)], ManagedBy: [link(mgr)] },
  });
  t.set(`${ROOT}/Chassis`, collection(`${ROOT}/Chassis`, 'ChassisCollection', 'Chassis Collection', [chassis]));
  t.set(chassis, {
    '@odata.type': '#Chassis.v1_20_0.Chassis',
    '@odata.id': chassis,
    Id: 'Card1',
    Name: 'DPU Card',
    ChassisType: 'Card',
    Manufacturer: 'dpu-ztp',
    Model: 'Emulated DPU',
    SerialNumber: 'EMU0000000000',
    PowerState: 'On',
    Status: { State: 'Enabled', Health: 'OK' },
    NetworkAdapters: link(`${chassis}/NetworkAdapters`),
    Links: { ComputerSystems: [link(sys)], ManagedBy: [link(mgr)] },
  });
  t.set(`${chassis}/NetworkAdapters`, collection(`${chassis}/NetworkAdapters`, 'NetworkAdapterCollection', 'Network Adapter Collection', [adapter]));
  t.set(adapter, {
    '@odata.type': '#NetworkAdapter.v1_9_0.NetworkAdapter',
    '@odata.id': adapter,
    Id: 'NIC1',
    Name: 'DPU network adapter',
    Manufacturer: 'dpu-ztp',
    Ports: link(`${adapter}/Ports`),
    NetworkDeviceFunctions: link(`${adapter}/NetworkDeviceFunctions`),
  });
  const ports = ['P0', 'P1'];
  t.set(`${adapter}/Ports`, collection(`${adapter}/Ports`, 'PortCollection', 'Port Collection', ports.map((p) => `${adapter}/Ports/${p}`)));
  t.set(`${adapter}/NetworkDeviceFunctions`, collection(`${adapter}/NetworkDeviceFunctions`, 'NetworkDeviceFunctionCollection', 'Network Device Function Collection', ports.map((p) => `${adapter}/NetworkDeviceFunctions/${p}F0`)));
  ports.forEach((p, i) => {
    t.set(`${adapter}/Ports/${p}`, { '@odata.type': '#Port.v1_9_0.Port', '@odata.id': `${adapter}/Ports/${p}`, Id: p, Name: `Port ${p}`, LinkNetworkTechnology: 'Ethernet', LinkStatus: 'LinkUp', CurrentSpeedGbps: 100 });
    t.set(`${adapter}/NetworkDeviceFunctions/${p}F0`, {
      '@odata.type': '#NetworkDeviceFunction.v1_9_0.NetworkDeviceFunction',
      '@odata.id': `${adapter}/NetworkDeviceFunctions/${p}F0`,
      Id: `${p}F0`,
      Name: `${p} function 0`,
      NetDevFuncType: 'Ethernet',
      Ethernet: { MACAddress: `02:00:00:00:00:0${i + 1}`, PermanentMACAddress: `02:00:00:00:00:0${i + 1}` },
      Links: { PhysicalPortAssignment: link(`${adapter}/Ports/${p}`), OffloadSystem: link(sys) },
    });
  });
  t.set(`${ROOT}/Managers`, collection(`${ROOT}/Managers`, 'ManagerCollection', 'Manager Collection', [mgr]));
  t.set(mgr, {
    '@odata.type': '#Manager.v1_15_0.Manager',
    '@odata.id': mgr,
    Id: 'BMC',
    Name: 'Manager',
    ManagerType: 'BMC',
    FirmwareVersion: 'emu-1.0.0',
    Status: { State: 'Enabled', Health: 'OK' },
    PowerState: 'On',
    Links: { ManagerForServers: [link(sys)], ManagerForChassis: [link(chassis)] },
    Actions: { '#Manager.Reset': { target: `${mgr}/Actions/Manager.Reset`, 'ResetType@Redfish.AllowableValues': ['ForceRestart', 'GracefulRestart'] } },
  });
  t.set(`${ROOT}/SessionService`, { '@odata.type': '#SessionService.v1_1_8.SessionService', '@odata.id': `${ROOT}/SessionService`, Id: 'SessionService', Name: 'Session Service', ServiceEnabled: true, SessionTimeout: 1800, Sessions: link(`${ROOT}/SessionService/Sessions`) });
  t.set(`${ROOT}/AccountService`, { '@odata.type': '#AccountService.v1_10_0.AccountService', '@odata.id': `${ROOT}/AccountService`, Id: 'AccountService', Name: 'Account Service', ServiceEnabled: true, MinPasswordLength: 8, Accounts: link(`${ROOT}/AccountService/Accounts`) });
  return t;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export interface Template {
  mode: QuirkMode;
  profile: QuirkProfile;
  /** static resources, JSON text keyed by normalized path (dynamic ones are rendered by the BMC) */
  texts: Map<string, string>;
  /** the parsed static resources the BMC renders dynamic ones over (systems, manager) */
  objects: Map<string, Json>;
  systemIds: string[];
  dpuSystemId: string;
  managerId: string;
  /** path of the VirtualMedia collection ('' when the mode has no media) */
  mediaCollection: string;
  /** identity strings of the template that each BMC replaces with its own */
  tokens: { serial: string | null; uuid: string | null; macs: string[]; dpuMacs: string[] };
}

function idOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function collectMacs(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) for (const v of value) collectMacs(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'string' && /mac/i.test(k) && MAC_RE.test(v)) out.add(v);
      else collectMacs(v, out);
    }
  }
}

/** Drops `{"@odata.id": <removed>}` entries from every array, and fixes Members counts. */
function pruneLinks(value: unknown, removed: (p: string) => boolean): unknown {
  if (Array.isArray(value)) {
    return value
      .filter((v) => !(v && typeof v === 'object' && typeof (v as Json)['@odata.id'] === 'string' && removed(normalizePath((v as Json)['@odata.id'] as string))))
      .map((v) => pruneLinks(v, removed));
  }
  if (value && typeof value === 'object') {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) out[k] = pruneLinks(v, removed);
    if (Array.isArray(out.Members) && 'Members@odata.count' in out) out['Members@odata.count'] = (out.Members as unknown[]).length;
    return out;
  }
  return value;
}

/** Shapes a raw tree for a quirk mode. */
export function buildTemplate(raw: Map<string, Json>, mode: QuirkMode): Template {
  const profile = QUIRKS[mode];
  const systemPaths = [...raw.keys()].filter((p) => /^\/redfish\/v1\/Systems\/[^/]+$/.test(p) && String(raw.get(p)?.['@odata.type'] ?? '').startsWith('#ComputerSystem.'));
  if (systemPaths.length === 0) throw new ZtpError('CONFIG_INVALID', 'the mockup has no ComputerSystem under /redfish/v1/Systems');
  const dpuPath = systemPaths.find((p) => raw.get(p)?.SystemType === 'DPU') ?? systemPaths[0]!;
  const dpu = raw.get(dpuPath)!;
  const managedBy = ((dpu.Links as Json | undefined)?.ManagedBy as Json[] | undefined)?.[0]?.['@odata.id'];
  const managerPaths = [...raw.keys()].filter((p) => /^\/redfish\/v1\/Managers\/[^/]+$/.test(p));
  const managerPath = typeof managedBy === 'string' && raw.has(normalizePath(managedBy)) ? normalizePath(managedBy) : managerPaths[0];
  if (!managerPath) throw new ZtpError('CONFIG_INVALID', 'the mockup has no Manager under /redfish/v1/Managers');

  // 1. drop host systems (DPU-only BMCs) and every static VirtualMedia resource (media is live state)
  const droppedSystems = profile.dpuOnly ? systemPaths.filter((p) => p !== dpuPath) : [];
  const removed = (p: string) => droppedSystems.some((s) => p === s || p.startsWith(s + '/')) || /\/(Managers|Systems)\/[^/]+\/VirtualMedia(\/|$)/.test(p) || /\/SessionService\/Sessions\//.test(p) || /\/AccountService\/Accounts\//.test(p);
  const kept: Json = {};
  for (const [p, obj] of raw) if (!removed(p)) kept[p] = pruneLinks(obj, removed);

  // 2. rename the DPU system and its manager to the vendor's ids, in every reference
  let text = JSON.stringify(kept);
  const renames: [string, string][] = [];
  if (profile.systemId && idOf(dpuPath) !== profile.systemId) renames.push([dpuPath, `${ROOT}/Systems/${profile.systemId}`]);
  if (profile.managerId && idOf(managerPath) !== profile.managerId) renames.push([managerPath, `${ROOT}/Managers/${profile.managerId}`]);
  for (const [from, to] of renames) text = text.replace(new RegExp(escapeRe(from) + '(?=[/"#?])', 'g'), to);
  const renamed = JSON.parse(text) as Json;
  const objects = new Map<string, Json>(Object.entries(renamed) as [string, Json][]);
  const sysPath = renames.find(([f]) => f === dpuPath)?.[1] ?? dpuPath;
  const mgrPath = renames.find(([f]) => f === managerPath)?.[1] ?? managerPath;
  const dpuSystemId = idOf(sysPath);
  const managerId = idOf(mgrPath);
  objects.get(sysPath)!.Id = dpuSystemId;
  objects.get(mgrPath)!.Id = managerId;

  // 3. the services every emulated BMC has, whatever the mockup carried
  const systemIds = [...objects.keys()].filter((p) => /^\/redfish\/v1\/Systems\/[^/]+$/.test(p) && String(objects.get(p)?.['@odata.type'] ?? '').startsWith('#ComputerSystem.')).map(idOf);
  objects.set(`${ROOT}/Systems`, { ...(objects.get(`${ROOT}/Systems`) ?? {}), ...collection(`${ROOT}/Systems`, 'ComputerSystemCollection', 'Computer System Collection', systemIds.map((id) => `${ROOT}/Systems/${id}`)) });
  const root = objects.get(ROOT) ?? {};
  objects.set(ROOT, {
    ...root,
    '@odata.id': `${ROOT}/`,
    Vendor: profile.vendor,
    Product: profile.product,
    SessionService: link(`${ROOT}/SessionService`),
    AccountService: link(`${ROOT}/AccountService`),
    UpdateService: link(`${ROOT}/UpdateService`),
    TaskService: link(`${ROOT}/TaskService`),
    Links: { ...((root.Links as Json | undefined) ?? {}), Sessions: link(`${ROOT}/SessionService/Sessions`) },
  });
  if (!objects.has(`${ROOT}/SessionService`)) objects.set(`${ROOT}/SessionService`, builtinDpuTree().get(`${ROOT}/SessionService`)!);
  if (!objects.has(`${ROOT}/AccountService`)) objects.set(`${ROOT}/AccountService`, builtinDpuTree().get(`${ROOT}/AccountService`)!);
  objects.set(`${ROOT}/TaskService`, { '@odata.type': '#TaskService.v1_2_0.TaskService', '@odata.id': `${ROOT}/TaskService`, Id: 'TaskService', Name: 'Task Service', ServiceEnabled: true, Tasks: link(`${ROOT}/TaskService/Tasks`) });
  const manager = objects.get(mgrPath)!;
  const dpuSys = objects.get(sysPath)!;
  const firmware = [
    { id: 'BMC_Firmware', name: 'BMC firmware', version: String(manager.FirmwareVersion ?? 'emu-1.0.0') },
    { id: 'BIOS', name: 'DPU UEFI', version: String(dpuSys.BiosVersion ?? 'UEFI 4.2.0') },
    ...(profile.simpleUpdateBfb ? [{ id: 'DPU_OS', name: 'DPU OS (BFB)', version: 'DOCA_2.9.0_BSP_4.9.0_Ubuntu_22.04' }] : []),
  ];
  objects.set(`${ROOT}/UpdateService`, {
    '@odata.type': '#UpdateService.v1_11_0.UpdateService',
    '@odata.id': `${ROOT}/UpdateService`,
    Id: 'UpdateService',
    Name: 'Update Service',
    ServiceEnabled: true,
    FirmwareInventory: link(`${ROOT}/UpdateService/FirmwareInventory`),
    Actions: {
      '#UpdateService.SimpleUpdate': {
        target: `${ROOT}/UpdateService/Actions/UpdateService.SimpleUpdate`,
        'TransferProtocol@Redfish.AllowableValues': ['HTTP', 'HTTPS', ...(profile.simpleUpdateBfb ? ['SCP'] : [])],
      },
    },
  });
  objects.set(`${ROOT}/UpdateService/FirmwareInventory`, collection(`${ROOT}/UpdateService/FirmwareInventory`, 'SoftwareInventoryCollection', 'Firmware Inventory', firmware.map((f) => `${ROOT}/UpdateService/FirmwareInventory/${f.id}`)));
  for (const f of firmware) {
    objects.set(`${ROOT}/UpdateService/FirmwareInventory/${f.id}`, { '@odata.type': '#SoftwareInventory.v1_4_0.SoftwareInventory', '@odata.id': `${ROOT}/UpdateService/FirmwareInventory/${f.id}`, Id: f.id, Name: f.name, Version: f.version, Updateable: true, Status: { State: 'Enabled', Health: 'OK' } });
  }

  // 4. virtual media hangs where the vendor puts it
  for (const p of systemIds.map((id) => `${ROOT}/Systems/${id}`).concat(mgrPath)) delete objects.get(p)?.VirtualMedia;
  const mediaOwner = profile.media.on === 'system' ? sysPath : mgrPath;
  const mediaCollection = `${mediaOwner}/VirtualMedia`;
  objects.get(mediaOwner)!.VirtualMedia = link(mediaCollection);
  if (profile.emptyUuid) dpuSys.UUID = '';

  // 5. identity tokens: the DPU's serial and UUID, every MAC; the DPU's own port MACs
  const macs = new Set<string>();
  for (const obj of objects.values()) collectMacs(obj, macs);
  const dpuChassis = ((dpuSys.Links as Json | undefined)?.Chassis as Json[] | undefined)?.[0]?.['@odata.id'];
  const dpuMacs: string[] = [];
  for (const [p, obj] of objects) {
    const eth = obj.Ethernet as Json | undefined;
    const offload = ((obj.Links as Json | undefined)?.OffloadSystem as Json | undefined)?.['@odata.id'];
    const underCard = typeof dpuChassis === 'string' && p.startsWith(normalizePath(dpuChassis) + '/NetworkAdapters/');
    if (eth && typeof eth.MACAddress === 'string' && MAC_RE.test(eth.MACAddress) && (underCard || offload === sysPath) && !dpuMacs.includes(eth.MACAddress)) dpuMacs.push(eth.MACAddress);
  }
  const tokens = {
    serial: typeof dpuSys.SerialNumber === 'string' && dpuSys.SerialNumber !== dpuSystemId ? dpuSys.SerialNumber : null,
    uuid: typeof dpuSys.UUID === 'string' && dpuSys.UUID ? dpuSys.UUID : null,
    macs: [...macs],
    dpuMacs,
  };

  const texts = new Map<string, string>();
  for (const [p, obj] of objects) texts.set(p, JSON.stringify(obj));
  return { mode, profile, texts, objects, systemIds, dpuSystemId, managerId, mediaCollection, tokens };
}

/** What makes one emulated BMC distinguishable in a fleet. */
export interface BmcIdentity {
  serial: string;
  uuid: string;
  /** lower-case colon MACs of the DPU's ports, in the template's order */
  macs: string[];
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** A locally administered unicast MAC (02:…) derived from the BMC id. */
export function derivedMac(bmcId: string, index: number): string {
  const d = digest(`mac:${bmcId}:${index}`);
  return ['02', ...[...d.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Serial, UUID and MACs derived deterministically from the BMC id (the same id, the same DPU). */
export function deriveIdentity(bmcId: string, portCount: number): BmcIdentity {
  const s = digest(`serial:${bmcId}`).toString('hex').toUpperCase();
  const u = digest(`uuid:${bmcId}`).toString('hex');
  const uuid = `${u.slice(0, 8)}-${u.slice(8, 12)}-4${u.slice(13, 16)}-${((parseInt(u[16]!, 16) & 3) | 8).toString(16)}${u.slice(17, 20)}-${u.slice(20, 32)}`;
  return { serial: `EMU${s.slice(0, 10)}`, uuid, macs: Array.from({ length: portCount }, (_, i) => derivedMac(bmcId, i)) };
}

/**
 * The per-BMC rewrite of a template text: its identity replaces the template's tokens, and in
 * path-prefix addressing every "/redfish/v1 URI gains the BMC's prefix.
 */
export function personalizer(template: Template, bmcId: string, identity: BmcIdentity): (text: string) => string {
  const pairs: [string, string][] = [];
  if (template.tokens.serial) pairs.push([template.tokens.serial, identity.serial]);
  if (template.tokens.uuid) pairs.push([template.tokens.uuid, identity.uuid]);
  const dpuMacs = new Set(template.tokens.dpuMacs);
  let other = 0;
  for (const mac of template.tokens.macs) {
    const i = template.tokens.dpuMacs.indexOf(mac);
    const value = dpuMacs.has(mac) ? identity.macs[i]! : derivedMac(bmcId, 100 + other++);
    pairs.push([mac, /[A-F]/.test(mac) ? value.toUpperCase() : value]);
  }
  if (pairs.length === 0) return (t) => t;
  const re = new RegExp(pairs.map(([from]) => escapeRe(from)).join('|'), 'g');
  const map = new Map(pairs);
  return (text) => text.replace(re, (m) => map.get(m) ?? m);
}
