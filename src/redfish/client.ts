// The Redfish client: one BmcSession (api.ts) per logged-in conversation with a BMC.
//
// Capabilities are probed, never assumed from a vendor name (REDFISH.md steps 1-5): which
// system, where virtual media lives (System, else Manager), action or PATCH, the InsertMedia body
// (negotiated from the BMC's @Message.ExtendedInfo), allowed boot targets and reset types,
// @Redfish.Settings. What cannot be probed comes from quirks.ts. Action targets are read from
// `Actions`, never built from a pattern.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import { ZtpError, isZtpError } from '../errors.js';
import type {
  BmcEndpoint, BmcSession, BootResult, BootTarget, ClearBootOptions, InsertResult, Inventory, NetworkPort, OobBootOptions, OperationMode, OperationOptions,
  PowerState, ResetKind, ResetResult, StepListener, StepOutcome,
} from './api.js';
import { messageKey, type RedfishMessage } from './errors.js';
import { mergeQuirks, quirksFor, type BmcIdentity, type Quirk, type QuirkSet } from './quirks.js';
import { RedfishTransport, isAnswerLost, realClock, type RedfishClock, type RedfishResponse, type TransportTuning } from './transport.js';

type Json = Record<string, unknown>;

/** Deadlines of the long operations, milliseconds. */
export interface OperationTimeouts {
  /** waitForPower default */
  powerMs: number;
  /** verify-inserted deadline; unset: the larger of 30 s and the BMC's quirk settle time */
  mediaMs: number;
  /** a 202 task of an ordinary action (reset, insert) */
  taskMs: number;
  /** a BFB push through UpdateService.SimpleUpdate */
  bfbMs: number;
  /** first delay between state polls (doubles up to pollCapMs) */
  pollMs: number;
  pollCapMs: number;
}

export const DEFAULT_TIMEOUTS: OperationTimeouts = {
  powerMs: 300_000,
  mediaMs: 30_000,
  taskMs: 300_000,
  bfbMs: 45 * 60_000,
  pollMs: 500,
  pollCapMs: 5_000,
};

export interface SessionDeps {
  log: Logger;
  signal?: AbortSignal;
  clock?: RedfishClock;
  onStep?: StepListener;
  tuning?: Partial<TransportTuning>;
  timeouts?: Partial<OperationTimeouts>;
  /**
   * The BMC demanded a password change (factory default): called with the password the account
   * is about to get (endpoint.newPassword, else a generated one) before the PATCH is sent, and
   * with the previous one if the change did not take. The caller keeps it (encrypted). Without
   * this callback and without endpoint.newPassword, PasswordChangeRequired fails with
   * REDFISH_PASSWORD_CHANGE_REQUIRED.
   */
  onPasswordChange?: (password: string) => void | Promise<void>;
  /** the quirk table matched against the BMC's identity (default QUIRKS); tests take an entry out to show what it is for */
  quirkTable?: readonly Quirk[];
}


interface MediaSlot {
  /** TransferProtocolType "OEM": a proxy (NBD/KVM) slot that takes no URL, tried last */
  proxyOnly: boolean;
  name: string;
  uri: string;
  id: string;
  mediaTypes: string[];
  inserted: boolean;
  image: string | null;
  insertTarget: string | null;
  ejectTarget: string | null;
  via: 'action' | 'patch';
  etag: string | null;
}

interface Capabilities {
  identity: BmcIdentity;
  quirks: QuirkSet;
  root: Json;
  systemUri: string;
  managerUris: string[];
  resetTarget: string | null;
  resetTypes: ResetKind[];
  bootTargets: BootTarget[];
  bootModes: string[] | null;
  httpBootUri: boolean;
  settingsUri: string | null;
  chassisUris: string[];
  offloadedFunctions: string[];
}

const BOOT_TARGETS = new Set<string>(['Cd', 'UsbCd', 'UefiHttp', 'Pxe', 'Hdd', 'UefiTarget', 'BiosSetup', 'UefiBootNext', 'None']);
const RESTARTS = new Set<ResetKind>(['ForceRestart', 'GracefulRestart', 'PowerCycle']);
const ACTIVE_TASK = new Set(['New', 'Starting', 'Running', 'Pending', 'Stopping', 'Suspended', 'Interrupted', 'Service']);

/** One entry of Boot.BootOrder, resolved through BootOptions. */
interface BootEntry {
  reference: string;
  name: string | null;
  path: string | null;
  oobNetwork: boolean;
}
const RESET_KINDS = new Set<string>(['On', 'ForceOn', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle', 'Nmi', 'PushPowerButton']);
const POWER_STATES = new Set<string>(['On', 'Off', 'PoweringOn', 'PoweringOff', 'Paused']);

/** What to send when the asked reset type is not among the allowable values (Intel IPU has only Graceful*). */
const RESET_SUBSTITUTES: Record<ResetKind, ResetKind[]> = {
  // Intel IPU offers only Graceful*: its GracefulRestart also starts a stopped system.
  On: ['ForceOn', 'PushPowerButton', 'PowerCycle', 'GracefulRestart'],
  ForceOn: ['On', 'PushPowerButton', 'PowerCycle', 'GracefulRestart'],
  ForceOff: ['GracefulShutdown', 'PushPowerButton'],
  GracefulShutdown: ['ForceOff'],
  GracefulRestart: ['ForceRestart', 'PowerCycle'],
  ForceRestart: ['GracefulRestart', 'PowerCycle'],
  PowerCycle: ['ForceRestart', 'GracefulRestart'],
  Nmi: [],
  PushPowerButton: [],
};

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const obj = (v: unknown): Json | null => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null);
const link = (v: unknown): string | null => str(obj(v)?.['@odata.id']);
const links = (v: unknown): string[] => (Array.isArray(v) ? v.map(link).filter((x): x is string => x !== null) : []);
const lastSegment = (uri: string) => uri.replace(/\/+$/, '').split('/').pop() ?? uri;
const stripSlash = (uri: string) => uri.replace(/\/+$/, '');

/** Two image URLs name the same image (BMCs echo them with or without scheme or trailing slash). */
export function sameImage(a: string | null, b: string): boolean {
  if (!a) return false;
  const norm = (u: string) => u.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
  return norm(a) === norm(b);
}

function schemeOf(url: string): string {
  return (/^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1] ?? '').toLowerCase();
}

/** InsertMedia parameter names the BMC says are missing (ActionParameterMissing / PropertyMissing). */
function missingParameters(messages: RedfishMessage[]): string[] {
  const out = new Set<string>();
  for (const m of messages) {
    const key = messageKey(m.messageId);
    if (!/ParameterMissing|PropertyMissing|ParameterRequired|ActionParameterValueError|PropertyValueNotInList|ActionParameterValueNotInList/.test(key) && m.relatedProperties.length === 0) continue;
    for (const p of m.relatedProperties) out.add(p.replace(/^#\//, '').split('/').pop()!);
    for (const a of m.messageArgs) if (/^[A-Z][A-Za-z]+$/.test(a)) out.add(a);
  }
  return [...out];
}

/** Parameters the BMC refuses (ActionParameterNotSupported / PropertyUnknown). */
function refusedParameters(messages: RedfishMessage[]): string[] {
  const out = new Set<string>();
  for (const m of messages) {
    const key = messageKey(m.messageId);
    if (!/NotSupported|PropertyUnknown|PropertyNotWritable|ActionParameterUnknown/.test(key)) continue;
    for (const p of m.relatedProperties) out.add(p.replace(/^#\//, '').split('/').pop()!);
    for (const a of m.messageArgs) if (/^[A-Z][A-Za-z]+$/.test(a)) out.add(a);
  }
  return [...out];
}

interface StepResult {
  outcome?: StepOutcome['outcome'];
  via?: string;
  detail?: string;
  messageId?: string;
}

export class RedfishBmcSession implements BmcSession {
  private caps!: Capabilities;
  private closed = false;
  /** the boot order before bootFromOobNetwork moved an entry to its head (clearBoot restores it) */
  private savedBootOrder: string[] | null = null;
  private readonly clock: RedfishClock;
  private readonly timeouts: OperationTimeouts;
  private readonly log: Logger;
  private readonly onAbort = () => void this.close().catch(() => undefined);

  private constructor(
    private readonly endpoint: BmcEndpoint,
    readonly transport: RedfishTransport,
    private readonly deps: SessionDeps,
  ) {
    this.clock = deps.clock ?? realClock;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...deps.timeouts };
    this.log = deps.log.child({ bmc: transport.bmc });
  }

  /** Logs in (changing a factory password when the BMC demands it) and probes capabilities. */
  static async open(endpoint: BmcEndpoint, deps: SessionDeps): Promise<RedfishBmcSession> {
    const transport = new RedfishTransport(endpoint, { log: deps.log, clock: deps.clock, signal: deps.signal, tuning: deps.tuning });
    const session = new RedfishBmcSession(endpoint, transport, deps);
    try {
      if (deps.signal?.aborted) throw new ZtpError('REDFISH_ABORTED', 'BMC operation was aborted before login');
      await session.start();
      deps.signal?.addEventListener('abort', session.onAbort, { once: true });
      return session;
    } catch (err) {
      await transport.close();
      throw err;
    }
  }

  get bmc(): string {
    return this.transport.bmc;
  }

  /** ids of the quirk entries in effect for this BMC */
  get quirkIds(): string[] {
    return this.caps.quirks.ids;
  }

  get sessionMode(): string {
    return this.transport.authMode;
  }

  // ---- steps --------------------------------------------------------------------------------

  private emit(step: StepOutcome, opts?: OperationOptions): void {
    for (const listener of [this.deps.onStep, opts?.onStep]) {
      if (!listener) continue;
      try {
        listener(step);
      } catch (err) {
        this.log.warn({ err: err instanceof Error ? err.message : String(err), step: step.step }, 'step listener failed');
      }
    }
  }

  private async step<T>(name: string, opts: OperationOptions | undefined, fn: () => Promise<{ value: T } & StepResult>, sink?: StepOutcome[]): Promise<T> {
    const started = this.clock.now();
    try {
      const r = await fn();
      const step: StepOutcome = { step: name, outcome: r.outcome ?? 'ok', durationMs: Math.max(0, this.clock.now() - started) };
      if (r.via) step.via = r.via;
      if (r.detail) step.detail = r.detail;
      if (r.messageId) step.messageId = r.messageId;
      sink?.push(step);
      this.emit(step, opts);
      this.log.info({ step: name, outcome: step.outcome, via: step.via, durationMs: step.durationMs }, 'BMC step');
      return r.value;
    } catch (err) {
      const step: StepOutcome = { step: name, outcome: 'failed', durationMs: Math.max(0, this.clock.now() - started), detail: err instanceof Error ? err.message.slice(0, 300) : String(err) };
      const messageId = isZtpError(err) ? (err.details?.messageId as string | null | undefined) : undefined;
      if (messageId) step.messageId = messageId;
      if (isZtpError(err) && err.details && !err.details.step) err.details.step = name;
      sink?.push(step);
      this.emit(step, opts);
      this.log.warn({ step: name, err: step.detail, code: isZtpError(err) ? err.code : undefined }, 'BMC step failed');
      throw err;
    }
  }

  private signalOf(opts?: OperationOptions): AbortSignal | undefined {
    return opts?.signal;
  }

  private async poll<T>(what: string, opts: OperationOptions | undefined, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = this.clock.now() + timeoutMs;
    let delay = this.timeouts.pollMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (this.clock.now() + delay > deadline) {
        throw new ZtpError('REDFISH_TIMEOUT', `${what} within ${timeoutMs} ms`, { details: { bmc: this.bmc, timeoutMs } });
      }
      await this.clock.sleep(delay, this.signalOf(opts));
      delay = Math.min(delay * 2, this.timeouts.pollCapMs);
    }
  }

  // ---- login and probing ----------------------------------------------------------------------

  private async start(): Promise<void> {
    const t = this.transport;
    // Step 1: the service root is anonymous by the standard; some BMCs want credentials anyway.
    let root: Json = {};
    const rootRes = await t.send('GET', t.rootPath(), { anonymous: true, step: 'login' });
    if (rootRes.status < 400 && obj(rootRes.json)) root = rootRes.json as Json;
    else if (rootRes.status !== 401 && rootRes.status !== 403) throw t.errorFor(rootRes, 'GET', 'login');
    const sessions = link(obj(root.Links)?.Sessions) ?? (link(root.SessionService) ? `${stripSlash(link(root.SessionService)!)}/Sessions` : null);
    if (sessions) t.setSessionsCollection(sessions);
    if (this.endpoint.insecure) this.log.warn('this BMC session runs without TLS verification (insecure opt-in)');
    await this.step('login', undefined, async () => {
      const result = await t.login();
      if (result.passwordChangeRequired) await this.changePassword(result.accountUri, root);
      return { value: undefined, via: t.authMode };
    });
    if (!obj(rootRes.json)) root = (await t.get(t.rootPath())).body;
    this.caps = await this.probe(root);
    t.addTransientMessages(this.caps.quirks.transientMessages);
    t.addUnsupportedMessages(this.caps.quirks.unsupportedMessages);
    if (this.caps.quirks.ids.length) this.log.info({ quirks: this.caps.quirks.ids }, 'BMC quirks in effect');
  }

  /**
   * Factory-fresh BMC (Base registry PasswordChangeRequired): PATCH the account's Password with
   * the configured one (endpoint.newPassword) or a generated one, then log in again. The caller's
   * onPasswordChange keeps the new password (encrypted) before the PATCH is sent, so no outcome
   * of the PATCH (a lost answer, a crash) can leave the BMC with a password nobody knows; if the
   * BMC refuses the change, or the new password does not log in, it is handed the old one back.
   * Neither password is ever logged or recorded.
   */
  private async changePassword(accountUri: string | null, root: Json): Promise<void> {
    const t = this.transport;
    const configured = this.endpoint.newPassword;
    if (!configured && !this.deps.onPasswordChange) {
      throw new ZtpError('REDFISH_PASSWORD_CHANGE_REQUIRED', 'BMC demands a password change (PasswordChangeRequired) and no new BMC password is configured', {
        details: { bmc: this.bmc, step: 'password-change', messageId: 'Base.1.0.PasswordChangeRequired' },
      });
    }
    const newPassword = configured ?? generateBmcPassword();
    const oldPassword = this.endpoint.password;
    await this.step('password-change', undefined, async () => {
      let account = accountUri;
      if (!account) {
        const service = link(root.AccountService) ?? '/redfish/v1/AccountService';
        const accountsUri = link((await t.get(service, { step: 'password-change' })).body.Accounts) ?? `${stripSlash(service)}/Accounts`;
        for (const uri of await t.members(accountsUri, { step: 'password-change' })) {
          const { body } = await t.get(uri, { step: 'password-change' });
          if (body.UserName === this.endpoint.username) account = uri;
          if (account) break;
        }
      }
      if (!account) throw new ZtpError('REDFISH_NOT_FOUND', 'BMC demands a password change but its account could not be found', { details: { bmc: this.bmc, step: 'password-change' } });
      await this.deps.onPasswordChange?.(newPassword);
      const revert = async (err: unknown): Promise<never> => {
        t.setCredentials(this.endpoint.username, oldPassword);
        if (oldPassword !== undefined) await this.deps.onPasswordChange?.(oldPassword);
        throw err;
      };
      let patchError: unknown = null;
      try {
        await t.patch(account, { Password: newPassword }, { etag: null, step: 'password-change' });
      } catch (err) {
        // An HTTP answer is a refusal; no answer (timeout, reset) leaves the outcome open, and
        // the login below settles it.
        if (!isZtpError(err) || err.details?.httpStatus !== undefined || isZtpError(err, 'REDFISH_ABORTED')) return revert(err);
        patchError = err;
      }
      await t.logout();
      t.setCredentials(this.endpoint.username, newPassword);
      let again: Awaited<ReturnType<RedfishTransport['login']>>;
      try {
        again = await t.login();
      } catch (err) {
        return revert(patchError ?? err);
      }
      if (again.passwordChangeRequired) {
        await t.logout();
        return revert(new ZtpError('REDFISH_AUTH_FAILED', 'BMC still demands a password change after it was changed', { details: { bmc: this.bmc, step: 'password-change' } }));
      }
      return { value: undefined, via: 'account-service', detail: configured ? 'configured password set' : 'generated password set and kept' };
    });
  }

  private async probe(root: Json): Promise<Capabilities> {
    const t = this.transport;
    const systemsUri = link(root.Systems) ?? '/redfish/v1/Systems';
    const managersUri = link(root.Managers);
    const systemIds = await t.members(systemsUri, { step: 'discover' });
    const managerIds = managersUri ? await t.members(managersUri, { step: 'discover' }).catch(() => [] as string[]) : [];
    const systemUri = await this.chooseSystem(systemIds);
    const { body: system } = await t.get(systemUri, { step: 'discover' });
    const managedBy = links(obj(system.Links)?.ManagedBy);
    const managerUris = managedBy.length ? managedBy : managerIds;
    let manager: Json = {};
    if (managerUris[0]) manager = await t.get(managerUris[0], { step: 'discover' }).then((r) => r.body).catch(() => ({}));
    const identity: BmcIdentity = {
      vendor: str(root.Vendor) ?? '',
      product: str(root.Product) ?? '',
      oemKeys: [...Object.keys(obj(root.Oem) ?? {}), ...Object.keys(obj(manager.Oem) ?? {})],
      managerModel: str(manager.Model) ?? '',
      managerFirmware: str(manager.FirmwareVersion) ?? '',
      systemIds: systemIds.map(lastSegment),
      managerIds: managerIds.map(lastSegment),
    };
    const quirks = mergeQuirks(quirksFor(identity, this.deps.quirkTable));
    const reset = obj(obj(system.Actions)?.['#ComputerSystem.Reset']);
    let resetTypes = Array.isArray(reset?.['ResetType@Redfish.AllowableValues']) ? (reset!['ResetType@Redfish.AllowableValues'] as unknown[]) : null;
    const actionInfo = str(reset?.['@Redfish.ActionInfo']);
    if (!resetTypes && actionInfo) {
      const info = await t.get(actionInfo, { step: 'discover' }).then((r) => r.body).catch(() => ({}) as Json);
      const param = (Array.isArray(info.Parameters) ? info.Parameters : []).map(obj).find((p) => p?.Name === 'ResetType');
      if (Array.isArray(param?.AllowableValues)) resetTypes = param!.AllowableValues as unknown[];
    }
    const boot = obj(system.Boot) ?? {};
    const targets = Array.isArray(boot['BootSourceOverrideTarget@Redfish.AllowableValues']) ? (boot['BootSourceOverrideTarget@Redfish.AllowableValues'] as unknown[]) : [];
    const modes = Array.isArray(boot['BootSourceOverrideMode@Redfish.AllowableValues']) ? (boot['BootSourceOverrideMode@Redfish.AllowableValues'] as unknown[]).map(String) : null;
    return {
      identity,
      quirks,
      root,
      systemUri: t.resolve(systemUri),
      managerUris,
      resetTarget: str(reset?.target),
      resetTypes: (resetTypes ?? []).map(String).filter((r): r is ResetKind => RESET_KINDS.has(r)),
      bootTargets: targets.map(String).filter((b): b is BootTarget => BOOT_TARGETS.has(b)),
      bootModes: modes,
      httpBootUri: 'HttpBootUri' in boot,
      settingsUri: link(obj(system['@Redfish.Settings'])?.SettingsObject),
      chassisUris: links(obj(system.Links)?.Chassis),
      offloadedFunctions: links(obj(system.Links)?.OffloadedNetworkDeviceFunctions),
    };
  }

  /** The configured system, else the one with SystemType DPU, else the only one. */
  private async chooseSystem(members: string[]): Promise<string> {
    const t = this.transport;
    const wanted = this.endpoint.systemId;
    if (wanted) {
      const hit = members.find((m) => lastSegment(m) === wanted || stripSlash(m) === stripSlash(wanted));
      if (hit) return hit;
      throw new ZtpError('REDFISH_SYSTEM_NOT_FOUND', `BMC has no system "${wanted}" (it has ${members.map(lastSegment).join(', ') || 'none'})`, {
        details: { bmc: this.bmc, systems: members.map(lastSegment), step: 'discover' },
      });
    }
    if (members.length === 1) return members[0]!;
    if (members.length === 0) throw new ZtpError('REDFISH_SYSTEM_NOT_FOUND', 'BMC lists no ComputerSystem', { details: { bmc: this.bmc, systems: [], step: 'discover' } });
    const dpus: string[] = [];
    for (const m of members.slice(0, 32)) {
      const { body } = await t.get(m, { step: 'discover' });
      if (body.SystemType === 'DPU') dpus.push(m);
    }
    if (dpus.length === 1) return dpus[0]!;
    throw new ZtpError('REDFISH_SYSTEM_NOT_FOUND', `BMC has ${dpus.length ? dpus.length + ' DPU' : members.length} systems (${(dpus.length ? dpus : members).map(lastSegment).join(', ')}): say which (--system)`, {
      details: { bmc: this.bmc, systems: members.map(lastSegment), step: 'discover' },
    });
  }

  // ---- reads ----------------------------------------------------------------------------------

  private async system(opts?: OperationOptions): Promise<{ body: Json; etag: string | null }> {
    return this.transport.get(this.caps.systemUri, { signal: this.signalOf(opts) });
  }

  async powerState(opts?: OperationOptions): Promise<PowerState> {
    const { body } = await this.system(opts);
    return powerOf(body);
  }

  /** Virtual media slots that can take a CD image, in the order they will be tried. */
  private async mediaSlots(opts?: OperationOptions): Promise<MediaSlot[]> {
    const t = this.transport;
    const signal = this.signalOf(opts);
    const { body: system } = await this.system(opts);
    let collections = [link(system.VirtualMedia)].filter((x): x is string => !!x);
    if (!collections.length) {
      for (const m of this.caps.managerUris) {
        const { body } = await t.get(m, { signal, step: 'discover-media' });
        const c = link(body.VirtualMedia);
        if (c) collections.push(c);
      }
    }
    collections = [...new Set(collections)];
    const slots: MediaSlot[] = [];
    for (const c of collections) {
      for (const uri of await t.members(c, { signal, step: 'discover-media' })) {
        const { body, etag, response } = await t.get(uri, { signal, step: 'discover-media' });
        const types = Array.isArray(body.MediaTypes) ? body.MediaTypes.map(String) : [];
        if (types.length && !types.some((x) => x === 'CD' || x === 'DVD')) continue;
        const actions = obj(body.Actions) ?? {};
        const insertTarget = str(obj(actions['#VirtualMedia.InsertMedia'])?.target);
        const ejectTarget = str(obj(actions['#VirtualMedia.EjectMedia'])?.target);
        // DSP0266 §7.4: GET answers carry Allow; without PATCH in it an action-less slot is read-only.
        const allow = response.headers.allow;
        if (!insertTarget && allow && !/\bPATCH\b/i.test(allow)) continue;
        slots.push({
          proxyOnly: body.TransferProtocolType === 'OEM',
          name: str(body.Name) ?? '',
          uri: t.resolve(uri),
          id: str(body.Id) ?? lastSegment(uri),
          mediaTypes: types,
          inserted: body.Inserted === true,
          image: str(body.Image),
          insertTarget,
          ejectTarget,
          via: insertTarget ? 'action' : 'patch',
          etag,
        });
      }
    }
    const prefer = this.caps.quirks.preferSlots;
    const rank = (s: MediaSlot) => (prefer && (prefer.test(s.id) || prefer.test(s.name)) ? 0 : 2) + (s.mediaTypes.length ? 0 : 1) + (s.proxyOnly ? 4 : 0);
    return slots.map((s, i) => ({ s, i })).sort((a, b) => rank(a.s) - rank(b.s) || a.i - b.i).map((x) => x.s);
  }

  /** verify-inserted deadline: the caller's, else the larger of the default and the BMC's quirk */
  private mediaTimeout(): number {
    return this.deps.timeouts?.mediaMs ?? Math.max(DEFAULT_TIMEOUTS.mediaMs, this.caps.quirks.mediaSettleMs);
  }

  private async readSlot(slot: MediaSlot, opts?: OperationOptions): Promise<MediaSlot> {
    const { body, etag } = await this.transport.get(slot.uri, { signal: this.signalOf(opts), step: 'verify-inserted' });
    return { ...slot, inserted: body.Inserted === true, image: str(body.Image), etag };
  }

  async inventory(opts?: OperationOptions): Promise<Inventory> {
    return this.step('inventory', opts, async () => {
      const t = this.transport;
      const signal = this.signalOf(opts);
      const { body: system } = await this.system(opts);
      const ports = await this.ports(signal);
      const firmware: { name: string; version: string }[] = [];
      const bios = str(system.BiosVersion);
      if (bios) firmware.push({ name: 'BIOS', version: bios });
      for (const m of this.caps.managerUris.slice(0, 4)) {
        const body = await t.get(m, { signal }).then((r) => r.body).catch(() => null);
        const v = str(body?.FirmwareVersion);
        if (v) firmware.push({ name: `BMC ${str(body?.Id) ?? lastSegment(m)}`, version: v });
      }
      firmware.push(...(await this.firmwareInventory(signal)));
      const slots = await this.mediaSlots(opts).catch((err) => {
        if (isZtpError(err) && (err.code === 'REDFISH_NOT_FOUND' || err.code === 'REDFISH_UNSUPPORTED')) return [] as MediaSlot[];
        throw err;
      });
      const p = str(system.PowerState);
      const inventory: Inventory = {
        vendor: str(system.Manufacturer) ?? (str(this.caps.root.Vendor) || null),
        model: str(system.Model),
        serial: str(system.SerialNumber),
        systemId: str(system.Id) ?? lastSegment(this.caps.systemUri),
        systemType: str(system.SystemType),
        powerState: p && POWER_STATES.has(p) ? (p as PowerState) : 'Unknown',
        macs: [...new Set(ports.map((x) => x.mac))],
        ports,
        firmware,
        bootProgress: str(obj(system.BootProgress)?.LastState),
        operationMode: await this.operationMode(system, signal),
        ...(await this.bootOrder(system, signal)),
        allowedBootTargets: this.caps.bootTargets,
        allowedResetTypes: this.caps.resetTypes,
        virtualMedia: slots.map((s) => ({ id: s.id, mediaTypes: s.mediaTypes, inserted: s.inserted, image: s.image, via: s.via })),
      };
      return { value: inventory, via: this.caps.quirks.ids.join(',') || undefined, detail: `${inventory.macs.length} port MACs, ${slots.length} CD slots` };
    });
  }

  /**
   * The DPU's port MACs: the system's OffloadedNetworkDeviceFunctions (a SmartNIC/DPU system),
   * else the NetworkAdapters of its chassis (functions and ports: BlueField puts them on Ports'
   * Ethernet.AssociatedMACAddresses), else the system's EthernetInterfaces.
   */
  private async ports(signal?: AbortSignal): Promise<NetworkPort[]> {
    const t = this.transport;
    const out: NetworkPort[] = [];
    const seen = new Set<string>();
    const add = (id: string, rawMac: unknown, adapter: string, linkStatus?: unknown) => {
      const mac = normalizeMacLoose(rawMac);
      if (!mac || seen.has(mac)) return;
      seen.add(mac);
      const port: NetworkPort = { id, mac, adapter };
      if (typeof linkStatus === 'string') port.linkStatus = linkStatus;
      out.push(port);
    };
    const adapterOf = (uri: string) => {
      const m = /\/redfish\/v1\/(Chassis\/[^/]+\/NetworkAdapters\/[^/]+)/.exec(uri);
      return m ? m[1]! : uri;
    };
    const safeGet = (uri: string) => t.get(uri, { signal, step: 'inventory' }).then((r) => r.body).catch((err) => {
      if (isZtpError(err) && (err.code === 'REDFISH_ABORTED' || err.code === 'REDFISH_TIMEOUT' || err.code === 'REDFISH_UNREACHABLE')) throw err;
      return null;
    });
    const safeMembers = (uri: string) => t.members(uri, { signal, step: 'inventory' }).catch(() => [] as string[]);
    const fromFunction = async (uri: string) => {
      const f = await safeGet(uri);
      if (!f) return;
      const eth = obj(f.Ethernet);
      const portUri = link(obj(f.Links)?.PhysicalPortAssignment) ?? links(f.AssignablePhysicalPorts)[0] ?? null;
      add(portUri ? lastSegment(portUri) : (str(f.Id) ?? lastSegment(uri)), eth?.MACAddress ?? eth?.PermanentMACAddress, adapterOf(uri));
    };
    for (const f of this.caps.offloadedFunctions) await fromFunction(f);
    if (!out.length) {
      for (const chassis of this.caps.chassisUris.slice(0, 8)) {
        const c = await safeGet(chassis);
        const adaptersUri = link(c?.NetworkAdapters);
        if (!adaptersUri) continue;
        for (const a of (await safeMembers(adaptersUri)).slice(0, 16)) {
          const adapter = await safeGet(a);
          if (!adapter) continue;
          const functions = link(adapter.NetworkDeviceFunctions);
          if (functions) for (const f of (await safeMembers(functions)).slice(0, 64)) await fromFunction(f);
          const portsUri = link(adapter.Ports) ?? link(adapter.NetworkPorts);
          if (portsUri) {
            for (const p of (await safeMembers(portsUri)).slice(0, 64)) {
              const port = await safeGet(p);
              const macs = obj(port?.Ethernet)?.AssociatedMACAddresses ?? port?.AssociatedNetworkAddresses;
              if (Array.isArray(macs)) for (const m of macs) add(str(port?.Id) ?? lastSegment(p), m, adapterOf(p), port?.LinkStatus);
            }
          }
        }
      }
    }
    if (!out.length) {
      const { body: system } = await this.system({ signal });
      const ifaces = link(system.EthernetInterfaces);
      if (ifaces) {
        for (const i of (await safeMembers(ifaces)).slice(0, 16)) {
          const iface = await safeGet(i);
          add(str(iface?.Id) ?? lastSegment(i), iface?.MACAddress ?? iface?.PermanentMACAddress, `Systems/${lastSegment(this.caps.systemUri)}/EthernetInterfaces`, iface?.LinkStatus);
        }
      }
    }
    return out;
  }

  private async firmwareInventory(signal?: AbortSignal): Promise<{ name: string; version: string }[]> {
    const t = this.transport;
    const update = link(this.caps.root.UpdateService);
    if (!update) return [];
    const service = await t.get(update, { signal }).then((r) => r.body).catch(() => null);
    const inv = link(service?.FirmwareInventory);
    if (!inv) return [];
    const out: { name: string; version: string }[] = [];
    for (const m of (await t.members(inv, { signal }).catch(() => [] as string[])).slice(0, 32)) {
      const body = await t.get(m, { signal }).then((r) => r.body).catch(() => null);
      const version = str(body?.Version);
      if (version) out.push({ name: str(body?.Name) ?? str(body?.Id) ?? lastSegment(m), version });
    }
    return out;
  }

  /**
   * The boot order as the BMC reports it (Boot.BootOrder), names from the BootOptions collection,
   * and which entries boot from the out-of-band network port (a DPU's management port: BlueField
   * names them NET-OOB-IPV4, NET-OOB-IPV4-HTTP, …). Nothing when the system has no BootOrder.
   */
  private async bootOrder(system: Json, signal?: AbortSignal): Promise<Pick<Inventory, 'bootOrder'>> {
    const entries = await this.bootEntries(system, signal);
    return entries ? { bootOrder: entries.map(({ reference, name, oobNetwork }) => ({ reference, name, oobNetwork })) } : {};
  }

  /** Boot.BootOrder (of `order`, default the system's) resolved through BootOptions; null without a BootOrder. */
  private async bootEntries(system: Json, signal?: AbortSignal, order: unknown = obj(system.Boot)?.BootOrder): Promise<BootEntry[] | null> {
    if (!Array.isArray(order)) return null;
    const names = new Map<string, { name: string | null; path: string | null }>();
    const optionsUri = link(system.BootOptions);
    if (optionsUri) {
      for (const m of (await this.transport.members(optionsUri, { signal, step: 'inventory' }).catch(() => [] as string[])).slice(0, 64)) {
        const o = await this.transport.get(m, { signal, step: 'inventory' }).then((r) => r.body).catch(() => null);
        const ref = str(o?.BootOptionReference);
        if (ref) names.set(ref, { name: str(o?.DisplayName) ?? str(o?.Name), path: str(o?.UefiDevicePath) });
      }
    }
    return order.slice(0, 64).map(String).map((reference) => {
      const n = names.get(reference);
      const text = `${n?.name ?? ''} ${n?.path ?? ''}`;
      return { reference, name: n?.name ?? null, path: n?.path ?? null, oobNetwork: /(^|[^A-Za-z])OOB([^A-Za-z]|$)/i.test(text) };
    });
  }

  /** NVIDIA BlueField: Systems/<id>/Oem/Nvidia Mode ("DpuMode" | "NicMode"), else null. */
  private async operationMode(system: Json, signal?: AbortSignal): Promise<string | null> {
    const uri = this.nvidiaOemUri(system);
    if (!uri) return null;
    const inline = obj(obj(system.Oem)?.Nvidia);
    let mode = str(inline?.Mode);
    if (!mode) mode = str((await this.transport.get(uri, { signal }).then((r) => r.body).catch(() => null))?.Mode);
    if (!mode) return null;
    return mode === 'DpuMode' ? 'DPU' : mode === 'NicMode' ? 'NIC' : mode;
  }

  private nvidiaOemUri(system: Json): string | null {
    const nvidia = obj(obj(system.Oem)?.Nvidia);
    if (!nvidia) return null;
    return link(nvidia) ?? `${stripSlash(this.caps.systemUri)}/Oem/Nvidia`;
  }

  // ---- virtual media ----------------------------------------------------------------------------

  async insertMedia(url: string, opts?: OperationOptions): Promise<InsertResult> {
    return this.insertInternal(url, opts);
  }

  private async insertInternal(url: string, opts?: OperationOptions, sink?: StepOutcome[]): Promise<InsertResult> {
    const schemes = this.caps.quirks.imageSchemes;
    if (schemes && !schemes.includes(schemeOf(url))) {
      return this.step('insert', opts, async () => {
        throw new ZtpError('REDFISH_UNSUPPORTED', `this BMC fetches images only over ${schemes.join('/')}; serve ${url} over ${schemes[0]}`, {
          details: { bmc: this.bmc, step: 'insert', uri: url, quirks: this.caps.quirks.ids },
        });
      }, sink);
    }
    const slots = await this.mediaSlots(opts);
    if (!slots.length) {
      return this.step('insert', opts, async () => {
        throw new ZtpError('REDFISH_UNSUPPORTED', 'BMC has no virtual CD slot that takes a URL (no InsertMedia action, no PATCH)', { details: { bmc: this.bmc, step: 'insert' } });
      }, sink);
    }
    const already = slots.find((s) => s.inserted && sameImage(s.image, url));
    if (already) {
      return this.step('insert', opts, async () => ({ value: { outcome: 'already-inserted' as const, slot: already.id }, outcome: 'skipped', via: already.via, detail: `slot ${already.id} already holds this image` }), sink);
    }
    let lastError: unknown;
    for (const [index, listed] of slots.entries()) {
      let slot = listed;
      if (slot.inserted) {
        await this.ejectSlot(slot, opts, sink);
        slot = await this.readSlot(slot, opts); // a fresh ETag for the PATCH path
      }
      try {
        await this.step('insert', opts, async () => {
          const v: { via: string; note?: string } = slot.via === 'action' ? await this.insertByAction(slot, url, opts) : await this.insertByPatch(slot, url, opts);
          return { value: undefined, via: v.via, detail: v.note ? `slot ${slot.id}: ${v.note}` : `slot ${slot.id}` };
        }, sink);
      } catch (err) {
        lastError = err;
        // Cisco UCS, XCC: some slots refuse URLs (400); the next slot may take it.
        const status = isZtpError(err) ? Number(err.details?.httpStatus ?? 0) : 0;
        if (status >= 400 && status < 500 && index < slots.length - 1) continue;
        throw err;
      }
      await this.step('verify-inserted', opts, async () => {
        const timeout = this.mediaTimeout();
        await this.poll(`slot ${slot.id} did not report the image inserted`, opts, timeout, async () => {
          const s = await this.readSlot(slot, opts);
          return s.inserted && sameImage(s.image, url) ? true : undefined;
        }).catch((err) => {
          if (isZtpError(err) && err.details) err.details.step = 'verify-inserted';
          throw err;
        });
        return { value: undefined, detail: `slot ${slot.id}` };
      }, sink);
      return { outcome: 'inserted', slot: slot.id };
    }
    throw lastError;
  }

  /**
   * InsertMedia with the body negotiated from the BMC's answer: start with {Image} (plus what a
   * quirk says), add TransferProtocolType / TransferMethod / dummy credentials only when the
   * BMC's error names them, drop what it refuses.
   */
  private async insertByAction(slot: MediaSlot, url: string, opts?: OperationOptions): Promise<{ via: string; note?: string }> {
    const t = this.transport;
    const body: Json = { Image: url, ...this.caps.quirks.insertDefaults };
    const added: string[] = [];
    let serverErrors = 0;
    let settled: string | null = null;
    for (let round = 0; round < 6; round++) {
      let res: RedfishResponse;
      try {
        // Not idempotent: a second InsertMedia over an inserted image is a 409 on most BMCs.
        res = await t.send('POST', slot.insertTarget!, { body, step: 'insert', signal: this.signalOf(opts), idempotent: false });
      } catch (err) {
        // The answer was lost with the connection: see whether the slot (or its task) took the image.
        if (!isAnswerLost(err) || settled !== null) throw err;
        const now = await this.readSlot(slot, opts);
        const task = sameImage(now.image, url) ? null : await this.activeTaskFor(slot.insertTarget!, opts);
        if (sameImage(now.image, url) || task) {
          if (task) await this.followTask(task, 'insert', opts);
          const why = task ? `insert task ${lastSegment(task)} was running` : `slot shows Image${now.inserted ? ' inserted' : ''}`;
          return { via: ['action', ...added, 'settled-took'].join('+'), note: `answer lost (${lostCause(err)}); ${why}: not sent again` };
        }
        settled = `answer lost (${lostCause(err)}); slot shows ${now.image ? 'another image' : 'no image'}: sent again on a new connection`;
        this.log.info({ slot: slot.id }, 'InsertMedia answer lost and not taken: sending it once more');
        round--;
        continue;
      }
      if (res.status < 400) {
        await this.finishAsync(res, 'insert', opts);
        return { via: ['action', ...added, ...(settled ? ['settled-resent'] : [])].join('+'), ...(settled ? { note: settled } : {}) };
      }
      if (res.status >= 500 && serverErrors++ === 0) {
        // iDRAC: an eject still running makes the next insert fail with a 5xx once.
        await this.clock.sleep(this.timeouts.pollMs * 2, this.signalOf(opts));
        continue;
      }
      let changed = false;
      for (const name of refusedParameters(res.messages)) {
        if (name in body && name !== 'Image') {
          delete body[name];
          changed = true;
        }
      }
      const missing = missingParameters(res.messages);
      for (const name of missing) {
        if (name === 'TransferProtocolType' && body.TransferProtocolType === undefined) {
          body.TransferProtocolType = schemeOf(url).toUpperCase();
          added.push('transfer-protocol');
          changed = true;
        } else if (name === 'TransferMethod') {
          const next = body.TransferMethod === undefined ? 'Stream' : body.TransferMethod === 'Stream' ? 'Upload' : null;
          if (next) {
            body.TransferMethod = next;
            added.push(`transfer-method-${next.toLowerCase()}`);
            changed = true;
          }
        } else if ((name === 'UserName' || name === 'Password') && body[name] === undefined) {
          // NVIDIA DGX demands credentials even for anonymous HTTP: send dummies, only when asked.
          body.UserName ??= 'none';
          body.Password ??= 'none';
          if (!added.includes('dummy-credentials')) added.push('dummy-credentials');
          changed = true;
        }
      }
      if (!changed) throw t.errorFor(res, 'POST', 'insert');
      this.log.debug({ slot: slot.id, keys: Object.keys(body).filter((k) => k !== 'Password') }, 'InsertMedia renegotiated from the BMC error');
    }
    throw new ZtpError('REDFISH_ACTION_FAILED', `InsertMedia on slot ${slot.id}: no body the BMC accepts`, { details: { bmc: this.bmc, step: 'insert', uri: slot.insertTarget } });
  }

  /** No InsertMedia action (Lenovo XCC, DMTF public-smartnic CD1): PATCH the slot itself. */
  private async insertByPatch(slot: MediaSlot, url: string, opts?: OperationOptions): Promise<{ via: string }> {
    const t = this.transport;
    const full: Json = { Image: url, Inserted: true, WriteProtected: true, TransferProtocolType: schemeOf(url).toUpperCase() };
    const minimal: Json = { Image: url, Inserted: true };
    const common = { signal: this.signalOf(opts), step: 'insert', etag: slot.etag, useIfMatch: !this.caps.quirks.noIfMatch };
    const first = await t.patch(slot.uri, full, { ...common, accept: [400] });
    if (first.response.status !== 400) {
      await this.finishAsync(first.response, 'insert', opts);
      return { via: `patch+${first.via}` };
    }
    const second = await t.patch(slot.uri, minimal, { ...common, etag: undefined });
    await this.finishAsync(second.response, 'insert', opts);
    return { via: `patch-minimal+${second.via}` };
  }

  private async ejectSlot(slot: MediaSlot, opts?: OperationOptions, sink?: StepOutcome[]): Promise<void> {
    const t = this.transport;
    await this.step('eject', opts, async () => {
      const signal = this.signalOf(opts);
      if (slot.via === 'action' && !slot.ejectTarget) {
        return { value: undefined, outcome: 'skipped' as const, detail: `slot ${slot.id} has no EjectMedia: the insert replaces the image` };
      }
      let via: string;
      if (slot.via === 'action') {
        // HPE iLO wants `{}`; most take no body; some answer 400/415 to one and accept the other.
        const first = this.caps.quirks.ejectBodyFirst ? {} : undefined;
        let res = await t.send('POST', slot.ejectTarget!, { body: first, step: 'eject', signal, idempotent: true });
        via = first ? 'action-empty-object' : 'action';
        if (res.status === 400 || res.status === 415) {
          res = await t.send('POST', slot.ejectTarget!, { body: first ? undefined : {}, step: 'eject', signal, idempotent: true });
          via = first ? 'action' : 'action-empty-object';
        }
        if (res.status >= 400) throw t.errorFor(res, 'POST', 'eject');
        await this.finishAsync(res, 'eject', opts);
      } else {
        const r = await t.patch(slot.uri, { Image: null, Inserted: false }, { signal, step: 'eject', etag: slot.etag, useIfMatch: !this.caps.quirks.noIfMatch });
        await this.finishAsync(r.response, 'eject', opts);
        via = `patch+${r.via}`;
      }
      // iDRAC keeps Inserted true for a while after the eject; a new insert too soon fails.
      const settled = await this.poll('ejected', opts, Math.min(this.caps.quirks.mediaSettleMs, this.mediaTimeout()), async () => ((await this.readSlot(slot, opts)).inserted ? undefined : true)).catch((err) => {
        if (isZtpError(err, 'REDFISH_TIMEOUT')) return false;
        throw err;
      });
      return { value: undefined, via, detail: settled ? `slot ${slot.id}` : `slot ${slot.id} still reports Inserted` };
    }, sink);
  }

  async ejectMedia(opts?: OperationOptions): Promise<void> {
    await this.ejectAll(opts);
  }

  private async ejectAll(opts?: OperationOptions, sink?: StepOutcome[]): Promise<void> {
    const inserted = (await this.mediaSlots(opts)).filter((s) => s.inserted);
    if (!inserted.length) {
      await this.step('eject', opts, async () => ({ value: undefined, outcome: 'skipped' as const, detail: 'nothing inserted' }), sink);
      return;
    }
    for (const slot of inserted) await this.ejectSlot(slot, opts, sink);
  }

  /** A 202 (or a Task body) is followed to its end; anything else is already the result. */
  private async finishAsync(res: RedfishResponse, step: string, opts?: OperationOptions, timeoutMs = this.timeouts.taskMs): Promise<void> {
    if (res.status !== 202 && !(obj(res.json) && typeof (res.json as Json).TaskState === 'string')) return;
    await this.transport.awaitTask(res, { signal: this.signalOf(opts), step, timeoutMs });
  }

  // ---- boot override --------------------------------------------------------------------------

  /** Cd ↔ UsbCd by what the BMC allows (Supermicro X11/X12 call the virtual CD UsbCd). */
  private chooseTarget(target: BootTarget): BootTarget {
    const allowed = this.caps.bootTargets;
    if (!allowed.length || allowed.includes(target)) return target;
    if (target === 'Cd' && allowed.includes('UsbCd')) return 'UsbCd';
    if (target === 'UsbCd' && allowed.includes('Cd')) return 'Cd';
    throw new ZtpError('REDFISH_UNSUPPORTED', `BMC does not offer boot target ${target} (it allows ${allowed.join(', ')})`, {
      details: { bmc: this.bmc, step: 'boot-override', allowed },
    });
  }

  async setOneTimeBoot(target: BootTarget, opts?: OperationOptions & { httpBootUri?: string }): Promise<void> {
    await this.overrideInternal(target, opts);
  }

  private async overrideInternal(target: BootTarget, opts?: OperationOptions & { httpBootUri?: string }, sink?: StepOutcome[], enabled: 'Once' | 'Disabled' = 'Once'): Promise<void> {
    await this.step(enabled === 'Once' ? 'boot-override' : 'clear-boot', opts, async () => {
      const chosen = enabled === 'Once' ? this.chooseTarget(target) : target;
      const modes = this.caps.bootModes;
      const boot: Json = { BootSourceOverrideEnabled: enabled };
      if (enabled === 'Once') {
        boot.BootSourceOverrideTarget = chosen;
        if (!modes || modes.includes('UEFI')) boot.BootSourceOverrideMode = 'UEFI';
        if (opts?.httpBootUri && chosen === 'UefiHttp') boot.HttpBootUri = opts.httpBootUri;
      }
      const minimal: Json = { BootSourceOverrideEnabled: enabled, ...(enabled === 'Once' ? { BootSourceOverrideTarget: chosen } : {}) };
      const variants: { body: Json; tag: string }[] = [{ body: { Boot: boot }, tag: 'full' }];
      if (boot.HttpBootUri) variants.push({ body: { Boot: { ...minimal, HttpBootUri: boot.HttpBootUri } }, tag: 'minimal' });
      if (Object.keys(boot).length > Object.keys(minimal).length) variants.push({ body: { Boot: minimal }, tag: boot.HttpBootUri ? 'minimal-dhcp-uri' : 'minimal' });
      const sent = await this.patchBoot('boot-override', variants, opts);
      const detail = sent.tag === 'minimal-dhcp-uri'
        ? 'HttpBootUri not accepted: the URL must come from DHCP'
        : enabled === 'Disabled'
          // only the switch is sent: the target the BMC shows (Cd, UefiHttp, …) stays, inert
          ? `sent ${describeBoot(sent.body)}; BootSourceOverrideTarget left as the BMC has it`
          : `${chosen} ${enabled}`;
      return { value: undefined, via: sent.via, detail };
    }, sink);
  }

  /**
   * PATCHes a Boot body where this BMC takes it: the quirk's settings path, the System, then its
   * @Redfish.Settings object; each with the ETag ladder and every variant (largest first) in turn.
   * A 4xx moves to a smaller body, then to the next object; anything else is final.
   */
  private async patchBoot(step: string, variants: { body: Json; tag: string }[], opts?: OperationOptions): Promise<{ via: string; tag: string; body: Json; destination: string }> {
    const t = this.transport;
    const destinations: { uri: string; tag: string }[] = [];
    const quirkPath = this.caps.quirks.bootSettingsPath?.(this.caps.systemUri);
    if (quirkPath) destinations.push({ uri: t.resolve(quirkPath), tag: 'settings-object' });
    destinations.push({ uri: this.caps.systemUri, tag: 'system' });
    if (this.caps.settingsUri && !destinations.some((d) => stripSlash(d.uri) === stripSlash(t.resolve(this.caps.settingsUri!)))) {
      destinations.push({ uri: t.resolve(this.caps.settingsUri), tag: 'settings-object' });
    }
    let lastErr: unknown;
    for (const dest of destinations) {
      for (const variant of variants) {
        try {
          const res = await t.patch(dest.uri, variant.body, {
            signal: this.signalOf(opts),
            step,
            useIfMatch: !this.caps.quirks.noIfMatch,
            etag: undefined,
          });
          await this.finishAsync(res.response, step, opts);
          const via = [dest.tag, variant.tag === 'full' ? null : variant.tag].filter(Boolean).join('+');
          return { via, tag: variant.tag, body: variant.body, destination: dest.uri };
        } catch (err) {
          lastErr = err;
          const status = isZtpError(err) ? Number(err.details?.httpStatus ?? 0) : 0;
          if (!(status >= 400 && status < 500) || isZtpError(err, 'REDFISH_AUTH_FAILED')) throw err;
        }
      }
    }
    throw lastErr;
  }

  /** Where pending boot settings can be read back: the quirk's settings path, else the advertised @Redfish.Settings object. */
  private settingsObjectUri(): string | null {
    const quirkPath = this.caps.quirks.bootSettingsPath?.(this.caps.systemUri);
    return quirkPath ? this.transport.resolve(quirkPath) : this.caps.settingsUri ? this.transport.resolve(this.caps.settingsUri) : null;
  }

  /** The system's Boot with what is pending in its settings object on top (BlueField applies BootOrder at the next reset). */
  private async effectiveBoot(system: Json, opts?: OperationOptions): Promise<Json> {
    const boot = obj(system.Boot) ?? {};
    const settings = this.settingsObjectUri();
    if (!settings) return boot;
    const pending = await this.transport.get(settings, { signal: this.signalOf(opts), step: 'boot-oob' }).then((r) => obj(r.body.Boot)).catch(() => null);
    return { ...boot, ...(pending ?? {}) };
  }

  // ---- power ------------------------------------------------------------------------------------

  private pickReset(kind: ResetKind): ResetKind {
    const allowed = this.caps.resetTypes;
    if (!allowed.length || allowed.includes(kind)) return kind;
    const substitute = RESET_SUBSTITUTES[kind].find((k) => allowed.includes(k));
    if (substitute) return substitute;
    throw new ZtpError('REDFISH_UNSUPPORTED', `BMC does not offer reset ${kind} (it allows ${allowed.join(', ')})`, { details: { bmc: this.bmc, step: 'reset', allowed } });
  }

  async reset(kind: ResetKind, opts?: OperationOptions): Promise<ResetResult> {
    return this.resetInternal(kind, opts);
  }

  private async resetInternal(kind: ResetKind, opts?: OperationOptions, sink?: StepOutcome[]): Promise<ResetResult> {
    return this.step<ResetResult>('reset', opts, async () => {
      const t = this.transport;
      const { body: before } = await this.system(opts);
      const state = powerOf(before);
      const turningOn = kind === 'On' || kind === 'ForceOn';
      const turningOff = kind === 'ForceOff' || kind === 'GracefulShutdown';
      if (turningOn && (state === 'On' || state === 'PoweringOn')) return { value: { outcome: 'already-on' as const, resetType: kind }, outcome: 'skipped' as const, detail: 'already on' };
      if (turningOff && (state === 'Off' || state === 'PoweringOff')) return { value: { outcome: 'already-off' as const, resetType: kind }, outcome: 'skipped' as const, detail: 'already off' };
      if (!this.caps.resetTarget) throw new ZtpError('REDFISH_UNSUPPORTED', 'system has no #ComputerSystem.Reset action', { details: { bmc: this.bmc, step: 'reset' } });
      const type = this.pickReset(kind);
      const substitute = type === kind ? null : `substitute-${type}`;
      let settled: string | null = null;
      for (let attempt = 0; ; attempt++) {
        let res: RedfishResponse;
        try {
          res = await t.send('POST', this.caps.resetTarget, { body: { ResetType: type }, step: 'reset', signal: this.signalOf(opts), idempotent: false });
        } catch (err) {
          // The connection died before any answer (a keep-alive the BMC had closed): the reset may
          // or may not have run. Never blindly again: read what the BMC did, then decide.
          if (!isAnswerLost(err) || settled !== null) throw err;
          const s = await this.settleReset(type, state, before, opts);
          if (s.took) {
            if (s.taskUri) await this.followTask(s.taskUri, 'reset', opts);
            return { value: { outcome: 'reset' as const, resetType: type }, via: [substitute, 'settled-took'].filter(Boolean).join('+'), detail: `${type}: answer lost (${lostCause(err)}); ${s.why}: not sent again` };
          }
          settled = `answer lost (${lostCause(err)}); ${s.why}: sent again on a new connection`;
          this.log.info({ step: 'reset', why: s.why }, 'reset answer lost and not taken: sending it once more');
          attempt--;
          continue;
        }
        if (res.status < 400) {
          await this.finishAsync(res, 'reset', opts);
          if (settled) return { value: { outcome: 'reset' as const, resetType: type }, via: [substitute, 'settled-resent'].filter(Boolean).join('+'), detail: `${type}: ${settled}` };
          return { value: { outcome: 'reset' as const, resetType: type }, via: substitute ?? undefined, detail: type };
        }
        if (res.status === 409) {
          // "Already in that state" is success once a re-read agrees (REDFISH.md step 10).
          const now = await this.powerState(opts);
          if ((turningOn && now === 'On') || (turningOff && now === 'Off')) {
            return { value: { outcome: turningOn ? ('already-on' as const) : ('already-off' as const), resetType: type }, outcome: 'skipped' as const, detail: `409 and already ${now}`, messageId: res.messages[0]?.messageId };
          }
          // iDRAC: a transient 409 right after a power transition.
          if (attempt < this.caps.quirks.resetConflictRetries) {
            await this.clock.sleep(this.timeouts.pollMs * 2 ** (attempt + 1), this.signalOf(opts));
            continue;
          }
        }
        throw t.errorFor(res, 'POST', 'reset');
      }
    }, sink);
  }

  /**
   * After a reset POST lost its answer: did the reset run? A reset task still active for this
   * target says yes; LastResetTime (ComputerSystem v1_17) moving says yes, standing still says no;
   * without it, the power state: on/off requests by whether power moved toward the goal, a restart
   * by power having left On. A restart that already completed leaves no trace without
   * LastResetTime: it is sent again (at worst a second restart, never a missed boot).
   */
  private async settleReset(type: ResetKind, stateBefore: PowerState, before: Json, opts?: OperationOptions): Promise<{ took: boolean; why: string; taskUri?: string }> {
    const { body: after } = await this.system(opts);
    const task = await this.activeTaskFor(this.caps.resetTarget!, opts);
    if (task) return { took: true, why: `reset task ${lastSegment(task)} running`, taskUri: task };
    const was = str(before.LastResetTime);
    const now = str(after.LastResetTime);
    if (was && now) return now !== was ? { took: true, why: `LastResetTime moved (${was} → ${now})` } : { took: false, why: `LastResetTime unchanged (${now})` };
    const power = powerOf(after);
    const moved = `PowerState ${stateBefore} → ${power}`;
    const on = power === 'On' || power === 'PoweringOn';
    const off = power === 'Off' || power === 'PoweringOff';
    if (type === 'On' || type === 'ForceOn' || ((RESTARTS.has(type) || type === 'PushPowerButton') && !(stateBefore === 'On' || stateBefore === 'PoweringOn'))) return { took: on, why: moved };
    if (type === 'ForceOff' || type === 'GracefulShutdown' || type === 'PushPowerButton') return { took: off, why: moved };
    return { took: power !== 'On' && power !== 'Unknown', why: power === 'On' ? `${moved}, no LastResetTime to tell a finished restart` : moved };
  }

  /** A task of the TaskService still active whose Payload.TargetUri is `target` (the lost request's own task). */
  private async activeTaskFor(target: string, opts?: OperationOptions): Promise<string | null> {
    const t = this.transport;
    // ServiceRoot names it Tasks; some services (and our emulator's tree) TaskService
    const service = link(this.caps.root.Tasks) ?? link(this.caps.root.TaskService);
    if (!service) return null;
    const signal = this.signalOf(opts);
    const collection = link((await t.get(service, { signal }).then((r) => r.body).catch(() => ({}) as Json)).Tasks) ?? `${stripSlash(service)}/Tasks`;
    const want = stripSlash(t.resolve(target));
    for (const uri of (await t.members(collection, { signal }).catch(() => [] as string[])).slice(-16).reverse()) {
      const task = await t.get(uri, { signal }).then((r) => r.body).catch(() => null);
      const targetUri = str(obj(task?.Payload)?.TargetUri);
      if (targetUri && stripSlash(t.resolve(targetUri)) === want && ACTIVE_TASK.has(String(task?.TaskState))) return uri;
    }
    return null;
  }

  /** Waits for a task found by URI (not by a 202) to end. */
  private async followTask(taskUri: string, step: string, opts?: OperationOptions): Promise<void> {
    const t = this.transport;
    const first = await t.request('GET', taskUri, { signal: this.signalOf(opts), step });
    const monitor = str(obj(first.json)?.TaskMonitor) ?? taskUri;
    await t.awaitTask({ ...first, status: 202, headers: { ...first.headers, location: monitor } }, { signal: this.signalOf(opts), step, timeoutMs: this.timeouts.taskMs });
  }

  async waitForPower(state: 'On' | 'Off', opts?: OperationOptions & { timeoutMs?: number }): Promise<void> {
    await this.waitPowerInternal(state, opts);
  }

  private async waitPowerInternal(state: 'On' | 'Off', opts?: OperationOptions & { timeoutMs?: number }, sink?: StepOutcome[]): Promise<void> {
    await this.step('wait-power', opts, async () => {
      const timeout = opts?.timeoutMs ?? this.timeouts.powerMs;
      await this.poll(`system did not reach power ${state}`, opts, timeout, async () => ((await this.powerState(opts)) === state ? true : undefined)).catch((err) => {
        if (isZtpError(err) && err.details) err.details.step = 'wait-power';
        throw err;
      });
      return { value: undefined, detail: state };
    }, sink);
  }

  /** Power on when off, else restart (REDFISH.md step 10), then wait for On. */
  private async powerCycleForBoot(opts: OperationOptions | undefined, sink: StepOutcome[]): Promise<void> {
    const state = await this.powerState(opts);
    await this.resetInternal(state === 'On' || state === 'PoweringOn' ? 'ForceRestart' : 'On', opts, sink);
    await this.waitPowerInternal('On', opts, sink);
  }

  private async bootRequested(path: BootResult['path'], url: string, opts: OperationOptions | undefined, sink: StepOutcome[]): Promise<void> {
    await this.step('boot-requested', opts, async () => ({ value: undefined, via: path, detail: url.replace(/\/\/[^/@]*@/, '//') }), sink);
  }

  // ---- composed sequences ---------------------------------------------------------------------

  async bootFromIso(url: string, opts?: OperationOptions): Promise<BootResult> {
    const steps: StepOutcome[] = [];
    const slots = await this.mediaSlots(opts);
    // Eject first, unless the slot already holds this image (a resumed run).
    const stale = slots.filter((s) => s.inserted && !sameImage(s.image, url));
    if (stale.length) for (const s of stale) await this.ejectSlot(s, opts, steps);
    else if (!slots.some((s) => s.inserted && sameImage(s.image, url))) await this.step('eject', opts, async () => ({ value: undefined, outcome: 'skipped' as const, detail: 'nothing inserted' }), steps);
    await this.insertInternal(url, opts, steps);
    const target: BootTarget = this.caps.bootTargets.includes('Cd') || !this.caps.bootTargets.includes('UsbCd') ? 'Cd' : 'UsbCd';
    await this.overrideInternal(target, opts, steps);
    await this.powerCycleForBoot(opts, steps);
    await this.bootRequested('virtual-media', url, opts, steps);
    return { path: 'virtual-media', steps };
  }

  async bootFromHttp(url: string, opts?: OperationOptions): Promise<BootResult> {
    const steps: StepOutcome[] = [];
    if (this.caps.bootTargets.length && !this.caps.bootTargets.includes('UefiHttp')) {
      await this.step('boot-override', opts, async () => {
        throw new ZtpError('REDFISH_UNSUPPORTED', `BMC does not offer UEFI HTTP boot (it allows ${this.caps.bootTargets.join(', ')})`, { details: { bmc: this.bmc, step: 'boot-override' } });
      }, steps);
    }
    await this.overrideInternal('UefiHttp', { ...opts, httpBootUri: url }, steps);
    await this.powerCycleForBoot(opts, steps);
    await this.bootRequested('uefi-http', url, opts, steps);
    return { path: 'uefi-http', steps };
  }

  async clearBoot(opts?: ClearBootOptions): Promise<void> {
    const steps: StepOutcome[] = [];
    const slots = await this.mediaSlots(opts).catch((err) => {
      if (isZtpError(err, 'REDFISH_NOT_FOUND')) return [] as MediaSlot[];
      throw err;
    });
    for (const s of slots.filter((x) => x.inserted)) await this.ejectSlot(s, opts, steps);
    await this.overrideInternal('None', opts, steps, 'Disabled');
    const restore = opts?.bootOrder ?? this.savedBootOrder;
    if (restore?.length) await this.restoreBootOrder(restore, opts, steps);
  }

  /** Puts back the boot order bootFromOobNetwork changed, unless someone changed the options since. */
  private async restoreBootOrder(order: string[], opts: OperationOptions | undefined, sink: StepOutcome[]): Promise<void> {
    await this.step('restore-boot-order', opts, async () => {
      const { body: system } = await this.system(opts);
      const current = (await this.effectiveBoot(system, opts)).BootOrder;
      if (!Array.isArray(current)) return { value: undefined, outcome: 'skipped' as const, detail: 'BMC shows no BootOrder' };
      const now = current.map(String);
      if (now.join(',') === order.join(',')) {
        this.savedBootOrder = null;
        return { value: undefined, outcome: 'skipped' as const, detail: `BootOrder already ${order.join(',')}` };
      }
      if (now.length !== order.length || order.some((r) => !now.includes(r))) {
        return { value: undefined, outcome: 'skipped' as const, detail: `boot options changed since (now ${now.join(',')}): order left as is` };
      }
      const sent = await this.patchBoot('restore-boot-order', [{ body: { Boot: { BootOrder: order } }, tag: 'full' }], opts);
      this.savedBootOrder = null;
      return { value: undefined, via: sent.via, detail: `BootOrder ${now.join(',')} → ${order.join(',')}` };
    }, sink);
  }

  /**
   * The next boot from the DPU's out-of-band network port: Boot.BootNext with
   * BootSourceOverrideTarget UefiBootNext (once) where the system allows that target, else the
   * OOB entry moved to the head of Boot.BootOrder (the previous order is kept for clearBoot and
   * returned). Both PATCHes go where this BMC takes boot settings (System or @Redfish.Settings).
   */
  async bootFromOobNetwork(opts?: OobBootOptions): Promise<BootResult> {
    const steps: StepOutcome[] = [];
    let previous: string[] | undefined;
    const chosen = await this.step('boot-oob', opts, async () => {
      const { body: system } = await this.system(opts);
      const boot = await this.effectiveBoot(system, opts);
      const entries = await this.bootEntries(system, this.signalOf(opts), boot.BootOrder);
      if (!entries?.length) throw new ZtpError('REDFISH_UNSUPPORTED', 'BMC shows no boot order (Boot.BootOrder) to boot the out-of-band network from', { details: { bmc: this.bmc, step: 'boot-oob' } });
      const oob = entries.filter((e) => e.oobNetwork);
      const isHttp = (e: BootEntry) => /HTTP|Uri\(/i.test(`${e.name ?? ''} ${e.path ?? ''}`);
      const pick = opts?.prefer === 'http' ? oob.find(isHttp) : opts?.prefer === 'pxe' ? oob.find((e) => !isHttp(e)) : oob[0];
      const label = (e: BootEntry) => (e.name ? `${e.reference} (${e.name})` : e.reference);
      if (!pick) {
        throw new ZtpError('REDFISH_UNSUPPORTED', `BMC lists no out-of-band network${opts?.prefer ? ` ${opts.prefer.toUpperCase()}` : ''} boot option (boot order: ${entries.map(label).join(', ')})`, {
          details: { bmc: this.bmc, step: 'boot-oob' },
        });
      }
      const systemBoot = obj(system.Boot) ?? {};
      const allowed = Array.isArray(systemBoot['BootSourceOverrideTarget@Redfish.AllowableValues']) ? (systemBoot['BootSourceOverrideTarget@Redfish.AllowableValues'] as unknown[]).map(String) : [];
      if (allowed.includes('UefiBootNext')) {
        if (boot.BootNext === pick.reference && boot.BootSourceOverrideTarget === 'UefiBootNext' && boot.BootSourceOverrideEnabled === 'Once') {
          return { value: pick, outcome: 'skipped' as const, via: 'boot-next', detail: `BootNext already ${label(pick)}` };
        }
        const minimal: Json = { BootNext: pick.reference, BootSourceOverrideTarget: 'UefiBootNext', BootSourceOverrideEnabled: 'Once' };
        const modes = this.caps.bootModes;
        const variants = [{ body: { Boot: minimal }, tag: 'minimal' }];
        if (!modes || modes.includes('UEFI')) variants.unshift({ body: { Boot: { ...minimal, BootSourceOverrideMode: 'UEFI' } }, tag: 'full' });
        const sent = await this.patchBoot('boot-oob', variants, opts);
        return { value: pick, via: `boot-next+${sent.via}`, detail: `sent ${describeBoot(sent.body)}: next boot ${label(pick)}` };
      }
      const order = entries.map((e) => e.reference);
      if (order[0] === pick.reference) return { value: pick, outcome: 'skipped' as const, via: 'boot-order', detail: `${label(pick)} already first in BootOrder` };
      const next = [pick.reference, ...order.filter((r) => r !== pick.reference)];
      const sent = await this.patchBoot('boot-oob', [{ body: { Boot: { BootOrder: next } }, tag: 'full' }], opts);
      previous = order;
      this.savedBootOrder = order;
      return { value: pick, via: `boot-order+${sent.via}`, detail: `BootOrder ${order.join(',')} → ${next.join(',')}: ${label(pick)} first (clear-boot restores the order)` };
    }, steps);
    if (opts?.restart !== false) await this.powerCycleForBoot(opts, steps);
    await this.bootRequested('oob-network', chosen.name ?? chosen.reference, opts, steps);
    return { path: 'oob-network', steps, ...(previous ? { previousBootOrder: previous } : {}) };
  }

  // ---- NVIDIA BlueField --------------------------------------------------------------------------

  /** BlueField: RShim must be enabled on the BMC before a BFB can be pushed to the DPU. */
  private async enableRshim(opts: OperationOptions | undefined, sink: StepOutcome[]): Promise<void> {
    const t = this.transport;
    const managerUri = this.caps.managerUris[0];
    if (!managerUri) return;
    const { body: manager } = await t.get(managerUri, { signal: this.signalOf(opts), step: 'rshim' });
    const nvidia = obj(obj(manager.Oem)?.Nvidia);
    if (!nvidia && !this.caps.quirks.bfb?.rshim) return;
    await this.step('rshim', opts, async () => {
      const uri = link(nvidia) ?? `${stripSlash(t.resolve(managerUri))}/Oem/Nvidia`;
      let current: Json | null = obj(nvidia?.BmcRShim);
      if (!current) current = obj((await t.get(uri, { signal: this.signalOf(opts), step: 'rshim' }).then((r) => r.body).catch(() => null))?.BmcRShim);
      if (current?.BmcRShimEnabled === true) return { value: undefined, outcome: 'skipped' as const, detail: 'RShim already enabled' };
      const r = await t.patch(uri, { BmcRShim: { BmcRShimEnabled: true } }, { signal: this.signalOf(opts), step: 'rshim', etag: null });
      await this.finishAsync(r.response, 'rshim', opts);
      return { value: undefined, via: 'oem-nvidia', detail: 'RShim enabled' };
    }, sink);
  }

  async installBfb(url: string, opts?: OperationOptions): Promise<BootResult> {
    const steps: StepOutcome[] = [];
    const t = this.transport;
    await this.enableRshim(opts, steps);
    await this.step('bfb-update', opts, async () => {
      const updateUri = link(this.caps.root.UpdateService);
      if (!updateUri) throw new ZtpError('REDFISH_UNSUPPORTED', 'BMC has no UpdateService', { details: { bmc: this.bmc, step: 'bfb-update' } });
      const { body: service } = await t.get(updateUri, { signal: this.signalOf(opts), step: 'bfb-update' });
      const action = obj(obj(service.Actions)?.['#UpdateService.SimpleUpdate']);
      const target = str(action?.target);
      if (!target) throw new ZtpError('REDFISH_UNSUPPORTED', 'UpdateService has no SimpleUpdate action (BlueField BMC firmware >= 24.10 needed)', { details: { bmc: this.bmc, step: 'bfb-update' } });
      const protocols = Array.isArray(action?.['TransferProtocol@Redfish.AllowableValues']) ? (action!['TransferProtocol@Redfish.AllowableValues'] as unknown[]).map(String) : null;
      const protocol = schemeOf(url).toUpperCase();
      if (protocols && !protocols.includes(protocol)) {
        throw new ZtpError('REDFISH_UNSUPPORTED', `SimpleUpdate does not take ${protocol} (it allows ${protocols.join(', ')})`, { details: { bmc: this.bmc, step: 'bfb-update' } });
      }
      const body: Json = { ImageURI: url, TransferProtocol: protocol };
      const bfbTarget = this.caps.quirks.bfb?.target;
      if (bfbTarget) body.Targets = [bfbTarget];
      let res = await t.send('POST', target, { body, step: 'bfb-update', signal: this.signalOf(opts), idempotent: false });
      if (res.status === 400 && body.Targets && refusedParameters(res.messages).includes('Targets')) {
        delete body.Targets;
        res = await t.send('POST', target, { body, step: 'bfb-update', signal: this.signalOf(opts), idempotent: false });
      }
      if (res.status >= 400) throw t.errorFor(res, 'POST', 'bfb-update');
      const end = res.status === 202 || obj(res.json)?.TaskState
        ? await t.awaitTask(res, { signal: this.signalOf(opts), step: 'bfb-update', timeoutMs: this.timeouts.bfbMs })
        : await this.followTaskLink(res, opts);
      return { value: undefined, via: 'simple-update', detail: end ? `task ${end}` : 'accepted' };
    }, steps);
    await this.bootRequested('bfb', url, opts, steps);
    return { path: 'bfb', steps };
  }

  /** Some BMCs answer SimpleUpdate 200/204 with a Task link in the body or Location. */
  private async followTaskLink(res: RedfishResponse, opts?: OperationOptions): Promise<string | null> {
    const t = this.transport;
    const taskUri = res.headers.location ?? str(obj(res.json)?.['@odata.id']) ?? link(obj(res.json)?.Task);
    if (!taskUri || !/Task/i.test(taskUri)) return null;
    const first = await t.request('GET', taskUri, { signal: this.signalOf(opts), step: 'bfb-update' });
    const end = await t.awaitTask({ ...first, status: 202, headers: { ...first.headers, location: taskUri } }, { signal: this.signalOf(opts), step: 'bfb-update', timeoutMs: this.timeouts.bfbMs });
    return end.taskState;
  }

  /** BlueField: DPU or NIC mode (takes effect at the next DPU reboot). */
  async setOperationMode(mode: OperationMode, opts?: OperationOptions): Promise<'set' | 'unchanged'> {
    return this.step('operation-mode', opts, async () => {
      const t = this.transport;
      const { body: system } = await this.system(opts);
      const uri = this.nvidiaOemUri(system);
      if (!uri) throw new ZtpError('REDFISH_UNSUPPORTED', 'BMC exposes no NVIDIA operation mode (Systems/<id>/Oem/Nvidia)', { details: { bmc: this.bmc, step: 'operation-mode' } });
      const current = await this.operationMode(system, this.signalOf(opts));
      if (current === mode) return { value: 'unchanged' as const, outcome: 'skipped' as const, detail: `already ${mode} mode` };
      const { body: oem } = await t.get(uri, { signal: this.signalOf(opts), step: 'operation-mode' });
      const target = str(obj(obj(oem.Actions)?.['#Mode.Set'])?.target) ?? `${stripSlash(t.resolve(uri))}/Actions/Mode.Set`;
      const res = await t.request('POST', target, { body: { Mode: mode === 'DPU' ? 'DpuMode' : 'NicMode' }, signal: this.signalOf(opts), step: 'operation-mode', idempotent: true });
      await this.finishAsync(res, 'operation-mode', opts);
      return { value: 'set' as const, via: 'oem-nvidia', detail: `${current ?? 'unknown'} → ${mode} (at next reboot)` };
    });
  }

  /** Logs out (session DELETE) and releases sockets; safe to call twice; never raises. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.signal?.removeEventListener('abort', this.onAbort);
    await this.transport.close().catch((err) => this.log.warn({ err: String(err) }, 'closing the BMC transport failed'));
  }
}

/**
 * A new BMC password: 24 random base64url characters (144 bits) plus one of each class BMC
 * password policies ask for (upper, lower, digit, symbol); 28 characters, under the 32-character
 * maximum of many BMCs.
 */
export function generateBmcPassword(): string {
  return `${randomBytes(18).toString('base64url')}Aa1!`;
}

/** The socket-level cause of a lost answer (e.g. UND_ERR_SOCKET, ECONNRESET). */
function lostCause(err: unknown): string {
  return isZtpError(err) ? String(err.details?.cause ?? 'connection closed').slice(0, 60) : 'connection closed';
}

function powerOf(system: Json): PowerState {
  const p = str(system.PowerState);
  return p && POWER_STATES.has(p) ? (p as PowerState) : 'Unknown';
}

/** A Boot PATCH body as sent, e.g. `Boot {"BootSourceOverrideEnabled":"Disabled"}` (never carries a secret). */
function describeBoot(body: Json): string {
  return `Boot ${JSON.stringify(body.Boot ?? body)}`;
}

/** Lower-case colon MAC from whatever notation a BMC uses, or null. */
export function normalizeMacLoose(raw: unknown): string | null {
  if (typeof raw !== 'string') return null;
  const hex = raw.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length !== 12 || /^0+$/.test(hex)) return null;
  return hex.match(/../g)!.join(':');
}

