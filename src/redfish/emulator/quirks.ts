// What each emulated vendor does differently, in one table (STYLE.md: quirks isolated, each
// with a comment). Every entry mirrors a line of ../shared/REDFISH.md "Vendor quirks", so each
// client fallback is exercised by something that behaves like that vendor. `generic` is a
// DMTF-conforming BMC: actions and PATCH on media, strong ETags, If-Match checked.
import type { ResetKind } from '../api.js';

export const QUIRK_MODES = ['generic', 'idrac', 'ilo', 'supermicro', 'xcc', 'openbmc', 'ami', 'bluefield', 'ipu'] as const;
export type QuirkMode = (typeof QUIRK_MODES)[number];

export function isQuirkMode(value: string): value is QuirkMode {
  return (QUIRK_MODES as readonly string[]).includes(value);
}

export interface MediaSlotSpec {
  id: string;
  name: string;
  mediaTypes: string[];
  /** false: the slot refuses a URL (OpenBMC proxy slots, XCC RDOC upload slots) */
  acceptsUrl: boolean;
  /** shown as the slot's TransferProtocolType before anything is inserted */
  transferProtocolType?: string;
}

export interface QuirkProfile {
  /** Manufacturer-ish label for the service root's Vendor/Product */
  vendor: string;
  product: string;
  /** the DPU ComputerSystem's and its manager's ids (undefined: keep the mockup's) */
  systemId?: string;
  managerId?: string;
  /** drop every ComputerSystem but the DPU (a DPU's own BMC knows only the DPU) */
  dpuOnly: boolean;
  /** factory account */
  username: string;
  password: string;
  /** the factory password must be changed before anything else works */
  passwordChangeRequired: boolean;
  media: {
    /** where the VirtualMedia collection hangs: the System (current schema) or the Manager (deprecated, still common) */
    on: 'system' | 'manager';
    slots: MediaSlotSpec[];
    /** #VirtualMedia.InsertMedia / EjectMedia actions are advertised */
    insertAction: boolean;
    ejectAction: boolean;
    /** PATCH {Image, Inserted} on the slot works (Allow: GET, PATCH) */
    patch: boolean;
    /** EjectMedia without a JSON body is refused with 415 (iLO wants `{}`) */
    ejectNeedsBody: boolean;
    /** InsertMedia parameters refused when present (Supermicro X11/X12 reject Inserted/WriteProtected) */
    rejectsParams: string[];
    /** InsertMedia fails with ActionParameterMissing until TransferProtocolType is sent */
    requiresTransferProtocolType: boolean;
    /** InsertMedia needs this TransferMethod (Intel IPU: Upload) */
    requiresTransferMethod?: 'Stream' | 'Upload';
    /** accepted URL schemes (OpenBMC: https only, plus smb) */
    schemes: string[];
    /** after EjectMedia, Inserted stays true for timing.ejectLagMs and an insert meanwhile is a 500 (iDRAC) */
    ejectLag: boolean;
    /** the first InsertMedia per BMC answers "not ready" once (iDRAC SYS518) */
    notReadyOnce: boolean;
    /** an Image left in the slot (even not Inserted) blocks a new insert until ejected (Supermicro) */
    staleImageBlocks: boolean;
    /** InsertMedia over an inserted image replaces it instead of a 409 (Intel IPU, which has no eject) */
    insertReplaces: boolean;
  };
  boot: {
    /** BootSourceOverrideTarget@Redfish.AllowableValues */
    targets: string[];
    enabled: string[];
    /** where an override is PATCHed: the System itself, or its @Redfish.Settings object */
    via: 'system' | { settings: string };
    /** BootSourceOverrideEnabled must accompany every target change (Supermicro) */
    requiresEnabled: boolean;
    /** mode, enabled and target must all be sent every time (AMI) */
    requiresAll: boolean;
    /** Boot.HttpBootUri is writable (else the URL comes from DHCP) */
    httpBootUri: boolean;
    /** boot changes refused while the system is in POST (iLO UnableToModifyDuringSystemPOST) */
    refusesDuringPost: boolean;
    /**
     * UEFI boot options (Systems/<id>/BootOptions, Boot.BootOrder, Boot.BootNext), factory order
     * first entry first; none: the system exposes no boot order.
     */
    options?: BootOptionSpec[];
  };
  reset: {
    types: ResetKind[];
    /** On while On: 'noop' (204) or '409' (already in state) */
    onWhileOn: 'noop' | '409';
    /** On within timing.offSettleMs of a power-off is a transient 409 (iDRAC) */
    conflictAfterOff: boolean;
  };
  etag: {
    /** ETags are sent weak (W/"…") but If-Match compares strongly (iLO) */
    weak: boolean;
    /** 'check': compare; 'reject': any If-Match is a 412 (OpenBMC); 'reject-on-actions': 412 on action POSTs (iDRAC10) */
    ifMatch: 'check' | 'reject' | 'reject-on-actions';
  };
  /** empty collections answer Members: null (BlueField) */
  nullMembers: boolean;
  /** the system's UUID is "" (BlueField) */
  emptyUuid: boolean;
  /** every @odata.id ends with "/" (iLO) */
  trailingSlash: boolean;
  /** UpdateService.SimpleUpdate takes a BFB for the DPU OS (BlueField, via RShim) */
  simpleUpdateBfb: boolean;
  /** NVIDIA Oem: operation mode (DpuMode/NicMode) and BMC RShim switch */
  nvidiaOem: boolean;
}

export interface BootOptionSpec {
  /** BootOptionReference, e.g. Boot0001 */
  reference: string;
  displayName: string;
  uefiDevicePath: string;
  /** what the firmware does when it boots this option */
  boots: 'disk' | 'pxe' | 'uefi-http';
}

/**
 * A BlueField DPU's UEFI boot options as its BMC lists them: eMMC first from the factory, then
 * the host-facing NIC port and the out-of-band management port (NET-OOB-…), PXE and HTTP each.
 */
const BLUEFIELD_BOOT_OPTIONS: BootOptionSpec[] = [
  { reference: 'Boot0000', displayName: 'UEFI eMMC Device', uefiDevicePath: 'VenHw(8E2A3E1C-0000-0000-0000-000000000000)/eMMC(0x0)', boots: 'disk' },
  { reference: 'Boot0001', displayName: 'NET-NIC_P0-IPV4', uefiDevicePath: 'MAC(B83FD2A10001,0x1)/IPv4(0.0.0.0)', boots: 'pxe' },
  { reference: 'Boot0002', displayName: 'NET-OOB-IPV4', uefiDevicePath: 'MAC(B83FD2A1000A,0x1)/IPv4(0.0.0.0)', boots: 'pxe' },
  { reference: 'Boot0003', displayName: 'NET-OOB-IPV4-HTTP', uefiDevicePath: 'MAC(B83FD2A1000A,0x1)/IPv4(0.0.0.0)/Uri()', boots: 'uefi-http' },
];

const CD_SLOT: MediaSlotSpec = { id: 'CD1', name: 'Virtual CD', mediaTypes: ['CD', 'DVD'], acceptsUrl: true };
const USB_SLOT: MediaSlotSpec = { id: 'USB1', name: 'Virtual Removable Media', mediaTypes: ['USBStick', 'Floppy'], acceptsUrl: true };
const STANDARD_TARGETS: string[] = ['None', 'Pxe', 'Cd', 'Hdd', 'BiosSetup', 'UefiHttp', 'UefiTarget'];
const ALL_RESETS: ResetKind[] = ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'Nmi', 'ForceOn', 'PushPowerButton', 'PowerCycle'];

const GENERIC: QuirkProfile = {
  vendor: 'DMTF-conforming',
  product: 'dpu-ztp BMC emulator',
  dpuOnly: false,
  username: 'admin',
  password: 'password',
  passwordChangeRequired: false,
  media: {
    on: 'manager',
    slots: [CD_SLOT, USB_SLOT],
    insertAction: true,
    ejectAction: true,
    patch: true,
    ejectNeedsBody: false,
    rejectsParams: [],
    requiresTransferProtocolType: false,
    schemes: ['http', 'https'],
    ejectLag: false,
    notReadyOnce: false,
    staleImageBlocks: false,
    insertReplaces: false,
  },
  boot: { targets: STANDARD_TARGETS, enabled: ['Disabled', 'Once', 'Continuous'], via: 'system', requiresEnabled: false, requiresAll: false, httpBootUri: true, refusesDuringPost: false },
  reset: { types: ALL_RESETS, onWhileOn: 'noop', conflictAfterOff: false },
  etag: { weak: false, ifMatch: 'check' },
  nullMembers: false,
  emptyUuid: false,
  trailingSlash: false,
  simpleUpdateBfb: false,
  nvidiaOem: false,
};

type Override = { [K in keyof QuirkProfile]?: QuirkProfile[K] extends unknown[] ? QuirkProfile[K] : QuirkProfile[K] extends object ? Partial<QuirkProfile[K]> : QuirkProfile[K] };

function profile(o: Override): QuirkProfile {
  return {
    ...GENERIC,
    ...o,
    media: { ...GENERIC.media, ...o.media },
    boot: { ...GENERIC.boot, ...o.boot },
    reset: { ...GENERIC.reset, ...o.reset },
    etag: { ...GENERIC.etag, ...o.etag },
  } as QuirkProfile;
}

export const QUIRKS: Record<QuirkMode, QuirkProfile> = {
  generic: GENERIC,

  // Dell iDRAC 9/10: media only on the System, slot "1" (iDRAC10); after EjectMedia `Inserted`
  // stays true briefly and an insert meanwhile is a 5xx; "SYS518 iDRAC not ready" (retry);
  // If-Match on action POSTs is a 412; a transient 409 on On right after a power-off; On while
  // On is 409 "already in state".
  idrac: profile({
    vendor: 'Dell',
    product: 'Integrated Dell Remote Access Controller',
    systemId: 'System.Embedded.1',
    managerId: 'iDRAC.Embedded.1',
    username: 'root',
    password: 'calvin',
    media: { on: 'system', slots: [{ id: '1', name: 'VirtualMedia Instance 1', mediaTypes: ['CD', 'DVD', 'USBStick'], acceptsUrl: true }], patch: false, ejectLag: true, notReadyOnce: true },
    reset: { onWhileOn: '409', conflictAfterOff: true },
    etag: { ifMatch: 'reject-on-actions' },
  }),

  // HPE iLO 5/6: EjectMedia needs body `{}`; boot changes refused during POST; weak ETags
  // (If-Match wants the strong form); trailing "/" in every @odata.id. Gen10 Plus's 406 on
  // Accept-Encoding: identity depends on the firmware: it is the `identity-406` fault (sushy 4.3
  // always sends identity and cannot talk to such a BMC).
  ilo: profile({
    vendor: 'HPE',
    product: 'ProLiant',
    systemId: '1',
    managerId: '1',
    username: 'Administrator',
    password: 'password',
    media: { slots: [{ id: '2', name: 'Virtual Removable Media', mediaTypes: ['CD', 'DVD'], acceptsUrl: true }, { id: '1', name: 'Virtual Removable Media', mediaTypes: ['Floppy', 'USBStick'], acceptsUrl: true }], patch: true, ejectNeedsBody: true },
    boot: { refusesDuringPost: true },
    etag: { weak: true },
    trailingSlash: true,
  }),

  // Supermicro X11/X12: the virtual CD boot target is UsbCd; InsertMedia rejects Inserted and
  // WriteProtected and wants TransferProtocolType; BootSourceOverrideEnabled must be sent with
  // every target; an Image left in the slot blocks a new insert.
  supermicro: profile({
    vendor: 'Supermicro',
    product: 'X12',
    systemId: '1',
    managerId: '1',
    username: 'ADMIN',
    password: 'ADMIN',
    media: { slots: [{ id: 'CD1', name: 'Virtual CD', mediaTypes: ['CD', 'DVD'], acceptsUrl: true }], patch: false, rejectsParams: ['Inserted', 'WriteProtected'], requiresTransferProtocolType: true, staleImageBlocks: true },
    boot: { targets: ['None', 'Pxe', 'UsbCd', 'Hdd', 'BiosSetup', 'UefiHttp'], requiresEnabled: true, httpBootUri: false },
  }),

  // Lenovo XCC: no Insert/Eject actions (PATCH the slot); only the EXT slots take URLs (RDOC are
  // upload slots); BootSourceOverrideEnabled allows only Once/Disabled.
  xcc: profile({
    vendor: 'Lenovo',
    product: 'ThinkSystem',
    systemId: '1',
    managerId: '1',
    username: 'USERID',
    password: 'PASSW0RD',
    media: {
      slots: [
        { id: 'RDOC1', name: 'RDOC1', mediaTypes: ['CD', 'DVD', 'USBStick'], acceptsUrl: false },
        { id: 'EXT1', name: 'EXT1', mediaTypes: ['CD', 'DVD', 'USBStick'], acceptsUrl: true },
      ],
      insertAction: false,
      ejectAction: false,
      patch: true,
    },
    boot: { enabled: ['Disabled', 'Once'], httpBootUri: false },
  }),

  // OpenBMC bmcweb: media on the Manager; Slot_0 is a proxy (OEM) slot that refuses URLs, Slot_1
  // the legacy one; only https:// (or smb://) images; If-Match unreliable: always a 412.
  openbmc: profile({
    vendor: 'OpenBMC',
    product: 'bmcweb',
    systemId: 'system',
    managerId: 'bmc',
    username: 'root',
    password: '0penBmc',
    media: {
      slots: [
        { id: 'Slot_0', name: 'Virtual Removable Media', mediaTypes: ['CD', 'USBStick'], acceptsUrl: false, transferProtocolType: 'OEM' },
        { id: 'Slot_1', name: 'Virtual Removable Media', mediaTypes: ['CD', 'USBStick'], acceptsUrl: true },
      ],
      patch: false,
      schemes: ['https', 'smb'],
    },
    boot: { httpBootUri: false },
    etag: { ifMatch: 'reject' },
  }),

  // AMI MegaRAC: the override goes to the future-state settings object …/Systems/Self/SD (applied
  // at the next reset) with mode, enabled and target every time; PATCH on the System is refused.
  ami: profile({
    vendor: 'AMI',
    product: 'MegaRAC SP-X',
    systemId: 'Self',
    managerId: 'Self',
    username: 'admin',
    password: 'admin',
    media: { slots: [CD_SLOT], patch: false },
    boot: { via: { settings: 'SD' }, requiresAll: true, httpBootUri: false },
  }),

  // NVIDIA BlueField BMC: Systems/Bluefield and Managers/Bluefield_BMC; boot settings PATCHed to
  // Systems/Bluefield/Settings; empty collections are Members: null; UUID ""; no virtual media;
  // OS install is a BFB pushed by UpdateService.SimpleUpdate over RShim (the BMC's RShim must be
  // enabled first) or UEFI HTTP boot; root/0penBmc must be changed on first login.
  bluefield: profile({
    vendor: 'Nvidia',
    product: 'BlueField BMC',
    systemId: 'Bluefield',
    managerId: 'Bluefield_BMC',
    dpuOnly: true,
    username: 'root',
    password: '0penBmc',
    passwordChangeRequired: true,
    media: { slots: [], insertAction: false, ejectAction: false, patch: false },
    // BootOrder and BootNext (UefiBootNext) are PATCHed to the Settings object too, applied at reset.
    boot: { targets: ['None', 'Pxe', 'UefiHttp', 'UefiShell', 'Hdd', 'UefiTarget', 'UefiBootNext'], via: { settings: 'Settings' }, httpBootUri: true, options: BLUEFIELD_BOOT_OPTIONS },
    etag: { ifMatch: 'reject' },
    nullMembers: true,
    emptyUuid: true,
    simpleUpdateBfb: true,
    nvidiaOem: true,
  }),

  // Intel IPU E2100: InsertMedia needs TransferMethod "Upload"; no EjectMedia (insert of another
  // image replaces); override targets only Cd/None; system reset only Graceful* (GracefulRestart
  // also powers on a stopped system).
  ipu: profile({
    vendor: 'Intel',
    product: 'IPU E2100',
    systemId: '1',
    managerId: '1',
    dpuOnly: true,
    username: 'root',
    password: 'password',
    media: { on: 'system', slots: [CD_SLOT], ejectAction: false, patch: false, requiresTransferMethod: 'Upload', insertReplaces: true },
    boot: { targets: ['Cd', 'None'], httpBootUri: false },
    reset: { types: ['GracefulShutdown', 'GracefulRestart'] },
  }),
};
