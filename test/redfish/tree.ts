// A small Redfish resource tree for transport and quirk tests: one service root, one system with
// a reset action and boot override values, one CD slot with Insert/Eject actions on the manager.
// Vendor fixtures (test/redfish/fixtures/<quirk>/) are laid over it.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Recorded, Reply, TestBmc } from './server.js';

export interface TreeOptions {
  systemId?: string;
  managerId?: string;
  mediaOnSystem?: boolean;
  actions?: boolean;
  bootTargets?: string[];
  resetTypes?: string[];
}

export function miniTree(o: TreeOptions = {}): Record<string, unknown> {
  const sys = `/redfish/v1/Systems/${o.systemId ?? 'System1'}`;
  const mgr = `/redfish/v1/Managers/${o.managerId ?? 'BMC'}`;
  const media = o.mediaOnSystem ? `${sys}/VirtualMedia` : `${mgr}/VirtualMedia`;
  const slot = `${media}/CD1`;
  const tree: Record<string, unknown> = {
    '/redfish/v1': {
      '@odata.id': '/redfish/v1', Id: 'RootService', RedfishVersion: '1.15.0', Vendor: 'TestVendor', Product: 'Test BMC',
      Systems: { '@odata.id': '/redfish/v1/Systems' }, Managers: { '@odata.id': '/redfish/v1/Managers' },
      SessionService: { '@odata.id': '/redfish/v1/SessionService' }, AccountService: { '@odata.id': '/redfish/v1/AccountService' },
      UpdateService: { '@odata.id': '/redfish/v1/UpdateService' },
      Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } },
    },
    '/redfish/v1/Systems': { '@odata.id': '/redfish/v1/Systems', Members: [{ '@odata.id': sys }], 'Members@odata.count': 1 },
    [sys]: {
      '@odata.id': sys, Id: o.systemId ?? 'System1', SystemType: 'DPU', Manufacturer: 'TestVendor', Model: 'DPU-1', SerialNumber: 'SN-TREE-1',
      PowerState: 'Off',
      Boot: {
        BootSourceOverrideEnabled: 'Disabled', BootSourceOverrideTarget: 'None', BootSourceOverrideMode: 'UEFI',
        'BootSourceOverrideTarget@Redfish.AllowableValues': o.bootTargets ?? ['None', 'Pxe', 'Cd', 'Hdd', 'UefiHttp'], HttpBootUri: null,
      },
      Actions: { '#ComputerSystem.Reset': { target: `${sys}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': o.resetTypes ?? ['On', 'ForceOff', 'ForceRestart', 'GracefulShutdown'] } },
      Links: { ManagedBy: [{ '@odata.id': mgr }] },
      ...(o.mediaOnSystem ? { VirtualMedia: { '@odata.id': media } } : {}),
    },
    '/redfish/v1/Managers': { '@odata.id': '/redfish/v1/Managers', Members: [{ '@odata.id': mgr }] },
    [mgr]: {
      '@odata.id': mgr, Id: o.managerId ?? 'BMC', Model: 'TestBMC', FirmwareVersion: '1.0',
      Actions: { '#Manager.Reset': { target: `${mgr}/Actions/Manager.Reset` } },
      ...(o.mediaOnSystem ? {} : { VirtualMedia: { '@odata.id': media } }),
    },
    [media]: { '@odata.id': media, Members: [{ '@odata.id': slot }] },
    [slot]: {
      '@odata.id': slot, Id: 'CD1', MediaTypes: ['CD', 'DVD'], Image: null, Inserted: false,
      ...(o.actions === false ? {} : {
        Actions: {
          '#VirtualMedia.InsertMedia': { target: `${slot}/Actions/VirtualMedia.InsertMedia` },
          '#VirtualMedia.EjectMedia': { target: `${slot}/Actions/VirtualMedia.EjectMedia` },
        },
      }),
    },
    '/redfish/v1/SessionService': { '@odata.id': '/redfish/v1/SessionService', Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } },
    '/redfish/v1/AccountService': { '@odata.id': '/redfish/v1/AccountService', Accounts: { '@odata.id': '/redfish/v1/AccountService/Accounts' } },
    '/redfish/v1/AccountService/Accounts': { '@odata.id': '/redfish/v1/AccountService/Accounts', Members: [{ '@odata.id': '/redfish/v1/AccountService/Accounts/1' }] },
    '/redfish/v1/AccountService/Accounts/1': { '@odata.id': '/redfish/v1/AccountService/Accounts/1', Id: '1', UserName: 'root' },
    '/redfish/v1/UpdateService': {
      '@odata.id': '/redfish/v1/UpdateService',
      Actions: { '#UpdateService.SimpleUpdate': { target: '/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate', 'TransferProtocol@Redfish.AllowableValues': ['HTTP', 'HTTPS'] } },
    },
  };
  return tree;
}

export const paths = (o: TreeOptions = {}) => {
  const sys = `/redfish/v1/Systems/${o.systemId ?? 'System1'}`;
  const mgr = `/redfish/v1/Managers/${o.managerId ?? 'BMC'}`;
  const media = o.mediaOnSystem ? `${sys}/VirtualMedia` : `${mgr}/VirtualMedia`;
  return { sys, mgr, slot: `${media}/CD1`, reset: `${sys}/Actions/ComputerSystem.Reset`, insert: `${media}/CD1/Actions/VirtualMedia.InsertMedia`, eject: `${media}/CD1/Actions/VirtualMedia.EjectMedia` };
};

/**
 * A vendor fixture directory (test/redfish/fixtures/<quirk>/) as path → resource, to lay over
 * miniTree: every *.json file is one resource, placed at its own `@odata.id`. Files named
 * error-*.json and reply-*.json are answers the test sends (fixtureReply), not resources.
 */
export function loadFixture(dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!existsSync(dir)) throw new Error(`no fixture directory ${dir}`);
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json') || f.startsWith('error-') || f.startsWith('reply-')) continue;
    const doc = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
    const id = doc['@odata.id'];
    if (typeof id !== 'string') throw new Error(`${join(dir, f)} has no @odata.id`);
    out[id.replace(/\/+$/, '')] = doc;
  }
  return out;
}

/** One answer body of a fixture (error-*.json, reply-*.json), a fresh copy each time. */
export function fixtureReply(dir: string, name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, name), 'utf8')) as Record<string, unknown>;
}


/**
 * The minimum a BMC does with the actions of miniTree: InsertMedia/EjectMedia set the slot,
 * Reset flips PowerState at once. Tests chain their faults in front of it.
 */
export function basicActions(o: TreeOptions = {}) {
  const p = paths(o);
  return (req: Recorded, bmc: TestBmc): Reply | undefined => {
    if (req.method !== 'POST') return undefined;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const slot = bmc.resource(p.slot)!;
    const system = bmc.resource(p.sys)!;
    if (req.path === p.insert) {
      slot.Image = body.Image;
      slot.Inserted = true;
      return { status: 204 };
    }
    if (req.path === p.eject) {
      slot.Image = null;
      slot.Inserted = false;
      return { status: 204 };
    }
    if (req.path === p.reset) {
      const type = String(body.ResetType);
      system.PowerState = type === 'ForceOff' || type === 'GracefulShutdown' ? 'Off' : 'On';
      return { status: 204 };
    }
    return undefined;
  };
}
