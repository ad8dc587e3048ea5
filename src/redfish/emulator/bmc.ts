// One emulated BMC: its live state (power, boot override, media slots, sessions, account, tasks)
// over the shared template, and the Redfish semantics a client meets (DSP0266): sessions and
// Basic auth, ETags with If-Match, 202 task monitors, @Message.ExtendedInfo errors. Transport
// free: the fastify app (app.ts) hands it normalized requests and writes back what it returns,
// so every behaviour is testable with inject(). Vendor differences come from the quirk profile,
// injected faults from the FaultSpec; nothing here is vendor-named.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Logger } from '../../log.js';
import type { BootingEvent, PowerEvent } from './hooks.js';
import type { FaultSpec, HangTarget } from './faults.js';
import type { MediaFetcher } from './media-fetch.js';
import { baseMessage, errorBody, httpError, RedfishHttpError, vendorMessage, type ExtendedInfo } from './messages.js';
import type { BootOptionSpec, MediaSlotSpec, QuirkProfile } from './quirks.js';
import { personalizer, ROOT, type BmcIdentity, type Json, type Template } from './tree.js';

/** How long things take. All zero: every transition completes before the response (benchmarks). */
export interface EmulatorTiming {
  /** Off → On */
  powerOnMs: number;
  /** On → Off */
  powerOffMs: number;
  /** how long a task (SimpleUpdate, async actions) runs at least */
  taskMs: number;
  /** iDRAC: Inserted stays true this long after EjectMedia */
  ejectLagMs: number;
  /** iLO: boot changes refused this long after power-on (POST) */
  postMs: number;
  /** iDRAC: On within this long after a power-off is a transient 409 */
  offSettleMs: number;
}

export const DEFAULT_TIMING: EmulatorTiming = { powerOnMs: 1500, powerOffMs: 500, taskMs: 1000, ejectLagMs: 1000, postMs: 1000, offSettleMs: 1000 };
export const ZERO_TIMING: EmulatorTiming = { powerOnMs: 0, powerOffMs: 0, taskMs: 0, ejectLagMs: 0, postMs: 0, offSettleMs: 0 };

export interface BmcContext {
  events: EventEmitter;
  fetcher: MediaFetcher;
  timing: EmulatorTiming;
  log: Logger;
  /** 'sample': HEAD + spread range reads at insert; 'full': every byte in ranges */
  mediaRead: 'sample' | 'full';
  now: () => number;
}

export interface EmuRequest {
  method: string;
  /** normalized resource path, starting at /redfish */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** parsed JSON body; undefined when none was sent; a string when it was not JSON */
  body: unknown;
}

export interface EmuResponse {
  status: number;
  /** JSON text, already personalized; absent for 204 and HEAD */
  text?: string;
  headers: Record<string, string>;
  /** a timeout fault: never answer */
  hang?: boolean;
  /** a drop-connection fault: close the socket instead of answering */
  drop?: boolean;
}

type PowerState = 'On' | 'Off' | 'PoweringOn' | 'PoweringOff';

interface BootOverride {
  BootSourceOverrideTarget: string;
  BootSourceOverrideEnabled: string;
  BootSourceOverrideMode: string;
  HttpBootUri: string | null;
  /** BootOptionReferences, first boots first; null: the system has no boot order */
  BootOrder: string[] | null;
  /** the option a UefiBootNext override boots (UEFI BootNext, consumed by that boot) */
  BootNext: string | null;
}

interface SystemState {
  id: string;
  path: string;
  power: PowerState;
  /** where a running transition ends */
  goal: 'On' | 'Off' | 'Restart';
  timer: NodeJS.Timeout | undefined;
  boot: BootOverride;
  /** a @Redfish.Settings object's pending Boot, applied at the next reset */
  pendingBoot: Partial<BootOverride> | undefined;
  postUntil: number;
  offAt: number;
  bootProgress: string;
  /** a pushed BFB that the next power-on boots */
  bfbPending: string | null;
  /** LastResetTime (epoch ms), strictly increasing: every reset the state machine ran moves it */
  lastResetMs: number;
}

interface SlotState {
  spec: MediaSlotSpec;
  path: string;
  image: string | null;
  inserted: boolean;
  writeProtected: boolean;
  transferProtocolType: string | null;
  transferMethod: string | null;
  /** iDRAC: still shows Inserted until then */
  lagUntil: number;
}

interface Session {
  id: string;
  token: string;
  user: string;
  lastUsed: number;
  requests: number;
}

interface Task {
  id: string;
  name: string;
  state: 'Running' | 'Completed' | 'Exception';
  percent: number;
  messages: ExtendedInfo[];
  startedAt: number;
  endedAt: number | null;
  doneAt: number;
  /** the request that started it (Task Payload.TargetUri) */
  targetUri: string | null;
}

export interface BmcStats {
  requests: number;
  logins: number;
  logouts: number;
  /** sessions open right now */
  openSessions: number;
  inserts: number;
  ejects: number;
  resets: number;
  bootPatches: number;
  /** connections closed unanswered by a drop-connection fault */
  drops: number;
  /** media URLs mounted, in order (fetched by HEAD + ranges) */
  mounted: string[];
  /** status codes answered, by code */
  statuses: Record<number, number>;
}

const SESSION_IDLE_MS = 30 * 60_000;
const CD_TYPES = ['CD', 'DVD'];
const KNOWN_INSERT_PARAMS = ['Image', 'Inserted', 'WriteProtected', 'TransferProtocolType', 'TransferMethod', 'UserName', 'Password'];
const TRANSFER_PROTOCOLS = ['HTTP', 'HTTPS', 'NFS', 'CIFS', 'SMB', 'FTP', 'SFTP', 'TFTP', 'SCP', 'OEM'];

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

function header(req: EmuRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function isObject(v: unknown): v is Json {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

const link = (path: string) => ({ '@odata.id': path });

export class EmulatedBmc {
  readonly profile: QuirkProfile;
  readonly systems = new Map<string, SystemState>();
  readonly slots = new Map<string, SlotState>();
  readonly stats: BmcStats = { requests: 0, logins: 0, logouts: 0, openSessions: 0, inserts: 0, ejects: 0, resets: 0, bootPatches: 0, drops: 0, mounted: [], statuses: {} };
  faults: FaultSpec;
  /** the account's credentials; `password` changes through AccountService */
  readonly account: { id: string; username: string; password: string; passwordChangeRequired: boolean };
  /** BlueField NIC subsystem: RShim owned by the BMC (needed for a BFB push), operation mode */
  readonly nvidia = { rshimEnabled: false, mode: 'DpuMode' };

  private readonly sessions = new Map<string, Session>();
  private readonly tasks = new Map<string, Task>();
  private readonly versions = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly personalize: (text: string) => string;
  private readonly aborts = new Set<AbortController>();
  private timeoutsLeft: number;
  private dropsLeft: number;
  private notReadyServed = false;
  private taskSeq = 0;
  private closed = false;
  private readonly managerPath: string;
  private readonly dpuPath: string;
  private readonly settingsPath: string | null;
  private readonly accountPath: string;

  constructor(
    readonly id: string,
    readonly index: number,
    readonly template: Template,
    readonly identity: BmcIdentity,
    private readonly ctx: BmcContext,
    opts: { faults?: FaultSpec; initialPower?: 'On' | 'Off'; username?: string; password?: string } = {},
  ) {
    this.profile = template.profile;
    this.faults = opts.faults ?? {};
    this.timeoutsLeft = this.faults.timeout?.times ?? Infinity;
    this.dropsLeft = this.faults.dropConnection?.times ?? 0;
    this.personalize = personalizer(template, id, identity);
    this.managerPath = `${ROOT}/Managers/${template.managerId}`;
    this.dpuPath = `${ROOT}/Systems/${template.dpuSystemId}`;
    const via = this.profile.boot.via;
    this.settingsPath = via === 'system' ? null : `${this.dpuPath}/${via.settings}`;
    this.accountPath = `${ROOT}/AccountService/Accounts/1`;
    this.account = {
      id: '1',
      username: opts.username ?? this.profile.username,
      password: opts.password ?? this.profile.password,
      passwordChangeRequired: this.profile.passwordChangeRequired || this.faults.factoryPassword === true,
    };
    for (const sysId of template.systemIds) {
      const path = `${ROOT}/Systems/${sysId}`;
      const base = (template.objects.get(path)?.Boot as Json | undefined) ?? {};
      const target = typeof base.BootSourceOverrideTarget === 'string' && this.profile.boot.targets.includes(base.BootSourceOverrideTarget) ? base.BootSourceOverrideTarget : 'None';
      this.systems.set(sysId, {
        id: sysId,
        path,
        power: opts.initialPower ?? 'Off',
        goal: opts.initialPower ?? 'Off',
        timer: undefined,
        boot: {
          BootSourceOverrideTarget: target,
          BootSourceOverrideEnabled: 'Disabled',
          BootSourceOverrideMode: 'UEFI',
          HttpBootUri: null,
          BootOrder: sysId === template.dpuSystemId && this.profile.boot.options ? this.profile.boot.options.map((o) => o.reference) : null,
          BootNext: null,
        },
        pendingBoot: undefined,
        postUntil: 0,
        offAt: -Infinity,
        bootProgress: 'None',
        bfbPending: null,
        // booted a minute before the emulator started
        lastResetMs: ctx.now() - 60_000,
      });
    }
    for (const spec of this.profile.media.slots) {
      this.slots.set(spec.id, { spec, path: `${template.mediaCollection}/${spec.id}`, image: null, inserted: false, writeProtected: true, transferProtocolType: spec.transferProtocolType ?? null, transferMethod: null, lagUntil: 0 });
    }
  }

  /** The DPU system's live state (for tests and the simulator). */
  get dpu(): SystemState {
    return this.systems.get(this.template.dpuSystemId)!;
  }

  get dpuSystemId(): string {
    return this.template.dpuSystemId;
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  /** The simulated DPU reports how far it got (BootProgress.LastState, e.g. 'OSRunning'). */
  setBootProgress(state: string, systemId = this.template.dpuSystemId): void {
    const sys = this.systems.get(systemId);
    if (!sys) return;
    sys.bootProgress = state;
    this.bump(sys.path);
  }

  setFaults(faults: FaultSpec): void {
    this.faults = faults;
    this.timeoutsLeft = faults.timeout?.times ?? Infinity;
    this.dropsLeft = faults.dropConnection?.times ?? 0;
    if (faults.factoryPassword) this.account.passwordChangeRequired = true;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.systems.values()) if (s.timer) clearTimeout(s.timer);
    for (const a of this.aborts) a.abort();
  }

  // ---------------------------------------------------------------- request entry

  async handle(req: EmuRequest): Promise<EmuResponse> {
    this.stats.requests++;
    const drop = this.faults.dropConnection;
    const dropping = drop && this.dropsLeft > 0 && this.matchesHang(drop.on, req) ? drop.when : null;
    if (dropping) this.dropsLeft--;
    if (dropping === 'before') {
      // the keep-alive race: the BMC closed the connection as the request arrived, never acting on it
      this.stats.drops++;
      return { status: 0, headers: {}, drop: true };
    }
    const res = await this.dispatch(req).catch((err: unknown) => this.errorResponse(err));
    if (dropping === 'after') {
      // acted on, then the connection went away before the answer
      this.stats.drops++;
      return { status: 0, headers: {}, drop: true };
    }
    this.stats.statuses[res.status] = (this.stats.statuses[res.status] ?? 0) + 1;
    return res;
  }

  private async dispatch(req: EmuRequest): Promise<EmuResponse> {
    const f = this.faults;
    if (f.burst5xx && (this.stats.requests - 1) % f.burst5xx.every < f.burst5xx.count) {
      const after = String(f.burst5xx.retryAfterS ?? 1);
      throw new RedfishHttpError(503, [baseMessage('ServiceTemporarilyUnavailable', [after])], { 'retry-after': after });
    }
    if (f.timeout && this.timeoutsLeft > 0 && this.matchesHang(f.timeout.on, req)) {
      this.timeoutsLeft--;
      return { status: 0, headers: {}, hang: true };
    }
    if (f.refuseIdentityEncoding && /(^|,)\s*identity\s*(;|,|$)/i.test(header(req, 'accept-encoding') ?? '')) {
      throw httpError(406, 'HeaderInvalid', ['Accept-Encoding']);
    }
    const { method, path } = req;
    if (path === '/redfish') return this.json(200, { v1: `${ROOT}/` });
    const anonymous = (method === 'GET' || method === 'HEAD') && (path === ROOT || path === `${ROOT}/odata` || path === `${ROOT}/$metadata`);
    if (anonymous) return this.get(req);
    if (method === 'POST' && path === `${ROOT}/SessionService/Sessions`) return this.login(req);

    const session = this.authenticate(req);
    if (this.account.passwordChangeRequired && !this.allowedBeforePasswordChange(req, session)) {
      throw httpError(403, 'PasswordChangeRequired', [this.accountPath]);
    }
    switch (method) {
      case 'GET':
      case 'HEAD':
        return this.get(req);
      case 'PATCH':
        return this.patch(req);
      case 'POST':
        return this.post(req);
      case 'DELETE':
        return this.delete(req);
      default:
        throw this.methodNotAllowed(path);
    }
  }

  private matchesHang(on: HangTarget, req: EmuRequest): boolean {
    const p = req.path;
    switch (on) {
      case 'any':
        return true;
      case 'login':
        return req.method === 'POST' && p.endsWith('/SessionService/Sessions');
      case 'get':
        return req.method === 'GET' && p !== ROOT;
      case 'insert':
        return (req.method === 'POST' && p.endsWith('/VirtualMedia.InsertMedia')) || (req.method === 'PATCH' && [...this.slots.values()].some((s) => s.path === p) && isObject(req.body) && typeof req.body.Image === 'string');
      case 'eject':
        return req.method === 'POST' && p.endsWith('/VirtualMedia.EjectMedia');
      case 'reset':
        return req.method === 'POST' && p.endsWith('/ComputerSystem.Reset');
      case 'boot':
        return req.method === 'PATCH' && isObject(req.body) && 'Boot' in req.body;
      case 'update':
        return req.method === 'POST' && p.endsWith('/UpdateService.SimpleUpdate');
    }
  }

  // ---------------------------------------------------------------- auth

  private login(req: EmuRequest): EmuResponse {
    const body = req.body;
    if (!isObject(body)) throw httpError(400, 'MalformedJSON');
    for (const key of ['UserName', 'Password']) {
      if (typeof body[key] !== 'string') throw httpError(400, 'PropertyMissing', [key], [`#/${key}`]);
    }
    if (!this.credentialsMatch(body.UserName as string, body.Password as string)) {
      throw httpError(401, 'ResourceAtUriUnauthorized', [req.path, 'Unauthorized']);
    }
    const session: Session = { id: randomBytes(8).toString('hex'), token: randomBytes(16).toString('hex'), user: this.account.username, lastUsed: this.ctx.now(), requests: 0 };
    this.sessions.set(session.token, session);
    this.stats.logins++;
    this.stats.openSessions = this.sessions.size;
    const path = `${ROOT}/SessionService/Sessions/${session.id}`;
    const resource: Json = this.sessionResource(session);
    // DSP0266 "Password change required": the session is created, and says why nothing else will work.
    if (this.account.passwordChangeRequired) resource['@Message.ExtendedInfo'] = [baseMessage('PasswordChangeRequired', [this.accountPath])];
    return this.json(201, resource, { 'x-auth-token': session.token, location: path });
  }

  private credentialsMatch(user: string, password: string): boolean {
    return user === this.account.username && sameSecret(password, this.account.password);
  }

  private authenticate(req: EmuRequest): Session | undefined {
    const token = header(req, 'x-auth-token');
    if (token) {
      const s = this.sessions.get(token);
      const now = this.ctx.now();
      if (!s || now - s.lastUsed > SESSION_IDLE_MS) {
        if (s) this.sessions.delete(token);
        throw this.unauthorized();
      }
      s.requests++;
      if (this.faults.dropSessionAfter !== undefined && s.requests > this.faults.dropSessionAfter) {
        this.sessions.delete(token);
        this.stats.openSessions = this.sessions.size;
        throw this.unauthorized();
      }
      s.lastUsed = now;
      return s;
    }
    const auth = header(req, 'authorization');
    const m = auth ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(auth) : null;
    if (m) {
      const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0 && this.credentialsMatch(decoded.slice(0, colon), decoded.slice(colon + 1))) return undefined;
    }
    throw this.unauthorized();
  }

  private unauthorized(): RedfishHttpError {
    return new RedfishHttpError(401, [baseMessage('NoValidSession')], { 'www-authenticate': 'Basic realm="Redfish"' });
  }

  private allowedBeforePasswordChange(req: EmuRequest, session: Session | undefined): boolean {
    if (req.path === this.accountPath && (req.method === 'GET' || req.method === 'PATCH' || req.method === 'HEAD')) return true;
    if (session && req.path === `${ROOT}/SessionService/Sessions/${session.id}`) return req.method === 'GET' || req.method === 'DELETE';
    return false;
  }

  private sessionResource(s: Session): Json {
    const path = `${ROOT}/SessionService/Sessions/${s.id}`;
    return { '@odata.type': '#Session.v1_3_0.Session', '@odata.id': path, Id: s.id, Name: 'User Session', UserName: s.user };
  }

  // ---------------------------------------------------------------- GET

  private get(req: EmuRequest): EmuResponse {
    const path = req.path;
    const monitorOf = /^\/redfish\/v1\/TaskService\/Tasks\/([^/]+)\/Monitor$/.exec(path)?.[1];
    const monitored = monitorOf ? this.monitor(monitorOf) : undefined;
    if (monitored) return monitored;
    const rendered = this.render(path);
    if (!rendered) throw httpError(404, 'ResourceMissingAtURI', [path]);
    const res = this.json(200, rendered.body, {}, rendered.etag ? path : undefined);
    if (rendered.allow) res.headers.allow = rendered.allow;
    if (req.method === 'HEAD') delete res.text;
    return res;
  }

  /** The live representation of a path, or undefined when no such resource exists. */
  private render(path: string): { body: Json | string; etag?: boolean; allow?: string } | undefined {
    const sysId = /^\/redfish\/v1\/Systems\/([^/]+)$/.exec(path)?.[1];
    if (sysId && this.systems.has(sysId)) return { body: this.renderSystem(this.systems.get(sysId)!), etag: true, allow: 'GET, PATCH' };
    if (this.settingsPath && path === this.settingsPath) return { body: this.renderSettings(), etag: true, allow: 'GET, PATCH' };
    if (path === this.template.mediaCollection) {
      return { body: this.collectionBody(path, '#VirtualMediaCollection.VirtualMediaCollection', 'Virtual Media Services', [...this.slots.values()].map((s) => s.path)) };
    }
    for (const slot of this.slots.values()) {
      if (slot.path === path) return { body: this.renderSlot(slot), etag: true, allow: this.profile.media.patch ? 'GET, PATCH' : 'GET' };
    }
    if (path === `${ROOT}/SessionService/Sessions`) {
      return { body: this.collectionBody(path, '#SessionCollection.SessionCollection', 'Session Collection', [...this.sessions.values()].map((s) => `${path}/${s.id}`)), allow: 'GET, POST' };
    }
    const sessionId = /^\/redfish\/v1\/SessionService\/Sessions\/([^/]+)$/.exec(path)?.[1];
    if (sessionId) {
      const s = [...this.sessions.values()].find((x) => x.id === sessionId);
      return s ? { body: this.sessionResource(s), allow: 'GET, DELETE' } : undefined;
    }
    if (path === `${ROOT}/AccountService/Accounts`) return { body: this.collectionBody(path, '#ManagerAccountCollection.ManagerAccountCollection', 'Accounts Collection', [this.accountPath]) };
    if (path === this.accountPath) return { body: this.renderAccount(), etag: true, allow: 'GET, PATCH' };
    if (path === `${ROOT}/TaskService/Tasks`) return { body: this.collectionBody(path, '#TaskCollection.TaskCollection', 'Task Collection', [...this.tasks.keys()].map((id) => `${path}/${id}`)) };
    const task = /^\/redfish\/v1\/TaskService\/Tasks\/([^/]+)$/.exec(path)?.[1];
    if (task && this.tasks.has(task)) return { body: this.renderTask(this.tasks.get(task)!) };
    const options = this.profile.boot.options;
    if (options && path === `${this.dpuPath}/BootOptions`) {
      return { body: this.collectionBody(path, '#BootOptionCollection.BootOptionCollection', 'Boot Options', options.map((o) => `${path}/${o.reference}`)) };
    }
    const option = options && path.startsWith(`${this.dpuPath}/BootOptions/`) ? options.find((o) => path === `${this.dpuPath}/BootOptions/${o.reference}`) : undefined;
    if (option) return { body: this.renderBootOption(option) };
    if (this.profile.nvidiaOem && path === `${this.managerPath}/Oem/Nvidia`) {
      return { body: { '@odata.id': path, '@odata.type': '#NvidiaManager.v1_2_0.NvidiaManager', BmcRShim: { BmcRShimEnabled: this.nvidia.rshimEnabled } }, allow: 'GET, PATCH' };
    }
    if (this.profile.nvidiaOem && path === `${this.dpuPath}/Oem/Nvidia`) {
      return { body: { '@odata.id': path, '@odata.type': '#NvidiaComputerSystem.v1_0_0.NvidiaComputerSystem', Mode: this.nvidia.mode, Actions: { '#Mode.Set': { target: `${path}/Actions/Mode.Set`, 'Mode@Redfish.AllowableValues': ['DpuMode', 'NicMode'] } } } };
    }
    const text = this.template.texts.get(path);
    return text === undefined ? undefined : { body: text };
  }

  private collectionBody(path: string, type: string, name: string, members: string[]): Json {
    return { '@odata.type': type, '@odata.id': path, Name: name, Members: members.length === 0 && this.profile.nullMembers ? null : members.map(link), 'Members@odata.count': members.length };
  }

  /** BootSourceOverrideTarget@Redfish.AllowableValues, as the firmware in force offers them */
  private get bootTargets(): string[] {
    return this.faults.noBootNext ? this.profile.boot.targets.filter((t) => t !== 'UefiBootNext') : this.profile.boot.targets;
  }

  private renderBootOption(o: BootOptionSpec): Json {
    return {
      '@odata.type': '#BootOption.v1_0_4.BootOption',
      '@odata.id': `${this.dpuPath}/BootOptions/${o.reference}`,
      Id: o.reference,
      Name: o.reference,
      BootOptionReference: o.reference,
      DisplayName: o.displayName,
      UefiDevicePath: o.uefiDevicePath,
      BootOptionEnabled: true,
    };
  }

  private renderSystem(s: SystemState): Json {
    const base = this.template.objects.get(s.path) ?? {};
    const isDpu = s.id === this.template.dpuSystemId;
    const boot: Json = {
      ...((base.Boot as Json | undefined) ?? {}),
      BootSourceOverrideEnabled: s.boot.BootSourceOverrideEnabled,
      BootSourceOverrideTarget: s.boot.BootSourceOverrideTarget,
      'BootSourceOverrideTarget@Redfish.AllowableValues': this.bootTargets,
      BootSourceOverrideMode: s.boot.BootSourceOverrideMode,
      'BootSourceOverrideMode@Redfish.AllowableValues': ['UEFI', 'Legacy'],
    };
    if (this.profile.boot.httpBootUri) boot.HttpBootUri = s.boot.HttpBootUri;
    else delete boot.HttpBootUri;
    delete boot.UefiTargetBootSourceOverride;
    if (s.boot.BootOrder) {
      boot.BootOrder = s.boot.BootOrder;
      boot.BootNext = s.boot.BootNext;
    }
    const body: Json = {
      ...base,
      ...(s.boot.BootOrder ? { BootOptions: link(`${s.path}/BootOptions`) } : {}),
      LastResetTime: new Date(s.lastResetMs).toISOString(),
      PowerState: s.power,
      Boot: boot,
      BootProgress: { LastState: s.bootProgress },
      Actions: {
        ...((base.Actions as Json | undefined) ?? {}),
        '#ComputerSystem.Reset': { target: `${s.path}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': this.profile.reset.types },
      },
    };
    if (isDpu && this.settingsPath) body['@Redfish.Settings'] = { '@odata.type': '#Settings.v1_3_5.Settings', SettingsObject: link(this.settingsPath) };
    if (isDpu && this.profile.nvidiaOem) body.Oem = { ...((base.Oem as Json | undefined) ?? {}), Nvidia: link(`${this.dpuPath}/Oem/Nvidia`) };
    return body;
  }

  private renderSettings(): Json {
    const s = this.dpu;
    const boot: Json = { ...s.boot, ...(s.pendingBoot ?? {}) };
    if (!s.boot.BootOrder) {
      delete boot.BootOrder;
      delete boot.BootNext;
    }
    return { '@odata.type': '#ComputerSystem.v1_20_0.ComputerSystem', '@odata.id': this.settingsPath, Id: this.settingsPath!.split('/').pop(), Name: 'Pending settings', Boot: boot };
  }

  private renderSlot(slot: SlotState): Json {
    const lagging = slot.lagUntil > this.ctx.now();
    const body: Json = {
      '@odata.type': '#VirtualMedia.v1_6_0.VirtualMedia',
      '@odata.id': slot.path,
      Id: slot.spec.id,
      Name: slot.spec.name,
      MediaTypes: slot.spec.mediaTypes,
      Image: slot.image,
      ImageName: slot.image ? (slot.image.split('/').pop() ?? null) : null,
      Inserted: slot.inserted || lagging,
      WriteProtected: slot.writeProtected,
      ConnectedVia: slot.image ? 'URI' : 'NotConnected',
      TransferProtocolType: slot.transferProtocolType,
      TransferMethod: slot.transferMethod,
    };
    const actions: Json = {};
    if (this.profile.media.insertAction) actions['#VirtualMedia.InsertMedia'] = { target: `${slot.path}/Actions/VirtualMedia.InsertMedia` };
    if (this.profile.media.ejectAction) actions['#VirtualMedia.EjectMedia'] = { target: `${slot.path}/Actions/VirtualMedia.EjectMedia` };
    if (Object.keys(actions).length) body.Actions = actions;
    return body;
  }

  private renderAccount(): Json {
    return {
      '@odata.type': '#ManagerAccount.v1_10_0.ManagerAccount',
      '@odata.id': this.accountPath,
      Id: this.account.id,
      Name: 'User Account',
      UserName: this.account.username,
      Password: null,
      RoleId: 'Administrator',
      Enabled: true,
      Locked: false,
      PasswordChangeRequired: this.account.passwordChangeRequired,
    };
  }

  private renderTask(t: Task): Json {
    return {
      '@odata.type': '#Task.v1_7_0.Task',
      '@odata.id': `${ROOT}/TaskService/Tasks/${t.id}`,
      Id: t.id,
      Name: t.name,
      TaskState: t.state,
      TaskStatus: t.state === 'Exception' ? 'Critical' : 'OK',
      PercentComplete: t.percent,
      StartTime: new Date(t.startedAt).toISOString(),
      ...(t.endedAt ? { EndTime: new Date(t.endedAt).toISOString() } : {}),
      TaskMonitor: `${ROOT}/TaskService/Tasks/${t.id}/Monitor`,
      ...(t.targetUri ? { Payload: { TargetUri: t.targetUri, HttpOperation: 'POST' } } : {}),
      Messages: t.messages,
    };
  }

  // ---------------------------------------------------------------- ETags (RFC 9110 §8.8.3, §13.1.1)

  private bump(path: string): void {
    this.versions.set(path, (this.versions.get(path) ?? 0) + 1);
  }

  private opaqueTag(path: string, version: number): string {
    return '"' + createHash('sha1').update(`${this.id}|${path}|${version}`).digest('hex').slice(0, 16) + '"';
  }

  /** The ETag a GET shows: weak on iLO; one version behind under the stale-etag fault. */
  private etagOf(path: string): string {
    const v = (this.versions.get(path) ?? 0) - (this.faults.staleEtag ? 1 : 0);
    return (this.profile.etag.weak ? 'W/' : '') + this.opaqueTag(path, v);
  }

  /** If-Match uses the strong comparison: a weak tag never matches (so iLO's W/"x" must be sent as "x"). */
  private checkIfMatch(req: EmuRequest, path: string, isAction: boolean): void {
    const ifMatch = header(req, 'if-match');
    if (ifMatch === undefined) return;
    const policy = this.profile.etag.ifMatch;
    if (policy === 'reject' || (policy === 'reject-on-actions' && isAction)) throw httpError(412, 'PreconditionFailed');
    if (ifMatch.trim() === '*') return;
    const current = this.opaqueTag(path, this.versions.get(path) ?? 0);
    const tags = ifMatch.split(',').map((t) => t.trim());
    if (!tags.some((t) => !t.startsWith('W/') && t === current)) throw httpError(412, 'PreconditionFailed');
  }

  // ---------------------------------------------------------------- PATCH

  private async patch(req: EmuRequest): Promise<EmuResponse> {
    const path = req.path;
    const body = this.objectBody(req);
    const sysId = /^\/redfish\/v1\/Systems\/([^/]+)$/.exec(path)?.[1];
    if (sysId && this.systems.has(sysId)) {
      this.checkIfMatch(req, path, false);
      return this.patchSystem(this.systems.get(sysId)!, body);
    }
    if (this.settingsPath && path === this.settingsPath) {
      this.checkIfMatch(req, path, false);
      return this.patchSettings(body);
    }
    for (const slot of this.slots.values()) {
      if (slot.path !== path) continue;
      if (!this.profile.media.patch) throw this.methodNotAllowed(path, 'GET');
      this.checkIfMatch(req, path, false);
      return this.patchSlot(slot, body);
    }
    if (path === this.accountPath) {
      this.checkIfMatch(req, path, false);
      return this.patchAccount(body);
    }
    if (this.profile.nvidiaOem && path === `${this.managerPath}/Oem/Nvidia`) {
      const rshim = (body.BmcRShim as Json | undefined)?.BmcRShimEnabled;
      if (typeof rshim !== 'boolean') throw httpError(400, 'PropertyMissing', ['BmcRShim/BmcRShimEnabled'], ['#/BmcRShim/BmcRShimEnabled']);
      this.nvidia.rshimEnabled = rshim;
      return this.noContent();
    }
    throw this.render(path) ? this.methodNotAllowed(path) : httpError(404, 'ResourceMissingAtURI', [path]);
  }

  private objectBody(req: EmuRequest): Json {
    if (req.body === undefined) throw httpError(400, 'NoOperation');
    if (!isObject(req.body)) throw httpError(400, 'MalformedJSON');
    return req.body;
  }

  /** Validates a Boot object against the profile; returns the override it asks for. */
  private validateBoot(s: SystemState, boot: unknown): Partial<BootOverride> {
    if (!isObject(boot)) throw httpError(400, 'PropertyValueTypeError', [JSON.stringify(boot), 'Boot'], ['#/Boot']);
    const p = this.profile.boot;
    const out: Partial<BootOverride> = {};
    for (const [key, value] of Object.entries(boot)) {
      switch (key) {
        case 'BootSourceOverrideTarget':
          if (typeof value !== 'string' || !this.bootTargets.includes(value)) throw httpError(400, 'PropertyValueNotInList', [String(value), key], [`#/Boot/${key}`]);
          out.BootSourceOverrideTarget = value;
          break;
        case 'BootSourceOverrideEnabled':
          if (typeof value !== 'string' || !p.enabled.includes(value)) throw httpError(400, 'PropertyValueNotInList', [String(value), key], [`#/Boot/${key}`]);
          out.BootSourceOverrideEnabled = value;
          break;
        case 'BootSourceOverrideMode':
          if (value !== 'UEFI' && value !== 'Legacy') throw httpError(400, 'PropertyValueNotInList', [String(value), key], [`#/Boot/${key}`]);
          out.BootSourceOverrideMode = value;
          break;
        case 'HttpBootUri':
          if (!p.httpBootUri) throw httpError(400, 'PropertyUnknown', [`Boot/${key}`], [`#/Boot/${key}`]);
          if (value !== null && (typeof value !== 'string' || !/^https?:\/\/\S+$/i.test(value))) throw httpError(400, 'PropertyValueFormatError', [String(value), key], [`#/Boot/${key}`]);
          out.HttpBootUri = value as string | null;
          break;
        case 'BootOrder': {
          // a permutation of the existing options (UEFI BootOrder): nothing added, nothing lost
          const known = s.boot.BootOrder;
          if (!known) throw httpError(400, 'PropertyUnknown', [`Boot/${key}`], [`#/Boot/${key}`]);
          if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw httpError(400, 'PropertyValueTypeError', [JSON.stringify(value), key], [`#/Boot/${key}`]);
          const order = value as string[];
          if (new Set(order).size !== order.length || order.length !== known.length || order.some((r) => !known.includes(r))) {
            throw httpError(400, 'PropertyValueIncorrect', [key, JSON.stringify(order)], [`#/Boot/${key}`]);
          }
          out.BootOrder = [...order];
          break;
        }
        case 'BootNext':
          if (!s.boot.BootOrder) throw httpError(400, 'PropertyUnknown', [`Boot/${key}`], [`#/Boot/${key}`]);
          if (value !== null && (typeof value !== 'string' || !s.boot.BootOrder.includes(value))) throw httpError(400, 'PropertyValueNotInList', [String(value), key], [`#/Boot/${key}`]);
          out.BootNext = value as string | null;
          break;
        default:
          throw httpError(400, 'PropertyUnknown', [`Boot/${key}`], [`#/Boot/${key}`]);
      }
    }
    if (out.BootSourceOverrideTarget === 'UefiBootNext' && (out.BootNext ?? s.pendingBoot?.BootNext ?? s.boot.BootNext) == null) {
      throw httpError(400, 'PropertyMissing', ['BootNext'], ['#/Boot/BootNext']);
    }
    if (p.requiresEnabled && out.BootSourceOverrideTarget !== undefined && out.BootSourceOverrideEnabled === undefined) {
      throw httpError(400, 'PropertyMissing', ['BootSourceOverrideEnabled'], ['#/Boot/BootSourceOverrideEnabled']);
    }
    if (p.requiresAll) {
      for (const key of ['BootSourceOverrideTarget', 'BootSourceOverrideEnabled', 'BootSourceOverrideMode'] as const) {
        if (out[key] === undefined) throw httpError(400, 'PropertyMissing', [key], [`#/Boot/${key}`]);
      }
    }
    if (p.refusesDuringPost && (s.power === 'PoweringOn' || s.postUntil > this.ctx.now())) {
      throw new RedfishHttpError(400, [vendorMessage('iLO.2.14.UnableToModifyDuringSystemPOST', 'The value for the property cannot be changed while the system is in POST.', 'Warning', 'Retry the operation after the system has finished POST.')]);
    }
    return out;
  }

  private async patchSystem(s: SystemState, body: Json): Promise<EmuResponse> {
    for (const key of Object.keys(body)) {
      if (key === 'Boot') continue;
      if (key === 'AssetTag' || key === 'IndicatorLED' || key === 'LocationIndicatorActive') continue; // writable, not modelled
      if (key in (this.template.objects.get(s.path) ?? {}) || key === 'PowerState') throw httpError(400, 'PropertyNotWritable', [key], [`#/${key}`]);
      throw httpError(400, 'PropertyUnknown', [key], [`#/${key}`]);
    }
    if (!('Boot' in body)) return this.noContent();
    if (this.settingsPath && s.id === this.template.dpuSystemId) {
      // AMI / BlueField: the override lives in the settings object; the System refuses it
      throw httpError(400, 'PropertyNotWritable', ['Boot'], ['#/Boot']);
    }
    const change = this.validateBoot(s, body.Boot);
    this.stats.bootPatches++;
    const apply = () => {
      s.boot = { ...s.boot, ...change };
      this.bump(s.path);
    };
    if (this.faults.asyncActions) return this.startTask('Boot override', async () => apply());
    apply();
    return this.noContent();
  }

  private patchSettings(body: Json): EmuResponse {
    const s = this.dpu;
    for (const key of Object.keys(body)) if (key !== 'Boot') throw httpError(400, 'PropertyUnknown', [key], [`#/${key}`]);
    if (!('Boot' in body)) throw httpError(400, 'NoOperation');
    const change = this.validateBoot(s, body.Boot);
    this.stats.bootPatches++;
    s.pendingBoot = { ...(s.pendingBoot ?? {}), ...change };
    this.bump(this.settingsPath!);
    return this.noContent();
  }

  private async patchSlot(slot: SlotState, body: Json): Promise<EmuResponse> {
    for (const key of Object.keys(body)) {
      if (!['Image', 'Inserted', 'WriteProtected', 'TransferProtocolType', 'TransferMethod', 'UserName', 'Password'].includes(key)) throw httpError(400, 'PropertyUnknown', [key], [`#/${key}`]);
    }
    const ejecting = body.Image === null || body.Inserted === false;
    if (ejecting) {
      this.eject(slot);
      return this.noContent();
    }
    if (typeof body.Image !== 'string') throw httpError(400, 'PropertyMissing', ['Image'], ['#/Image']);
    if (!slot.spec.acceptsUrl) throw httpError(400, 'PropertyNotWritable', ['Image'], ['#/Image']);
    return this.insert(slot, body, 'patch');
  }

  private patchAccount(body: Json): EmuResponse {
    for (const key of Object.keys(body)) if (key !== 'Password') throw httpError(400, 'PropertyNotWritable', [key], [`#/${key}`]);
    const password = body.Password;
    if (typeof password !== 'string') throw httpError(400, 'PropertyValueTypeError', [String(password), 'Password'], ['#/Password']);
    if (password.length < 8) throw httpError(400, 'PropertyValueFormatError', ['[redacted]', 'Password'], ['#/Password']);
    if (sameSecret(password, this.account.password)) throw httpError(400, 'PropertyValueIncorrect', ['Password', '[redacted]'], ['#/Password']);
    this.account.password = password;
    this.account.passwordChangeRequired = false;
    this.bump(this.accountPath);
    this.ctx.log.info({ bmc: this.id }, 'emulated BMC account password changed');
    return this.json(200, { ...this.renderAccount(), '@Message.ExtendedInfo': [baseMessage('Success')] }, {}, this.accountPath);
  }

  // ---------------------------------------------------------------- POST

  private async post(req: EmuRequest): Promise<EmuResponse> {
    const path = req.path;
    const sys = [...this.systems.values()].find((s) => path === `${s.path}/Actions/ComputerSystem.Reset`);
    if (sys) {
      this.checkIfMatch(req, sys.path, true);
      return this.resetAction(sys, req);
    }
    for (const slot of this.slots.values()) {
      if (path === `${slot.path}/Actions/VirtualMedia.InsertMedia` && this.profile.media.insertAction) {
        this.checkIfMatch(req, slot.path, true);
        const body = req.body === undefined ? {} : req.body;
        if (!isObject(body)) throw httpError(400, 'MalformedJSON');
        return this.insertAction(slot, body);
      }
      if (path === `${slot.path}/Actions/VirtualMedia.EjectMedia` && this.profile.media.ejectAction) {
        this.checkIfMatch(req, slot.path, true);
        if (this.profile.media.ejectNeedsBody && req.body === undefined) throw httpError(415, 'UnrecognizedRequestBody');
        if (req.body !== undefined && !isObject(req.body)) throw httpError(400, 'MalformedJSON');
        if (isObject(req.body) && Object.keys(req.body).length) throw httpError(400, 'ActionParameterUnknown', ['EjectMedia', Object.keys(req.body)[0]!]);
        this.eject(slot);
        return this.noContent();
      }
    }
    if (path === `${ROOT}/UpdateService/Actions/UpdateService.SimpleUpdate`) return this.simpleUpdate(req);
    if (path === `${this.managerPath}/Actions/Manager.Reset`) {
      const type = isObject(req.body) ? req.body.ResetType : undefined;
      if (type !== undefined && type !== 'ForceRestart' && type !== 'GracefulRestart') throw httpError(400, 'ActionParameterValueNotInList', [String(type), 'ResetType', 'Manager.Reset']);
      return this.noContent();
    }
    if (this.profile.nvidiaOem && path === `${this.dpuPath}/Oem/Nvidia/Actions/Mode.Set`) {
      const mode = isObject(req.body) ? req.body.Mode : undefined;
      if (mode !== 'DpuMode' && mode !== 'NicMode') throw httpError(400, 'ActionParameterValueNotInList', [String(mode), 'Mode', 'Mode.Set']);
      this.nvidia.mode = mode;
      return this.noContent();
    }
    throw this.render(path) ? this.methodNotAllowed(path) : httpError(404, 'ResourceMissingAtURI', [path]);
  }

  // ---- virtual media

  private async insertAction(slot: SlotState, body: Json): Promise<EmuResponse> {
    const m = this.profile.media;
    const action = 'VirtualMedia.InsertMedia';
    for (const key of Object.keys(body)) if (!KNOWN_INSERT_PARAMS.includes(key)) throw httpError(400, 'ActionParameterUnknown', [action, key], [`#/${key}`]);
    if (typeof body.Image !== 'string') throw httpError(400, 'ActionParameterMissing', [action, 'Image'], ['#/Image']);
    for (const key of m.rejectsParams) if (key in body) throw httpError(400, 'ActionParameterNotSupported', [key, action], [`#/${key}`]);
    if (m.requiresTransferProtocolType && body.TransferProtocolType === undefined) throw httpError(400, 'ActionParameterMissing', [action, 'TransferProtocolType'], ['#/TransferProtocolType']);
    if (m.requiresTransferMethod && body.TransferMethod === undefined) throw httpError(400, 'ActionParameterMissing', [action, 'TransferMethod'], ['#/TransferMethod']);
    if (m.requiresTransferMethod && body.TransferMethod !== m.requiresTransferMethod) throw httpError(400, 'ActionParameterValueNotInList', [String(body.TransferMethod), 'TransferMethod', action], ['#/TransferMethod']);
    if (!slot.spec.acceptsUrl) throw httpError(400, 'ActionParameterNotSupported', ['Image', action], ['#/Image']);
    return this.insert(slot, body, 'action');
  }

  private async insert(slot: SlotState, body: Json, via: 'action' | 'patch'): Promise<EmuResponse> {
    const m = this.profile.media;
    const action = 'VirtualMedia.InsertMedia';
    const image = body.Image as string;
    let url: URL;
    try {
      url = new URL(image);
    } catch {
      throw httpError(400, via === 'action' ? 'ActionParameterValueFormatError' : 'PropertyValueFormatError', via === 'action' ? [image, 'Image', action] : [image, 'Image'], ['#/Image']);
    }
    const scheme = url.protocol.replace(/:$/, '').toLowerCase();
    if (!m.schemes.includes(scheme)) throw httpError(400, 'ActionParameterValueFormatError', [image, 'Image', action], ['#/Image']);
    const tpt = body.TransferProtocolType;
    if (tpt !== undefined && (typeof tpt !== 'string' || !TRANSFER_PROTOCOLS.includes(tpt))) throw httpError(400, 'ActionParameterValueNotInList', [String(tpt), 'TransferProtocolType', action], ['#/TransferProtocolType']);
    if (typeof tpt === 'string' && (tpt === 'HTTP' || tpt === 'HTTPS') && tpt.toLowerCase() !== scheme) throw httpError(400, 'ActionParameterValueFormatError', [image, 'Image', action], ['#/Image', '#/TransferProtocolType']);
    if (m.notReadyOnce && !this.notReadyServed) {
      // iDRAC: "SYS518: iDRAC is not ready" on the first virtual-media operation; a retry works
      this.notReadyServed = true;
      throw new RedfishHttpError(400, [vendorMessage('IDRAC.2.8.SYS518', 'iDRAC is not ready. The configuration values cannot be accessed. Please retry after a few minutes.', 'Critical', 'Wait for a few minutes and retry the operation.')]);
    }
    if (m.ejectLag && slot.lagUntil > this.ctx.now()) throw httpError(500, 'InternalError');
    if (slot.inserted && !m.insertReplaces) throw httpError(409, 'ResourceInUse');
    if (m.staleImageBlocks && slot.image !== null) throw httpError(409, 'ResourceInUse');
    this.stats.inserts++;
    const work = async () => {
      const outcome = await this.mount(image, 'sample');
      if (!outcome.ok) throw this.mountError(image, outcome.reason ?? 'unreachable', outcome.status);
      slot.image = image;
      slot.inserted = this.faults.mediaNeverInserted !== true;
      slot.writeProtected = body.WriteProtected === false ? false : true;
      slot.transferProtocolType = typeof tpt === 'string' ? tpt : scheme.toUpperCase();
      slot.transferMethod = typeof body.TransferMethod === 'string' ? body.TransferMethod : 'Stream';
      slot.lagUntil = 0;
      this.bump(slot.path);
    };
    if (this.faults.asyncActions) return this.startTask('Insert virtual media', work, via === 'action' ? `${slot.path}/Actions/VirtualMedia.InsertMedia` : null);
    await work();
    return this.noContent();
  }

  private async mount(url: string, mode: 'sample' | 'full') {
    const abort = new AbortController();
    this.aborts.add(abort);
    try {
      const outcome = await this.ctx.fetcher.mount(url, mode === 'full' ? 'full' : this.ctx.mediaRead, abort.signal);
      this.ctx.log.debug({ bmc: this.id, url, ok: outcome.ok, reason: outcome.reason, requests: outcome.requests, bytes: outcome.bytesRead }, 'emulated BMC fetched media');
      if (outcome.ok) this.stats.mounted.push(url);
      return outcome;
    } finally {
      this.aborts.delete(abort);
    }
  }

  private mountError(url: string, reason: string, status?: number): RedfishHttpError {
    if (status === 401 || status === 403) return httpError(400, 'ResourceAtUriUnauthorized', [url, String(status)], ['#/Image']);
    if (reason === 'no-ranges') return httpError(400, 'SourceDoesNotSupportProtocol', [url, 'HTTP Range'], ['#/Image']);
    return new RedfishHttpError(400, [{ ...baseMessage('CouldNotEstablishConnection', [url], ['#/Image']), Resolution: `The image could not be read (${reason}${status ? ` ${status}` : ''}). Ensure that the URI is reachable from the BMC and resubmit the request.` }]);
  }

  private eject(slot: SlotState): void {
    this.stats.ejects++;
    const wasInserted = slot.inserted || slot.image !== null;
    slot.image = null;
    slot.inserted = false;
    slot.transferProtocolType = slot.spec.transferProtocolType ?? null;
    slot.transferMethod = null;
    // iDRAC: the slot keeps showing Inserted for a moment after the eject is accepted
    slot.lagUntil = this.profile.media.ejectLag && wasInserted ? this.ctx.now() + this.ctx.timing.ejectLagMs : 0;
    this.bump(slot.path);
  }

  // ---- power

  private async resetAction(s: SystemState, req: EmuRequest): Promise<EmuResponse> {
    const body = req.body === undefined ? {} : req.body;
    if (!isObject(body)) throw httpError(400, 'MalformedJSON');
    const action = 'ComputerSystem.Reset';
    for (const key of Object.keys(body)) if (key !== 'ResetType') throw httpError(400, 'ActionParameterUnknown', [action, key], [`#/${key}`]);
    const type = body.ResetType;
    if (type === undefined) throw httpError(400, 'ActionParameterMissing', [action, 'ResetType'], ['#/ResetType']);
    if (typeof type !== 'string' || !(this.profile.reset.types as string[]).includes(type)) throw httpError(400, 'ActionParameterValueNotInList', [String(type), 'ResetType', action], ['#/ResetType']);
    const on = s.power === 'On' || s.power === 'PoweringOn';
    const now = this.ctx.now();
    if ((type === 'On' || type === 'ForceOn') && on) {
      if (this.profile.reset.onWhileOn === '409') throw httpError(409, 'ResourceInUse');
      return this.noContent();
    }
    if ((type === 'On' || type === 'ForceOn') && this.profile.reset.conflictAfterOff && now - s.offAt < this.ctx.timing.offSettleMs) throw httpError(409, 'ResourceInUse');
    this.stats.resets++;
    const apply = () => {
      s.lastResetMs = Math.max(this.ctx.now(), s.lastResetMs + 1);
      // a @Redfish.Settings object's pending boot override is applied at reset (future state)
      if (s.pendingBoot) {
        s.boot = { ...s.boot, ...s.pendingBoot };
        s.pendingBoot = undefined;
        if (this.settingsPath) this.bump(this.settingsPath);
      }
      switch (type) {
        case 'On':
        case 'ForceOn':
          this.powerOn(s);
          break;
        case 'ForceOff':
        case 'GracefulShutdown':
          if (on) this.powerOff(s);
          break;
        case 'PushPowerButton':
          if (on) this.powerOff(s);
          else this.powerOn(s);
          break;
        case 'ForceRestart':
        case 'GracefulRestart':
        case 'PowerCycle':
          if (on) this.restart(s);
          else this.powerOn(s);
          break;
        case 'Nmi':
          break;
      }
    };
    if (this.faults.asyncActions) return this.startTask('System reset', async () => apply(), `${s.path}/Actions/ComputerSystem.Reset`);
    apply();
    return this.noContent();
  }

  private schedule(s: SystemState, ms: number, fn: () => void): void {
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    if (ms <= 0) {
      fn();
      return;
    }
    s.timer = setTimeout(() => {
      s.timer = undefined;
      if (!this.closed) fn();
    }, ms);
    s.timer.unref();
  }

  private powerOn(s: SystemState): void {
    s.goal = 'On';
    s.power = 'PoweringOn';
    s.bootProgress = 'PrimaryProcessorInitializationStarted';
    this.bump(s.path);
    this.schedule(s, this.ctx.timing.powerOnMs, () => this.poweredOn(s));
  }

  private powerOff(s: SystemState): void {
    s.goal = 'Off';
    s.power = 'PoweringOff';
    this.bump(s.path);
    this.schedule(s, this.ctx.timing.powerOffMs, () => this.poweredOff(s));
  }

  private restart(s: SystemState): void {
    s.goal = 'Restart';
    s.power = 'PoweringOff';
    this.bump(s.path);
    this.schedule(s, this.ctx.timing.powerOffMs, () => {
      this.poweredOff(s, false);
      this.powerOn(s);
    });
  }

  private poweredOff(s: SystemState, final = true): void {
    s.power = 'Off';
    s.offAt = this.ctx.now();
    s.bootProgress = 'None';
    if (final) s.goal = 'Off';
    this.bump(s.path);
    const event: PowerEvent = { bmcId: this.id, systemId: s.id, state: 'Off', at: new Date(this.ctx.now()) };
    this.ctx.events.emit('power', event);
  }

  private poweredOn(s: SystemState): void {
    s.power = 'On';
    s.goal = 'On';
    s.postUntil = this.ctx.now() + this.ctx.timing.postMs;
    const booting = this.bootDecision(s);
    s.bootProgress = 'OSBootStarted';
    this.bump(s.path);
    const power: PowerEvent = { bmcId: this.id, systemId: s.id, state: 'On', at: new Date(this.ctx.now()) };
    this.ctx.events.emit('power', power);
    this.ctx.events.emit('booting', booting);
  }

  /** What the firmware boots: a pushed BFB, else the override (consumed when Once), else media, else disk. */
  private bootDecision(s: SystemState): BootingEvent {
    const serial = s.id === this.template.dpuSystemId ? this.identity.serial : ((this.template.objects.get(s.path)?.SerialNumber as string | undefined) ?? null);
    const event = (via: BootingEvent['via'], imageUrl: string | null, target: string | null, option?: BootOptionSpec): BootingEvent => ({
      bmcId: this.id, systemId: s.id, serial, via, imageUrl, target, at: new Date(this.ctx.now()),
      ...(option ? { bootOption: { reference: option.reference, name: option.displayName } } : {}),
    });
    const optionOf = (ref: string | null | undefined) => (ref ? this.profile.boot.options?.find((o) => o.reference === ref) : undefined);
    // a network option boots whatever DHCP names (no URL of its own)
    const byOption = (o: BootOptionSpec, target: string | null) => event(o.boots, null, target, o);
    if (s.bfbPending) {
      const url = s.bfbPending;
      s.bfbPending = null;
      return event('bfb', url, null);
    }
    const media = s.id === this.template.dpuSystemId || this.profile.media.on === 'manager' ? [...this.slots.values()].find((x) => x.inserted && x.image && x.spec.mediaTypes.some((t) => CD_TYPES.includes(t))) : undefined;
    const ov = s.boot;
    let result: BootingEvent;
    if (ov.BootSourceOverrideEnabled !== 'Disabled' && ov.BootSourceOverrideTarget !== 'None') {
      const target = ov.BootSourceOverrideTarget;
      if ((target === 'Cd' || target === 'UsbCd') && media) result = event('virtual-media', media.image, target);
      else if (target === 'UefiHttp') result = event('uefi-http', ov.HttpBootUri, target);
      else if (target === 'Pxe') result = event('pxe', null, target);
      else if (target === 'UefiBootNext' && optionOf(ov.BootNext)) result = byOption(optionOf(ov.BootNext)!, target);
      else result = event('disk', null, target);
      // UEFI deletes BootNext once it has booted it
      if (target === 'UefiBootNext') s.boot = { ...s.boot, BootNext: null };
      if (ov.BootSourceOverrideEnabled === 'Once') s.boot = { ...s.boot, BootSourceOverrideEnabled: 'Disabled' };
    } else if (media) {
      result = event('virtual-media', media.image, null);
    } else if (optionOf(ov.BootOrder?.[0])) {
      result = byOption(optionOf(ov.BootOrder![0])!, null);
    } else {
      result = event('disk', null, null);
    }
    return result;
  }

  // ---- update service and tasks

  private async simpleUpdate(req: EmuRequest): Promise<EmuResponse> {
    const action = 'UpdateService.SimpleUpdate';
    const body = req.body;
    if (!isObject(body)) throw httpError(400, 'ActionParameterMissing', [action, 'ImageURI'], ['#/ImageURI']);
    for (const key of Object.keys(body)) {
      if (!['ImageURI', 'TransferProtocol', 'Targets', 'Username', 'Password', 'ForceUpdate', '@Redfish.OperationApplyTime'].includes(key)) throw httpError(400, 'ActionParameterUnknown', [action, key], [`#/${key}`]);
    }
    if (typeof body.ImageURI !== 'string' || body.ImageURI === '') throw httpError(400, 'ActionParameterMissing', [action, 'ImageURI'], ['#/ImageURI']);
    const protocol = body.TransferProtocol;
    if (protocol !== undefined && (typeof protocol !== 'string' || !['HTTP', 'HTTPS', 'SCP'].includes(protocol))) throw httpError(400, 'ActionParameterValueNotInList', [String(protocol), 'TransferProtocol', action], ['#/TransferProtocol']);
    if (protocol === 'SCP') throw httpError(400, 'ActionParameterNotSupported', ['TransferProtocol', action], ['#/TransferProtocol']);
    // BlueField docs give ImageURI without a scheme when TransferProtocol says it ("host/path.bfb")
    const url = /^[a-z]+:\/\//i.test(body.ImageURI) ? body.ImageURI : `${String(protocol ?? 'HTTP').toLowerCase()}://${body.ImageURI}`;
    if (!/^https?:\/\//i.test(url)) throw httpError(400, 'ActionParameterValueFormatError', [body.ImageURI, 'ImageURI', action], ['#/ImageURI']);
    const targets = body.Targets;
    if (targets !== undefined && (!Array.isArray(targets) || targets.some((t) => typeof t !== 'string'))) throw httpError(400, 'ActionParameterValueTypeError', [JSON.stringify(targets), 'Targets', action], ['#/Targets']);
    const toDpuOs = this.profile.simpleUpdateBfb && (targets === undefined || (targets as string[]).some((t) => /DPU_OS$/.test(t)));
    return this.startTask(toDpuOs ? 'BFB install' : 'Firmware update', async () => {
      if (toDpuOs && !this.nvidia.rshimEnabled) {
        // the BMC pushes a BFB over its RShim; with RShim owned by the host the push cannot start
        // (emulator's message id; real firmware words it differently)
        throw new RedfishHttpError(400, [vendorMessage('NvidiaUpdate.1.0.RShimDisabled', 'BMC RShim is not enabled; enable it before pushing a BFB.', 'Critical', 'PATCH Managers/Bluefield_BMC/Oem/Nvidia {"BmcRShim":{"BmcRShimEnabled":true}} and retry.')]);
      }
      const outcome = await this.mount(url, 'full');
      if (!outcome.ok) throw this.mountError(url, outcome.reason ?? 'unreachable', outcome.status);
      if (toDpuOs) {
        const s = this.dpu;
        s.bfbPending = url;
        if (s.power === 'On' || s.power === 'PoweringOn') this.restart(s);
        else this.powerOn(s);
      }
    });
  }

  /** 202 Accepted + Location of a task monitor + Retry-After (DSP0266 §12.2 "Asynchronous operations"). */
  private startTask(name: string, work: () => Promise<void>, targetUri: string | null = null): EmuResponse {
    const id = String(++this.taskSeq);
    const now = this.ctx.now();
    const task: Task = { id, name, state: 'Running', percent: 0, messages: [baseMessage('TaskStarted', [id])], startedAt: now, endedAt: null, doneAt: now + this.ctx.timing.taskMs, targetUri };
    this.tasks.set(id, task);
    const finish = (err?: unknown) => {
      task.endedAt = this.ctx.now();
      task.percent = 100;
      if (err) {
        task.state = 'Exception';
        task.messages.push(...(err instanceof RedfishHttpError ? err.infos : [baseMessage('InternalError')]), baseMessage('TaskAborted', [id]));
      } else {
        task.state = 'Completed';
        task.messages.push(baseMessage('TaskCompletedOK', [id]));
      }
    };
    const started = this.ctx.now();
    void work().then(
      () => this.after(this.ctx.timing.taskMs - (this.ctx.now() - started), () => finish()),
      (err: unknown) => this.after(this.ctx.timing.taskMs - (this.ctx.now() - started), () => finish(err)),
    );
    const monitor = `${ROOT}/TaskService/Tasks/${id}/Monitor`;
    return this.json(202, this.renderTask(task), { location: monitor, 'retry-after': String(Math.ceil(this.ctx.timing.taskMs / 1000)) });
  }

  private after(ms: number, fn: () => void): void {
    if (ms <= 0 || this.closed) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** GET of a task monitor: 202 while running, then the final status with the task. */
  monitor(taskId: string): EmuResponse | undefined {
    const task = this.tasks.get(taskId);
    if (!task) return undefined;
    const body = this.renderTask(task);
    if (task.state === 'Running') {
      const left = Math.max(0, task.doneAt - this.ctx.now());
      return this.json(202, body, { location: `${ROOT}/TaskService/Tasks/${taskId}/Monitor`, 'retry-after': String(Math.ceil(left / 1000)) });
    }
    return this.json(200, body);
  }

  // ---------------------------------------------------------------- DELETE

  private delete(req: EmuRequest): EmuResponse {
    const id = /^\/redfish\/v1\/SessionService\/Sessions\/([^/]+)$/.exec(req.path)?.[1];
    if (id) {
      const s = [...this.sessions.values()].find((x) => x.id === id);
      if (!s) throw httpError(404, 'ResourceMissingAtURI', [req.path]);
      this.sessions.delete(s.token);
      this.stats.logouts++;
      this.stats.openSessions = this.sessions.size;
      return this.noContent();
    }
    throw this.render(req.path) ? this.methodNotAllowed(req.path) : httpError(404, 'ResourceMissingAtURI', [req.path]);
  }

  // ---------------------------------------------------------------- responses

  private methodNotAllowed(path: string, allow?: string): RedfishHttpError {
    const a = allow ?? this.render(path)?.allow ?? 'GET';
    return new RedfishHttpError(405, [baseMessage('OperationNotAllowed')], { allow: a });
  }

  private noContent(): EmuResponse {
    return { status: 204, headers: {} };
  }

  private json(status: number, body: Json | string, headers: Record<string, string> = {}, etagPath?: string): EmuResponse {
    let text = typeof body === 'string' ? body : JSON.stringify(etagPath ? { ...body, '@odata.etag': this.etagOf(etagPath) } : body);
    text = this.personalize(text);
    if (this.profile.trailingSlash) text = text.replace(/("@odata\.id":\s*"\/redfish\/v1[^"]*?)(\/?)"/g, (_m, p: string) => `${p}/"`);
    const h: Record<string, string> = { ...headers };
    if (etagPath) h.etag = this.etagOf(etagPath);
    return { status, text, headers: h };
  }

  private errorResponse(err: unknown): EmuResponse {
    if (err instanceof RedfishHttpError) {
      return { status: err.status, text: this.personalize(JSON.stringify(errorBody(err.infos))), headers: { ...err.headers } };
    }
    this.ctx.log.error({ err, bmc: this.id }, 'emulated BMC handler failed');
    return { status: 500, text: JSON.stringify(errorBody([baseMessage('InternalError')])), headers: {} };
  }
}
