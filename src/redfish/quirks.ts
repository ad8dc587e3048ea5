// The one table of BMC behaviour that cannot be probed. Everything else (which system, where
// virtual media lives, action or PATCH, the InsertMedia body, boot targets, reset types,
// @Redfish.Settings) is read from the BMC itself by capabilities.ts. An entry here exists only
// because a BMC misbehaves in a way its resources do not reveal; each names its source and has a
// fixture under test/redfish/fixtures/<id>/ and a test in test/redfish/quirks.test.ts.
//
// Identification is by what the service root and manager say about themselves (Vendor, Product,
// Oem keys, manager model), never by a user-supplied vendor name.

export interface BmcIdentity {
  /** ServiceRoot.Vendor (Redfish 1.5+) */
  vendor: string;
  /** ServiceRoot.Product */
  product: string;
  /** keys of ServiceRoot.Oem and the manager's Oem */
  oemKeys: string[];
  /** Manager.Model and FirmwareVersion */
  managerModel: string;
  managerFirmware: string;
  /** member ids of /redfish/v1/Systems and /Managers */
  systemIds: string[];
  managerIds: string[];
}

export interface Quirk {
  id: string;
  family: string;
  /** where the behaviour is documented or was learnt */
  source: string;
  matches(identity: BmcIdentity): boolean;
  /** MessageId keys meaning "not ready, ask again" (retried like 503) */
  transientMessages?: string[];
  /** MessageId keys meaning "this BMC will never do that" (REDFISH_UNSUPPORTED, no retry) */
  unsupportedMessages?: string[];
  /** send `{}` to EjectMedia at once instead of waiting for a 400/415 on an empty body */
  ejectBodyFirst?: boolean;
  /** never send If-Match on PATCH (the BMC answers 412 to any tag) */
  noIfMatch?: boolean;
  /** image URL schemes the BMC can fetch; others are refused before any call */
  imageSchemes?: string[];
  /** slots tried first (by Id), e.g. the URL-capable ones */
  preferSlots?: RegExp;
  /** members the first InsertMedia body carries (negotiation would find them, one 400 later) */
  insertDefaults?: Record<string, unknown>;
  /** boot override goes to this object even when the system does not advertise @Redfish.Settings */
  bootSettingsPath?: (systemUri: string) => string;
  /** how long the slot may lag before reporting Inserted/ejected (ms) */
  mediaSettleMs?: number;
  /** a 409 right after a power transition is transient: retry the reset this many times */
  resetConflictRetries?: number;
  /** the OS is installed by a BFB through UpdateService.SimpleUpdate (RShim), not by media */
  bfb?: { target: string | null; rshim: boolean };
}

const has = (haystack: string, needle: RegExp) => needle.test(haystack);

export const QUIRKS: readonly Quirk[] = [
  {
    // Dell iDRAC: SYS518 "iDRAC not ready" and RAC0679/SYS446 while a previous job settles;
    // after EjectMedia `Inserted` stays true for a few seconds; a 409 on `On` just after a
    // power-off. Sources: sushy-oem-idrac, ironic idrac-redfish, REDFISH.md.
    id: 'idrac',
    family: 'Dell iDRAC',
    source: 'sushy-oem-idrac; ironic drivers/modules/drac; Dell iDRAC Redfish API guide',
    matches: (i) => has(i.vendor, /^dell/i) || i.oemKeys.includes('Dell') || has(i.managerModel, /idrac/i),
    transientMessages: ['SYS518', 'SYS446', 'RAC0679'],
    mediaSettleMs: 15_000,
    resetConflictRetries: 3,
  },
  {
    // HPE iLO: EjectMedia with no body → 400, it wants `{}`; boot changes during POST refused
    // with UnableToModifyDuringSystemPOST (retry once POST ends). Accept-Encoding 406 is probed.
    id: 'ilo',
    family: 'HPE iLO',
    source: 'python-ilorest-library; sushy issue 1894318; ironic ilo driver',
    matches: (i) => has(i.vendor, /^hpe?$/i) || i.oemKeys.includes('Hpe') || i.oemKeys.includes('Hp') || has(i.managerModel, /ilo/i),
    ejectBodyFirst: true,
    transientMessages: ['UnableToModifyDuringSystemPOST'],
  },
  {
    // Supermicro: InsertMedia refuses Inserted/WriteProtected (never sent on the action path);
    // the virtual CD target (UsbCd vs Cd) is read from AllowableValues. Not probeable: features
    // behind a licence answer OemLicenseNotPassed, which is final (no retry, REDFISH_UNSUPPORTED),
    // and a stale mount takes seconds to clear after EjectMedia.
    id: 'supermicro',
    family: 'Supermicro',
    source: 'bmclib providers/supermicro; ironic redfish vmedia notes',
    matches: (i) => has(i.vendor, /supermicro/i) || i.oemKeys.includes('Supermicro'),
    unsupportedMessages: ['OemLicenseNotPassed'],
    mediaSettleMs: 10_000,
  },
  {
    // Lenovo XCC: no Insert/Eject actions (PATCH, probed); RDOC slots (Remote*) take uploads
    // only, the EXT slots take a URL.
    id: 'xcc',
    family: 'Lenovo XCC',
    source: 'Lenovo XClarity Controller Redfish REST API guide (VirtualMedia PATCH)',
    matches: (i) => has(i.vendor, /lenovo/i) || i.oemKeys.includes('Lenovo') || has(i.managerModel, /xclarity|xcc/i),
    preferSlots: /^EXT/i,
  },
  {
    // OpenBMC bmcweb: media on the Manager (probed); its proxy (NBD) slots show
    // TransferProtocolType "OEM" and are tried last (probed). Not probeable: the legacy slots
    // fetch only https:// or smb:// images, and If-Match is unreliable (412 on valid tags).
    id: 'openbmc',
    family: 'OpenBMC',
    source: 'bmcweb redfish-core/lib/virtual_media.hpp',
    matches: (i) => has(i.vendor, /openbmc/i) || i.oemKeys.includes('OpenBmc') || i.oemKeys.includes('OpenBMC'),
    imageSchemes: ['https', 'smb'],
    noIfMatch: true,
  },
  {
    // AMI MegaRAC: boot override is only honoured on the future-state object Systems/Self/SD,
    // which older firmware does not advertise as @Redfish.Settings.
    id: 'ami',
    family: 'AMI MegaRAC',
    source: 'AMI MegaRAC Redfish guide; ironic bug 2032379',
    matches: (i) => has(i.vendor, /^ami$/i) || i.oemKeys.includes('Ami') || i.oemKeys.includes('AMI'),
    bootSettingsPath: (systemUri) => `${systemUri.replace(/\/+$/, '')}/SD`,
  },
  {
    // NVIDIA BlueField BMC: the OS goes on as a BFB pushed by UpdateService.SimpleUpdate over
    // RShim (BMC ≥ 24.10 with ImageURI); boot settings live on Systems/Bluefield/Settings;
    // collections may answer Members: null (handled by the transport for everyone).
    id: 'bluefield',
    family: 'NVIDIA BlueField',
    source: 'NVIDIA BlueField BMC docs (Redfish: BFB update, RShim, DPU mode)',
    matches: (i) => i.systemIds.includes('Bluefield') || i.managerIds.includes('Bluefield_BMC') || (i.oemKeys.includes('Nvidia') && has(i.product, /bluefield/i)),
    bootSettingsPath: (systemUri) => `${systemUri.replace(/\/+$/, '')}/Settings`,
    bfb: { target: '/redfish/v1/UpdateService/FirmwareInventory/DPU_OS', rshim: true },
  },
  {
    // Intel IPU E2100 (IMC): InsertMedia needs TransferMethod "Upload" (sent at once: its error
    // does not name the parameter on every firmware); the media view refreshes slowly (~2
    // minutes). Probed, not listed here: no EjectMedia action (a new insert replaces the image),
    // system reset offers only Graceful* (GracefulRestart also starts a stopped IPU).
    id: 'ipu',
    family: 'Intel IPU',
    source: 'intel/ipu-redfish documentation',
    matches: (i) => (has(i.vendor, /intel/i) && has(i.product + ' ' + i.managerModel, /ipu|e2100|imc/i)) || i.oemKeys.includes('IntelIPU'),
    insertDefaults: { TransferMethod: 'Upload' },
    mediaSettleMs: 150_000,
  },
];

/** The quirks of this BMC: every entry of `table` that matches (normally zero or one). */
export function quirksFor(identity: BmcIdentity, table: readonly Quirk[] = QUIRKS): Quirk[] {
  return table.filter((q) => q.matches(identity));
}

/** The merged effect of several quirks. */
export interface QuirkSet {
  ids: string[];
  transientMessages: string[];
  unsupportedMessages: string[];
  ejectBodyFirst: boolean;
  noIfMatch: boolean;
  imageSchemes: string[] | null;
  preferSlots: RegExp | null;
  insertDefaults: Record<string, unknown>;
  bootSettingsPath: ((systemUri: string) => string) | null;
  mediaSettleMs: number;
  resetConflictRetries: number;
  bfb: { target: string | null; rshim: boolean } | null;
}

export const DEFAULT_MEDIA_SETTLE_MS = 5_000;

export function mergeQuirks(quirks: Quirk[]): QuirkSet {
  return {
    ids: quirks.map((q) => q.id),
    transientMessages: quirks.flatMap((q) => q.transientMessages ?? []),
    unsupportedMessages: quirks.flatMap((q) => q.unsupportedMessages ?? []),
    ejectBodyFirst: quirks.some((q) => q.ejectBodyFirst),
    noIfMatch: quirks.some((q) => q.noIfMatch),
    imageSchemes: quirks.find((q) => q.imageSchemes)?.imageSchemes ?? null,
    preferSlots: quirks.find((q) => q.preferSlots)?.preferSlots ?? null,
    insertDefaults: Object.assign({}, ...quirks.map((q) => q.insertDefaults ?? {})) as Record<string, unknown>,
    bootSettingsPath: quirks.find((q) => q.bootSettingsPath)?.bootSettingsPath ?? null,
    mediaSettleMs: Math.max(DEFAULT_MEDIA_SETTLE_MS, ...quirks.map((q) => q.mediaSettleMs ?? 0)),
    resetConflictRetries: Math.max(1, ...quirks.map((q) => q.resetConflictRetries ?? 0)),
    bfb: quirks.find((q) => q.bfb)?.bfb ?? null,
  };
}
