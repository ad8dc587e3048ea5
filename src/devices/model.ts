// The one device record every service reads, and the pure validation of what admins send.
import { ZtpError } from '../errors.js';
import { TIMEOUT_KEYS } from '../onboarding/job.js';

export const PROFILES = ['rfc8572', 'opi'] as const;
export type Profile = (typeof PROFILES)[number];

export const SIGNING_MODES = ['auto', 'always', 'never'] as const;
/** auto: sign when the device sends signed-data-preferred (never for the opi profile). */
export type SigningMode = (typeof SIGNING_MODES)[number];

export interface RedirectServer {
  address: string;
  port?: number;
  /** base64 of a CMS degenerate SignedData holding the trust anchor certificate(s) */
  trustAnchor?: string;
}

export interface BmcInfo {
  address: string;
  username?: string;
  password?: string;
  /** verify the BMC's TLS certificate against this PEM bundle; empty: system store */
  caBundle?: string;
  insecure?: boolean;
  systemId?: string;
  /** SHA-256 fingerprint of the BMC's certificate (hex): pins it instead of a CA */
  fingerprint256?: string;
  /** set by the store when the sealed password does not open with this data directory's key */
  passwordUnreadable?: boolean;
  /**
   * What a factory-fresh BMC accepts (the vendor default, e.g. BlueField's root/0penBmc): when
   * `password` is refused, onboarding logs in with this one and sets `password` (PasswordChangeRequired)
   */
  factoryPassword?: string;
  /** NVIDIA BlueField: the operation mode onboarding sets before the boot (DPU or NIC mode) */
  operationMode?: 'DPU' | 'NIC';
}

export interface Device {
  serial: string;
  profile: Profile;
  hasPassword: boolean;
  signing: SigningMode;
  macs: string[];
  /** catalogue image name or absolute URL */
  bootImage: string | null;
  /** lowercase hex, required for a URL image, else taken from the catalogue */
  bootImageSha256: string | null;
  osName: string | null;
  osVersion: string | null;
  config: string | null;
  preScript: string | null;
  postScript: string | null;
  redirect: RedirectServer[] | null;
  bmc: BmcInfo | null;
  parentHost: string | null;
  hwModel: string | null;
  /** per-device onboarding step timeouts, seconds by config key ({"booting": 900}); null: config defaults */
  onboardingTimeouts: Record<string, number> | null;
  state: string;
  stateChangedAt: string;
  revision: number;
  createdAt: string;
  updatedAt: string;
}

/** What an admin may set; absent fields keep their value on update. */
export interface DeviceInput {
  serial: string;
  profile?: Profile;
  password?: string | null;
  signing?: SigningMode;
  macs?: string[];
  bootImage?: string | null;
  bootImageSha256?: string | null;
  osName?: string | null;
  osVersion?: string | null;
  config?: string | null;
  preScript?: string | null;
  postScript?: string | null;
  redirect?: RedirectServer[] | null;
  bmc?: BmcInfo | null;
  parentHost?: string | null;
  hwModel?: string | null;
  onboardingTimeouts?: Record<string, number> | null;
}

const TIMEOUT_KEY_NAMES: string[] = Object.values(TIMEOUT_KEYS);
export const OPI_ALWAYS_SIGNED = '--signing always cannot work with --profile opi: the OPI agent rejects signed conveyed information (owner-certificate, ownership-voucher); use --signing auto or never';

// Serial numbers appear in URLs, file names and certificate subjects: keep them plain.
const SERIAL_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const MAX_TEXT = 1024 * 1024;

function fail(field: string, message: string): never {
  throw new ZtpError('DEVICE_INVALID', `${field}: ${message}`, { details: { field } });
}

export function normalizeMac(raw: string): string {
  const hex = raw.trim().toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length !== 12 || !/^([0-9a-f]{2}[:.-]?){5}[0-9a-f]{2}$|^([0-9a-f]{4}\.){2}[0-9a-f]{4}$/.test(raw.trim().toLowerCase())) {
    fail('macs', `"${raw}" is not a MAC address`);
  }
  return hex.match(/../g)!.join(':');
}

export function isValidSerial(serial: unknown): serial is string {
  return typeof serial === 'string' && SERIAL_RE.test(serial);
}

function optionalText(input: Record<string, unknown>, field: string, max = MAX_TEXT): string | null | undefined {
  const value = input[field];
  if (value === undefined) return undefined;
  if (value === null || value === '') return null;
  if (typeof value !== 'string') fail(field, 'must be a string');
  if (Buffer.byteLength(value) > max) fail(field, `longer than ${max} bytes`);
  return value;
}

/** The fields a device input may carry (the OpenAPI DeviceInput schema lists the same). */
export const KNOWN_FIELDS = new Set([
  'serial', 'profile', 'password', 'signing', 'macs', 'bootImage', 'bootImageSha256', 'osName', 'osVersion',
  'config', 'preScript', 'postScript', 'redirect', 'bmc', 'parentHost', 'hwModel', 'onboardingTimeouts',
]);

export const BMC_STRING_FIELDS = ['username', 'password', 'factoryPassword', 'caBundle', 'systemId', 'fingerprint256'] as const;

/** Validates untrusted input (API body, import row) into a DeviceInput; throws DEVICE_INVALID naming the field. */
export function parseDeviceInput(raw: unknown): DeviceInput {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('(device)', 'must be an object');
  const input = raw as Record<string, unknown>;
  for (const key of Object.keys(input)) if (!KNOWN_FIELDS.has(key)) fail(key, 'unknown field');
  if (!isValidSerial(input.serial)) fail('serial', 'must be 1-64 characters of letters, digits, ".", "_", ":", "-", starting with a letter or digit');
  const out: DeviceInput = { serial: input.serial };
  if (input.profile !== undefined) {
    if (!PROFILES.includes(input.profile as Profile)) fail('profile', `must be one of ${PROFILES.join(', ')}`);
    out.profile = input.profile as Profile;
  }
  if (input.signing !== undefined) {
    if (!SIGNING_MODES.includes(input.signing as SigningMode)) fail('signing', `must be one of ${SIGNING_MODES.join(', ')}`);
    out.signing = input.signing as SigningMode;
  }
  if (input.password !== undefined) {
    if (input.password !== null && (typeof input.password !== 'string' || input.password.length === 0 || input.password.length > 256)) {
      fail('password', 'must be a non-empty string of at most 256 characters');
    }
    out.password = input.password as string | null;
  }
  if (input.macs !== undefined) {
    if (!Array.isArray(input.macs)) fail('macs', 'must be a list');
    const macs = input.macs.map((m) => (typeof m === 'string' ? normalizeMac(m) : fail('macs', 'must be strings')));
    out.macs = [...new Set(macs)];
  }
  for (const field of ['osName', 'osVersion', 'parentHost', 'hwModel'] as const) {
    const v = optionalText(input, field, 255);
    if (v !== undefined) out[field] = v;
  }
  for (const field of ['config', 'preScript', 'postScript'] as const) {
    const v = optionalText(input, field);
    if (v !== undefined) out[field] = v;
  }
  const image = optionalText(input, 'bootImage', 2048);
  if (image !== undefined) {
    if (image !== null && /^[a-z][a-z0-9+.-]*:/i.test(image) && !/^(https?|ftp|tftp):\/\/[^\s]+$/i.test(image)) fail('bootImage', 'must be a catalogue name or an http(s)/ftp/tftp URL');
    if (image !== null && !/^[a-z][a-z0-9+.-]*:/i.test(image) && !/^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/.test(image)) fail('bootImage', 'catalogue names are letters, digits, ".", "_", "+", "-"');
    out.bootImage = image;
  }
  const sha = optionalText(input, 'bootImageSha256', 64);
  if (sha !== undefined) {
    if (sha !== null && !SHA256_RE.test(sha.toLowerCase())) fail('bootImageSha256', 'must be 64 hex digits');
    out.bootImageSha256 = sha === null ? null : sha.toLowerCase();
  }
  if (input.redirect !== undefined) {
    if (input.redirect === null) out.redirect = null;
    else {
      if (!Array.isArray(input.redirect) || input.redirect.length === 0) fail('redirect', 'must be a non-empty list of {address, port?, trustAnchor?}');
      out.redirect = input.redirect.map((r, i) => parseRedirectServer(r, `redirect[${i}]`));
    }
  }
  if (input.bmc !== undefined) {
    if (input.bmc === null) out.bmc = null;
    else {
      const b = input.bmc as Record<string, unknown>;
      if (typeof b !== 'object' || typeof b.address !== 'string' || !b.address) fail('bmc', 'must be an object with an address');
      const bmc: BmcInfo = { address: b.address };
      for (const k of BMC_STRING_FIELDS) {
        if (b[k] !== undefined) {
          if (typeof b[k] !== 'string') fail(`bmc.${k}`, 'must be a string');
          bmc[k] = b[k];
        }
      }
      if (b.insecure !== undefined) bmc.insecure = b.insecure === true;
      if (b.operationMode !== undefined) {
        if (b.operationMode !== 'DPU' && b.operationMode !== 'NIC') fail('bmc.operationMode', 'must be DPU or NIC');
        bmc.operationMode = b.operationMode;
      }
      if (bmc.fingerprint256 !== undefined) {
        const hex = bmc.fingerprint256.replace(/:/g, '').toLowerCase();
        if (!SHA256_RE.test(hex)) fail('bmc.fingerprint256', 'must be a SHA-256 fingerprint: 64 hex digits, colons allowed');
        bmc.fingerprint256 = hex;
      }
      if (bmc.caBundle !== undefined && !/-----BEGIN CERTIFICATE-----/.test(bmc.caBundle)) fail('bmc.caBundle', 'must be a PEM certificate bundle');
      if (!/^(https?:\/\/)?[^\s/]+(\/[^\s]*)?$/i.test(bmc.address)) fail('bmc.address', 'must be https://host[:port] or host');
      out.bmc = bmc;
    }
  }
  if (input.onboardingTimeouts !== undefined) {
    if (input.onboardingTimeouts === null) out.onboardingTimeouts = null;
    else {
      const t = input.onboardingTimeouts as Record<string, unknown>;
      if (typeof t !== 'object' || Array.isArray(t)) fail('onboardingTimeouts', `must be an object of seconds by step (${TIMEOUT_KEY_NAMES.join(', ')})`);
      const timeouts: Record<string, number> = {};
      for (const [k, v] of Object.entries(t)) {
        if (!TIMEOUT_KEY_NAMES.includes(k)) fail(`onboardingTimeouts.${k}`, `unknown step; one of ${TIMEOUT_KEY_NAMES.join(', ')}`);
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 7 * 86_400) fail(`onboardingTimeouts.${k}`, 'must be whole seconds from 1 to 604800');
        timeouts[k] = v;
      }
      out.onboardingTimeouts = Object.keys(timeouts).length ? timeouts : null;
    }
  }
  // The OPI agent rejects conveyed information carrying owner-certificate/ownership-voucher
  // (SZTP-INTEROP.md): a device that always gets signed data could never onboard.
  if (out.profile === 'opi' && out.signing === 'always') fail('signing', OPI_ALWAYS_SIGNED);
  if (out.bootImage && /^[a-z]+:\/\//i.test(out.bootImage) && out.bootImageSha256 === undefined) {
    // A URL image cannot be looked up in the catalogue; RFC 8572 image-verification needs a digest.
    fail('bootImageSha256', 'required with a boot image URL (--sha256)');
  }
  return out;
}

/** "host", "host:port", "[v6]:port" or {address, port} → RedirectServer */
export function parseRedirectServer(raw: unknown, field = 'redirect'): RedirectServer {
  if (typeof raw === 'string') {
    const m = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(raw) ?? /^([^\s:[\]/]+)(?::(\d+))?$/.exec(raw);
    if (!m) fail(field, `"${raw}" is not host[:port]`);
    return m[2] ? { address: m[1]!, port: checkPort(Number(m[2]), field) } : { address: m[1]! };
  }
  if (typeof raw !== 'object' || raw === null) fail(field, 'must be host[:port] or {address, port?, trustAnchor?}');
  const r = raw as Record<string, unknown>;
  if (typeof r.address !== 'string' || !/^[^\s/]+$/.test(r.address)) fail(`${field}.address`, 'must be a host name or address');
  const out: RedirectServer = { address: r.address };
  if (r.port !== undefined) out.port = checkPort(r.port, `${field}.port`);
  if (r.trustAnchor !== undefined) {
    if (typeof r.trustAnchor !== 'string' || !/^[A-Za-z0-9+/=\s]+$/.test(r.trustAnchor)) fail(`${field}.trustAnchor`, 'must be base64 CMS');
    out.trustAnchor = r.trustAnchor.replace(/\s/g, '');
  }
  return out;
}

function checkPort(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) fail(field, 'must be a port number 1-65535');
  return value;
}

/** The device as admins see it: never the password hash nor the BMC password. */
export function publicDevice(device: Device): Omit<Device, 'bmc'> & { bmc: Omit<BmcInfo, 'password'> & { hasPassword?: boolean } | null } {
  const { bmc, ...rest } = device;
  if (!bmc) return { ...rest, bmc: null };
  const { password, factoryPassword: _factory, passwordUnreadable, ...bmcRest } = bmc;
  return { ...rest, bmc: { ...bmcRest, hasPassword: (password !== undefined && password !== '') || passwordUnreadable === true } };
}
