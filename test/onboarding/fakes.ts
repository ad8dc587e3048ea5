// Unit-test doubles for the conductor: a clock the test moves, and an in-memory BMC lab behind
// the BmcSession port. Only for unit tests of scheduling, timeouts and resume; the end-to-end
// tests drive the real Redfish client against the emulator.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { ZtpError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { Conductor, type BmcConnector, type ConductorClock, type OnboardingSettings } from '../../src/onboarding/conductor.js';
import type { BmcSession, BootTarget, Inventory, PowerState, ResetKind, StepOutcome } from '../../src/redfish/api.js';

export class FakeClock implements ConductorClock {
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  constructor(public t = Date.parse('2026-12-02T08:00:00Z')) {}
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  pending(): number {
    return this.timers.size;
  }
  /** Moves time forward, firing due timers in order and letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

export async function settle(rounds = 12): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

interface SystemState {
  power: PowerState;
  media: string | null;
  override: BootTarget | null;
  httpBootUri: string | null;
}

export interface Call {
  bmc: string;
  system: string;
  op: string;
  arg?: string;
}

type Gate = { when: (c: Call) => boolean; action: 'hang' | 'hang-after' | 'fail'; error?: ZtpError; once?: boolean };

/** Every BMC the test talks to, keyed by URL; systems keyed by systemId ('' = the only one). */
export class FakeBmcLab {
  readonly systems = new Map<string, SystemState>();
  readonly calls: Call[] = [];
  inserts = 0;
  private active = new Map<string, number>();
  maxActivePerBmc = 0;
  gates: Gate[] = [];
  inventory: Partial<Inventory> = {};
  opened = 0;
  closed = 0;

  system(bmc: string, id = ''): SystemState {
    const key = `${bmc}#${id}`;
    let s = this.systems.get(key);
    if (!s) {
      s = { power: 'Off', media: null, override: null, httpBootUri: null };
      this.systems.set(key, s);
    }
    return s;
  }

  ops(filter: Partial<Call> = {}): string[] {
    return this.calls.filter((c) => Object.entries(filter).every(([k, v]) => c[k as keyof Call] === v)).map((c) => c.op + (c.arg ? `:${c.arg}` : ''));
  }

  readonly connect: BmcConnector = async (endpoint, options) => this.open(endpoint, options);

  private async open(...[endpoint, options]: Parameters<BmcConnector>): Promise<BmcSession> {
    this.opened++;
    const bmc = endpoint.url;
    const systemId = endpoint.systemId ?? '';
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the session's closures report to the lab
    const lab = this;
    const onStep = options.onStep;
    const run = async <T>(op: string, signal: AbortSignal | undefined, body: (s: SystemState) => T, arg?: string): Promise<T> => {
      const call: Call = { bmc, system: systemId, op, ...(arg ? { arg } : {}) };
      lab.calls.push(call);
      const n = (lab.active.get(bmc) ?? 0) + 1;
      lab.active.set(bmc, n);
      lab.maxActivePerBmc = Math.max(lab.maxActivePerBmc, n);
      const started = Date.now();
      try {
        await Promise.resolve();
        const gate = lab.gates.find((g) => g.when(call));
        if (gate?.once) lab.gates.splice(lab.gates.indexOf(gate), 1);
        if (gate?.action === 'fail') {
          onStep?.({ step: op, outcome: 'failed', ...(gate.error?.details?.messageId ? { messageId: String(gate.error.details.messageId) } : {}), durationMs: 1 });
          throw gate.error!;
        }
        let result: T | undefined;
        if (gate?.action === 'hang-after') result = body(lab.system(bmc, systemId));
        if (gate) await hang(signal);
        result ??= body(lab.system(bmc, systemId));
        const step: StepOutcome = { step: op, outcome: 'ok', durationMs: Date.now() - started };
        onStep?.(step);
        return result;
      } finally {
        lab.active.set(bmc, (lab.active.get(bmc) ?? 1) - 1);
      }
    };
    const session: BmcSession = {
      inventory: (o) =>
        run('inventory', o?.signal, (s) => ({
          vendor: 'Fake', model: 'DPU', serial: null, systemId: systemId || '1', systemType: 'DPU', powerState: s.power, macs: [], ports: [], firmware: [],
          bootProgress: null, operationMode: null, allowedBootTargets: ['Cd', 'UefiHttp', 'Pxe'], allowedResetTypes: ['On', 'ForceOff', 'ForceRestart'],
          virtualMedia: [{ id: 'CD1', mediaTypes: ['CD', 'DVD'], inserted: s.media !== null, image: s.media, via: 'action' as const }],
          ...lab.inventory,
        })),
      insertMedia: (url, o) =>
        run('insert', o?.signal, (s) => {
          if (s.media === url) return { outcome: 'already-inserted' as const, slot: 'CD1' };
          s.media = url;
          lab.inserts++;
          return { outcome: 'inserted' as const, slot: 'CD1' };
        }, url),
      ejectMedia: (o) => run('eject', o?.signal, (s) => void (s.media = null)),
      setOneTimeBoot: (target, o) =>
        run('boot-override', o?.signal, (s) => {
          s.override = target;
          s.httpBootUri = o?.httpBootUri ?? null;
        }, target),
      reset: (kind: ResetKind, o) =>
        run('reset', o?.signal, (s) => {
          if (kind === 'On' && s.power === 'On') return { outcome: 'already-on' as const, resetType: kind };
          s.power = kind === 'ForceOff' ? 'Off' : 'On';
          return { outcome: 'reset' as const, resetType: kind };
        }, kind),
      powerState: (o) => run('power-state', o?.signal, (s) => s.power),
      waitForPower: (state, o) =>
        run('wait-power', o?.signal, (s) => {
          if (s.power !== state) throw new ZtpError('REDFISH_TIMEOUT', `power stayed ${s.power}`);
        }),
      bootFromIso: () => Promise.reject(new Error('not used by the conductor')),
      bootFromHttp: () => Promise.reject(new Error('not used by the conductor')),
      installBfb: () => Promise.reject(new Error('not used by the conductor')),
      clearBoot: (o) =>
        run('clear-boot', o?.signal, (s) => {
          s.media = null;
          s.override = null;
          s.httpBootUri = null;
        }),
      close: async () => {
        lab.closed++;
      },
    };
    return session;
  }
}

function hang(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (signal?.aborted) reject(signal.reason);
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

export interface Env {
  dir: string;
  file: string;
  db: Db;
  store: DeviceStore;
  clock: FakeClock;
  lab: FakeBmcLab;
  settings: OnboardingSettings;
  conductor: Conductor;
  /** a second process on the same database file (restart after kill -9) */
  restart(): Env;
}

export function setup(overrides: Record<string, unknown> = {}, shared?: { dir: string; clock: FakeClock; lab: FakeBmcLab }): Env {
  const dir = shared?.dir ?? mkdtempSync(join(tmpdir(), 'ztp-conductor-'));
  const file = join(dir, 'ztp.db');
  const db = openDatabase({ file });
  const clock = shared?.clock ?? new FakeClock();
  const lab = shared?.lab ?? new FakeBmcLab();
  const store = new DeviceStore(db, { now: () => new Date(clock.now()) });
  const settings = validateConfig({ onboarding: overrides }).onboarding;
  const conductor = new Conductor({
    store,
    db,
    log: silentLogger,
    settings,
    connect: lab.connect,
    clock,
    imageUrlFor: (d, view) => (d.bootImage ? `https://img.lab/${view}/by-mac/${d.macs[0] ?? 'none'}/${d.bootImage}` : undefined),
    imageIdentity: (d) => ({ bootImage: d.bootImage, sha256: null }),
  });
  const env: Env = { dir, file, db, store, clock, lab, settings, conductor, restart: () => setup(overrides, { dir, clock, lab }) };
  return env;
}

export function addDevice(env: Env, serial: string, fields: Record<string, unknown> = {}): void {
  env.store.upsert({ serial, macs: [], bootImage: 'os.iso', ...fields });
}

export function withBmc(address: string, systemId?: string): Record<string, unknown> {
  return { bmc: { address, username: 'root', password: 'calvin', ...(systemId ? { systemId } : {}) } };
}
