// The Redfish port: what the rest of the suite (CLI, onboarding conductor, simulator, bench)
// may ask of a BMC. The client in this folder implements it; nothing outside src/redfish/
// imports undici or knows a Redfish URI. Types only: no I/O here.

/** How to reach and trust one BMC. */
export interface BmcEndpoint {
  /** https://host[:port] (a path prefix is allowed: the service root is <url>/redfish/v1) */
  url: string;
  username?: string;
  password?: string;
  /** PEM bundle the BMC's certificate must chain to (default: the system store) */
  caBundle?: string;
  /** SHA-256 fingerprint of the BMC's leaf certificate (hex, colons allowed): pins instead of a CA */
  fingerprint256?: string;
  /** skip TLS verification: explicit per-BMC opt-in, logged as a warning each session */
  insecure?: boolean;
  /** the ComputerSystem to drive; default: the one with SystemType DPU, else the only one */
  systemId?: string;
  /** requests in flight to this BMC at once (default 1) */
  concurrency?: number;
  /** the password to set when the BMC demands a change on first login (PasswordChangeRequired) */
  newPassword?: string;
}

export type BootTarget = 'Cd' | 'UsbCd' | 'UefiHttp' | 'Pxe' | 'Hdd' | 'UefiTarget' | 'BiosSetup' | 'UefiBootNext' | 'None';
export type ResetKind =
  | 'On' | 'ForceOn' | 'ForceOff' | 'GracefulShutdown' | 'GracefulRestart' | 'ForceRestart' | 'PowerCycle' | 'Nmi' | 'PushPowerButton';
export type PowerState = 'On' | 'Off' | 'PoweringOn' | 'PoweringOff' | 'Paused' | 'Unknown';

/** One step of an operation, as recorded in the device's history (source 'redfish'). */
export interface StepOutcome {
  /** e.g. 'login', 'password-change', 'eject', 'insert', 'verify-inserted', 'boot-override', 'reset', 'wait-power' */
  step: string;
  outcome: 'ok' | 'skipped' | 'failed';
  /** the BMC's most severe @Message.ExtendedInfo MessageId, when it said one */
  messageId?: string;
  /** short human detail (never a secret) */
  detail?: string;
  /** which fallback ran, e.g. 'action', 'patch', 'settings-object', 'dummy-credentials' */
  via?: string;
  durationMs: number;
}

/** Called for every step as it ends; the conductor turns these into history events. */
export type StepListener = (step: StepOutcome) => void;

export interface NetworkPort {
  id: string;
  mac: string;
  /** the adapter/chassis it belongs to, e.g. 'Chassis/Card1/NetworkAdapters/DPU' */
  adapter: string;
  linkStatus?: string;
}

export interface Inventory {
  vendor: string | null;
  model: string | null;
  serial: string | null;
  systemId: string;
  systemType: string | null;
  powerState: PowerState;
  /** lower-case colon MACs of the DPU's ports */
  macs: string[];
  ports: NetworkPort[];
  firmware: { name: string; version: string }[];
  bootProgress: string | null;
  /** NVIDIA BlueField operation mode when the BMC exposes it: 'DPU' | 'NIC' | … */
  operationMode: string | null;
  /**
   * The UEFI boot order (Boot.BootOrder resolved through BootOptions), first entry first;
   * `oobNetwork` marks a network boot over the DPU's out-of-band port (BlueField "NET-OOB-…").
   * Absent when the BMC does not expose a boot order.
   */
  bootOrder?: { reference: string; name: string | null; oobNetwork: boolean }[];
  allowedBootTargets: BootTarget[];
  allowedResetTypes: ResetKind[];
  virtualMedia: { id: string; mediaTypes: string[]; inserted: boolean; image: string | null; via: 'action' | 'patch' }[];
}

export interface BootResult {
  /** which path ran */
  path: 'virtual-media' | 'uefi-http' | 'bfb' | 'oob-network';
  steps: StepOutcome[];
  /**
   * oob-network through Boot.BootOrder (no UefiBootNext on this BMC): the order before it was
   * changed. Keep it and hand it to clearBoot({ bootOrder }) from another session to restore it.
   */
  previousBootOrder?: string[];
}

export interface OobBootOptions extends OperationOptions {
  /** which out-of-band entry: 'http' (NET-OOB-…-HTTP, UEFI HTTP boot) or 'pxe'; default: the first OOB entry in the boot order */
  prefer?: 'http' | 'pxe';
  /** false: set the next boot only, no power on or restart (default true) */
  restart?: boolean;
}

export interface ClearBootOptions extends OperationOptions {
  /** the boot order to restore (a BootResult's previousBootOrder); default: the one this session changed, if any */
  bootOrder?: string[];
}

export interface InsertResult {
  /** 'already-inserted' when the slot held this very image: nothing was done (idempotent resume) */
  outcome: 'inserted' | 'already-inserted';
  slot: string;
}

export interface ResetResult {
  /** 'already-on' when power-on was asked of a system that is on: no second power cycle */
  outcome: 'reset' | 'already-on' | 'already-off';
  resetType: ResetKind;
}

/** NVIDIA BlueField operation mode (Oem/Nvidia Mode: DpuMode | NicMode). */
export type OperationMode = 'DPU' | 'NIC';

export interface OperationOptions {
  signal?: AbortSignal;
  onStep?: StepListener;
}

/**
 * One logged-in conversation with a BMC. Every method is safe to call again after a crash:
 * it reads the BMC's state first and skips what is already done (InsertMedia of the same image,
 * power-on of a running system). close() logs the session out and is safe to call twice.
 */
export interface BmcSession {
  inventory(opts?: OperationOptions): Promise<Inventory>;
  insertMedia(url: string, opts?: OperationOptions): Promise<InsertResult>;
  ejectMedia(opts?: OperationOptions): Promise<void>;
  setOneTimeBoot(target: BootTarget, opts?: OperationOptions & { httpBootUri?: string }): Promise<void>;
  /** 'On' on a running system and 'ForceOff' on a stopped one are no-ops (ResetResult says so) */
  reset(kind: ResetKind, opts?: OperationOptions): Promise<ResetResult>;
  powerState(opts?: OperationOptions): Promise<PowerState>;
  waitForPower(state: 'On' | 'Off', opts?: OperationOptions & { timeoutMs?: number }): Promise<void>;
  /** eject first, insert, verify inserted, override once (Cd/UsbCd), power on or restart, wait */
  bootFromIso(url: string, opts?: OperationOptions): Promise<BootResult>;
  /** override once to UefiHttp with HttpBootUri where supported (else DHCP gives the URL), power on or restart, wait */
  bootFromHttp(url: string, opts?: OperationOptions): Promise<BootResult>;
  /** after onboarding: eject media, override Disabled, and restore a boot order bootFromOobNetwork changed */
  clearBoot(opts?: ClearBootOptions): Promise<void>;
  /**
   * DPUs with an out-of-band management port (BlueField NET-OOB-…): the next boot uses the OOB
   * network entry, through Boot.BootNext + UefiBootNext where the system offers it, else by moving
   * the entry to the head of Boot.BootOrder (clearBoot restores the order); then power on or
   * restart and wait. REDFISH_UNSUPPORTED where the BMC lists no boot order or no OOB entry.
   * Optional on the port: only BMCs of DPUs with OOB boot entries need it.
   */
  bootFromOobNetwork?(opts?: OobBootOptions): Promise<BootResult>;
  /** NVIDIA BlueField: UpdateService.SimpleUpdate with ImageURI, task tracked to the end */
  installBfb(url: string, opts?: OperationOptions): Promise<BootResult>;
  /**
   * NVIDIA BlueField: DPU or NIC mode, effective at the next DPU reboot (REDFISH_UNSUPPORTED where
   * the BMC has no such setting). Optional on the port: only BMCs of DPUs with modes need it.
   */
  setOperationMode?(mode: OperationMode, opts?: OperationOptions): Promise<'set' | 'unchanged'>;
  close(): Promise<void>;
}
