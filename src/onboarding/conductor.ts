// The onboarding conductor: drives each device's job through its BMC steps, then follows the
// device through the one history (DHCP leases, image downloads, sZTP requests and progress)
// until bootstrap-complete, cleans up, and times out any step that takes too long.
//
// - Persisted: every job lives in onboarding_jobs (jobs.ts); a restart (or kill -9) resumes each
//   job at its step. A BMC step is marked "started" before its call, and on resume it is
//   reconciled, not repeated: InsertMedia of the same image answers 'already-inserted', and a
//   power-on that may have been sent is never followed by a second power cycle.
// - Signals are read from the history (store 'event' listener, then the device's events after
//   the job's cursor), so an event committed just before a crash is still seen after restart.
// - Bounded: a global concurrency limit (and one per batch), BMC work serialised per BMC, and a
//   DPU whose parent host has a job waits until the host is powered (host first). The conductor
//   never powers anything off.
// - Timeouts use an injected clock, so tests move time instead of waiting.
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { Device } from '../devices/model.js';
import type { DeviceStore, HistoryEvent } from '../devices/store.js';
import { errorMessage, isZtpError, ZtpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BmcEndpoint, BmcSession, BootTarget, Inventory, ResetKind, StepOutcome } from '../redfish/api.js';
import { endpointFromDevice } from '../redfish/index.js';
import {
  applySignal,
  BMC_STEPS,
  firstStep,
  nextBmcStep,
  stepDeadline,
  stepTimeoutMs,
  TERMINAL,
  timeoutReason,
  WAITING_STEPS,
  stepIndex,
  type BootPath,
  type ImageIdentity,
  type Job,
  type JobPatch,
  type Step,
  type StepTimeouts,
  type TimeoutKey,
} from './job.js';
import { JobStore, type TransitionNote } from './jobs.js';
import { OnboardingObserver } from './observer.js';
import type { Observability } from '../observability.js';

export type OnboardingSettings = Config['onboarding'];

/** Time and timers, injectable so tests move the clock. */
export interface ConductorClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

// Node timers overflow above 2^31-1 ms; a longer step is re-armed when the timer fires.
const MAX_TIMER_MS = 2_147_000_000;

export const systemConductorClock: ConductorClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * The BMC port (src/redfish/api.ts): opens one logged-in session. `onPasswordChange` receives the
 * password a factory-fresh BMC is being given (and the old one back if the change did not take);
 * the conductor keeps it sealed in the device record before the client logs in again.
 */
export type BmcConnector = (
  endpoint: BmcEndpoint,
  options: { log: Logger; signal?: AbortSignal; onStep?: (step: StepOutcome) => void; onPasswordChange?: (password: string) => void | Promise<void> },
) => Promise<BmcSession>;

export interface ConductorDeps {
  store: DeviceStore;
  db: Db;
  log: Logger;
  settings: OnboardingSettings;
  connect: BmcConnector;
  clock?: ConductorClock;
  /** URL of the device's boot image for the BMC (virtual media) or the device (UEFI HTTP), per device */
  imageUrlFor(device: Device, view: 'bmc' | 'device'): string | undefined;
  /** what the device's image is (to attribute downloads to it) */
  imageIdentity(device: Device): ImageIdentity;
  /** step-duration metrics and job/step spans (absent: none) */
  observability?: Observability;
}

export interface OnboardOptions {
  /** onboard at most this many of this batch at once (the global limit applies too) */
  concurrency?: number;
  /** start again even when the last attempt completed */
  restart?: boolean;
  actor?: string;
}

export interface OnboardResult {
  serial: string;
  outcome: 'queued' | 'unchanged' | 'refused';
  reason?: string;
  job?: Job;
}

interface Runtime {
  timer?: unknown;
  /** aborts the BMC call in flight (timeout, abort, shutdown) */
  controller?: AbortController;
  session?: BmcSession;
  inventory?: Inventory;
  lastMessageId?: string;
  bmcRunning?: boolean;
}

const RESTARTS: ResetKind[] = ['ForceRestart', 'GracefulRestart', 'PowerCycle'];

export class Conductor {
  readonly jobs: JobStore;
  private readonly clock: ConductorClock;
  private readonly log: Logger;
  private readonly cache = new Map<string, Job>();
  private readonly runtime = new Map<string, Runtime>();
  private readonly bmcLocks = new Map<string, Promise<void>>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly dirty = new Set<string>();
  private flushScheduled = false;
  private started = false;
  private stopping = false;
  private readonly onEvent = (e: HistoryEvent) => this.noticeEvent(e);
  private readonly observer: OnboardingObserver;

  constructor(private readonly deps: ConductorDeps) {
    this.jobs = new JobStore(deps.db, deps.store);
    this.clock = deps.clock ?? systemConductorClock;
    this.log = deps.log.child({ service: 'onboarding' });
    this.observer = new OnboardingObserver(deps.observability);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Loads every job and resumes the unfinished ones at their step. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    for (const job of this.jobs.all()) this.cache.set(job.serial, job);
    this.deps.store.events.on('event', this.onEvent);
    let resumed = 0;
    for (const job of this.cache.values()) {
      if (job.status !== 'running') continue;
      resumed++;
      this.observer.changed(undefined, job, this.clock.now());
      this.log.info({ serial: job.serial, step: job.step, phase: job.phase, attempt: job.attempt }, 'onboarding: resuming job');
      this.advance(job.serial);
    }
    // Signals that arrived while we were down (or between a commit and a crash).
    for (const job of this.cache.values()) if (job.status === 'failed' || job.status === 'timed-out') this.markDirty(job.serial);
    this.pump();
    this.log.info({ jobs: this.cache.size, resumed }, 'onboarding conductor started');
  }

  /** Stops timers and BMC calls without changing any job: the next start resumes them. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.stopping = true;
    this.deps.store.events.off('event', this.onEvent);
    for (const rt of this.runtime.values()) {
      if (rt.timer !== undefined) this.clock.clearTimeout(rt.timer);
      rt.timer = undefined;
      rt.controller?.abort(new ZtpError('ONBOARDING_DISABLED', 'conductor stopping'));
    }
    await Promise.allSettled([...this.inflight]);
    await Promise.allSettled([...this.runtime.values()].map((rt) => this.closeSession(rt)));
    this.runtime.clear();
    this.cache.clear();
    this.observer.close();
    this.started = false;
  }

  /** Resolves when no BMC step is in flight (tests). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0 || this.flushScheduled) {
      await Promise.allSettled([...this.inflight]);
      await new Promise((r) => setImmediate(r));
    }
  }

  // ---- operations --------------------------------------------------------------------------

  job(serial: string): Job | undefined {
    return this.cache.get(serial) ?? this.jobs.get(serial);
  }

  list(): Job[] {
    return [...this.cache.values()].sort((a, b) => a.serial.localeCompare(b.serial));
  }

  /**
   * Starts onboarding. Idempotent: a queued or running job is left alone, a completed one too
   * unless `restart`; a failed, timed-out or aborted one starts a new attempt. Unknown serials
   * refuse the whole request (nothing is started); devices that cannot be onboarded are refused
   * one by one with the reason.
   */
  onboard(serials: string[], options: OnboardOptions = {}): OnboardResult[] {
    this.requireStarted();
    const devices = serials.map((s) => this.deps.store.require(s));
    const now = this.clock.now();
    const batch = `b${now.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const results: OnboardResult[] = [];
    this.deps.store.transaction(() => {
      for (const device of devices) {
        const previous = this.cache.get(device.serial);
        if (previous && (previous.status === 'queued' || previous.status === 'running')) {
          results.push({ serial: device.serial, outcome: 'unchanged', reason: `already ${previous.status} at ${previous.step}`, job: previous });
          continue;
        }
        if (previous?.status === 'complete' && !options.restart) {
          results.push({ serial: device.serial, outcome: 'unchanged', reason: 'already complete', job: previous });
          continue;
        }
        const refusal = this.refusal(device);
        if (refusal) {
          results.push({ serial: device.serial, outcome: 'refused', reason: refusal });
          continue;
        }
        const job = this.newAttempt(device, previous, firstStep(device.bmc !== null), now, batch, options.concurrency ?? null);
        const { job: stored } = this.jobs.create(job, previous, { newAttempt: true, ...(options.actor ? { actor: options.actor } : {}) });
        this.cache.set(device.serial, stored);
        results.push({ serial: device.serial, outcome: 'queued', job: stored });
      }
    });
    for (const r of results) if (r.outcome === 'queued') this.log.info({ serial: r.serial, step: r.job?.step, batch }, 'onboarding queued');
    this.pump();
    return results.map((r) => (r.job ? { ...r, job: this.cache.get(r.serial) ?? r.job } : r));
  }

  /** Retries a failed, timed-out or aborted job from the step it stopped at, or from the start. */
  retry(serial: string, from: 'step' | 'start' = 'step', actor?: string): Job {
    this.requireStarted();
    const device = this.deps.store.require(serial);
    const previous = this.requireJob(serial);
    if (!TERMINAL.has(previous.status) || previous.status === 'complete') {
      throw new ZtpError('ONBOARDING_CONFLICT', `${serial}: the job is ${previous.status} at ${previous.step}; only a failed, timed-out or aborted job can be retried`, { details: { serial, status: previous.status } });
    }
    const refusal = this.refusal(device);
    if (refusal) throw new ZtpError('ONBOARDING_INVALID', `${serial}: ${refusal}`, { details: { serial } });
    const hasBmc = device.bmc !== null;
    let step: Step = from === 'start' ? firstStep(hasBmc) : (previous.failedStep ?? previous.step);
    // A BMC step needs the boot path chosen at bmc-check; a device that lost its BMC waits for itself.
    if (!hasBmc && BMC_STEPS.has(step) && step !== 'cleanup') step = 'booting';
    if (from === 'step' && BMC_STEPS.has(step) && step !== 'bmc-check' && step !== 'cleanup' && !previous.path) step = 'bmc-check';
    const now = this.clock.now();
    const job = this.newAttempt(device, previous, step, now, previous.batch, previous.batchConcurrency);
    if (from === 'step') {
      job.path = previous.path;
      job.imageUrl = previous.imageUrl;
      job.imageFetched = previous.imageFetched;
      job.dhcpSeen = previous.dhcpSeen;
      // A power-on the failed attempt may have sent is reconciled, not repeated (as on resume):
      // retry from the start to have the device reset again.
      if (step === previous.step && previous.phase === 'started' && step === 'power-on') job.phase = 'started';
    }
    const { job: stored } = this.jobs.create(job, previous, { newAttempt: true, note: `retry from ${from === 'start' ? 'the start' : step}`, ...(actor ? { actor } : {}) });
    this.cache.set(serial, stored);
    this.log.info({ serial, step, from, attempt: stored.attempt }, 'onboarding retry queued');
    this.pump();
    return this.cache.get(serial)!;
  }

  /** Stops conducting a queued or running job (the BMC call in flight is aborted). Media stays as it is. */
  abort(serial: string, actor?: string): Job {
    this.requireStarted();
    const job = this.requireJob(serial);
    if (job.status === 'aborted') return job;
    if (TERMINAL.has(job.status)) {
      throw new ZtpError('ONBOARDING_CONFLICT', `${serial}: the job is already ${job.status}`, { details: { serial, status: job.status } });
    }
    const updated = this.transition(job, { status: 'aborted', failedStep: job.step, reason: `aborted${actor ? ` by ${actor}` : ''} at ${job.step}` }, actor ? { actor } : {});
    this.finishRuntime(serial);
    this.pump();
    return updated;
  }

  // ---- scheduling --------------------------------------------------------------------------

  private newAttempt(device: Device, previous: Job | undefined, step: Step, now: number, batch: string | null, batchConcurrency: number | null): Job {
    return {
      serial: device.serial,
      attempt: (previous?.attempt ?? 0) + 1,
      status: 'queued',
      step,
      phase: 'pending',
      path: device.bmc ? null : 'none',
      stepStartedAt: now,
      startedAt: now,
      finishedAt: null,
      reason: null,
      failedStep: null,
      messageId: null,
      timedOutAfterMs: null,
      imageUrl: null,
      imageFetched: false,
      dhcpSeen: false,
      progressCount: 0,
      lastProgress: null,
      lastSignalAt: null,
      lastError: null,
      cursor: this.jobs.maxEventId(device.serial),
      batch,
      batchConcurrency,
      parentHost: device.parentHost,
      updatedAt: now,
    };
  }

  /** Why this device cannot be onboarded (null: it can). */
  private refusal(device: Device): string | null {
    if (!device.bmc) return null;
    // A factory password alone is enough: the session changes it to a generated one and keeps that.
    if (!device.bmc.username || !(device.bmc.password || device.bmc.factoryPassword || device.bmc.passwordUnreadable)) return 'the BMC has no credentials (--bmc-user and --bmc-password or --bmc-factory-password)';
    if (device.bmc.passwordUnreadable) return 'the BMC password does not open with this data directory\'s key (set it again with ztp device add --bmc-password)';
    if (!device.bootImage) return 'the device has a BMC but no boot image to boot (--boot-image)';
    if (!this.deps.imageUrlFor(device, 'bmc')) return `boot image "${device.bootImage}" is not in the catalogue (ztp image add)`;
    return null;
  }

  /** Starts queued jobs while the limits allow, oldest first; a DPU waits for its parent host. */
  private pump(): void {
    if (!this.started || this.stopping) return;
    let running = 0;
    const perBatch = new Map<string, number>();
    for (const j of this.cache.values()) {
      if (j.status !== 'running') continue;
      running++;
      if (j.batch) perBatch.set(j.batch, (perBatch.get(j.batch) ?? 0) + 1);
    }
    if (running >= this.deps.settings.concurrency) return;
    const queued = [...this.cache.values()].filter((j) => j.status === 'queued').sort((a, b) => a.startedAt - b.startedAt || a.serial.localeCompare(b.serial));
    for (const job of queued) {
      if (running >= this.deps.settings.concurrency) break;
      if (job.batch && job.batchConcurrency !== null && (perBatch.get(job.batch) ?? 0) >= job.batchConcurrency) continue;
      if (!this.hostReady(job)) continue;
      const device = this.deps.store.get(job.serial);
      if (!device) continue;
      this.transition(job, { status: 'running' });
      running++;
      if (job.batch) perBatch.set(job.batch, (perBatch.get(job.batch) ?? 0) + 1);
      this.advance(job.serial);
    }
  }

  /** Host first: a DPU starts once its parent host's job (if any) has powered the host on. */
  private hostReady(job: Job): boolean {
    if (!job.parentHost || job.parentHost === job.serial) return true;
    const host = this.cache.get(job.parentHost);
    if (!host) return true;
    if (host.status === 'queued') return false;
    if (host.status === 'running') return stepIndex(host.step) >= stepIndex('booting');
    return true;
  }

  /** Moves a running job along: BMC steps run, waiting steps catch up on signals and arm their timer. */
  private advance(serial: string): void {
    const job = this.cache.get(serial);
    if (!job || job.status !== 'running' || this.stopping) return;
    if (BMC_STEPS.has(job.step)) {
      this.runBmcSteps(serial);
      return;
    }
    if (WAITING_STEPS.has(job.step)) {
      this.markDirty(serial);
      this.armTimer(serial);
      return;
    }
    if (job.step === 'complete') this.transition(job, { status: 'complete' });
  }

  private transition(job: Job, patch: JobPatch, note: TransitionNote = {}): Job {
    const now = this.clock.now();
    const { job: next } = this.jobs.update(job, patch, now, note);
    this.cache.set(job.serial, next);
    this.observer.changed(job, next, now);
    if (next.status !== job.status || next.step !== job.step) {
      this.log.info({ serial: job.serial, step: next.step, status: next.status, reason: next.reason ?? undefined, from: `${job.step}/${job.status}` }, 'onboarding transition');
      if (TERMINAL.has(next.status)) this.finishRuntime(job.serial);
      this.armTimer(job.serial);
    }
    return next;
  }

  private rt(serial: string): Runtime {
    let rt = this.runtime.get(serial);
    if (!rt) {
      rt = {};
      this.runtime.set(serial, rt);
    }
    return rt;
  }

  private finishRuntime(serial: string): void {
    const rt = this.runtime.get(serial);
    if (!rt) return;
    if (rt.timer !== undefined) this.clock.clearTimeout(rt.timer);
    rt.timer = undefined;
    rt.controller?.abort(new ZtpError('ONBOARDING_CONFLICT', 'job left its step'));
    if (!rt.bmcRunning) {
      void this.closeSession(rt);
      this.runtime.delete(serial);
    }
  }

  private async closeSession(rt: Runtime): Promise<void> {
    const session = rt.session;
    rt.session = undefined;
    rt.inventory = undefined;
    if (!session) return;
    try {
      await session.close();
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'onboarding: BMC session did not close cleanly');
    }
  }

  // ---- timeouts ----------------------------------------------------------------------------

  private timeoutOf(job: Job): number | null {
    const device = this.deps.store.get(job.serial);
    return stepTimeoutMs(job.step, this.deps.settings.timeouts as Record<TimeoutKey, number>, device?.onboardingTimeouts as StepTimeouts | null);
  }

  private armTimer(serial: string): void {
    const job = this.cache.get(serial);
    const existing = this.runtime.get(serial);
    if (existing?.timer !== undefined) this.clock.clearTimeout(existing.timer);
    if (existing) existing.timer = undefined;
    if (!job || job.status !== 'running' || this.stopping) return;
    const rt = this.rt(serial);
    const deadline = stepDeadline(job, this.timeoutOf(job));
    if (deadline === null) return;
    const { step, attempt } = job;
    rt.timer = this.clock.setTimeout(() => this.onTimer(serial, step, attempt), deadline - this.clock.now());
  }

  private onTimer(serial: string, step: Step, attempt: number): void {
    const rt = this.runtime.get(serial);
    if (rt) rt.timer = undefined;
    // Signals queued in this turn count before the clock does.
    this.flushSignals();
    const job = this.cache.get(serial);
    if (!job || job.status !== 'running' || job.step !== step || job.attempt !== attempt) return;
    const limit = this.timeoutOf(job);
    const deadline = stepDeadline(job, limit);
    const now = this.clock.now();
    if (deadline === null || limit === null) return;
    if (deadline > now) {
      this.armTimer(serial); // progress moved the deadline, or a long timer was clamped
      return;
    }
    const afterMs = now - (job.step === 'progress' ? Math.max(job.stepStartedAt, job.lastSignalAt ?? 0) : job.stepStartedAt);
    this.log.warn({ serial, step, afterMs }, 'onboarding step timed out');
    this.transition(job, { status: 'timed-out', failedStep: step, timedOutAfterMs: afterMs, reason: timeoutReason(job, afterMs), messageId: rt?.lastMessageId ?? job.messageId });
    this.pump();
  }

  // ---- signals -----------------------------------------------------------------------------

  private noticeEvent(e: HistoryEvent): void {
    if (e.serial === null || e.source === 'onboarding' || !this.cache.has(e.serial)) return;
    this.markDirty(e.serial);
  }

  private markDirty(serial: string): void {
    this.dirty.add(serial);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // After the writer's turn: the bootstrap server's reply is not held up by our writes, and
    // a burst of events is applied in one transaction.
    setImmediate(() => this.flushSignals());
  }

  private flushSignals(): void {
    this.flushScheduled = false;
    if (!this.started || this.stopping || this.dirty.size === 0) return;
    const serials = [...this.dirty];
    this.dirty.clear();
    const moved: string[] = [];
    try {
      this.deps.store.transaction(() => {
        for (const serial of serials) if (this.catchUp(serial)) moved.push(serial);
      });
    } catch (err) {
      this.log.error({ err: errorMessage(err), devices: serials.length }, 'onboarding: could not apply signals; retrying');
      for (const s of serials) this.markDirty(s);
      return;
    }
    for (const serial of moved) {
      const job = this.cache.get(serial)!;
      if (job.status === 'running' && BMC_STEPS.has(job.step)) this.advance(serial);
    }
    if (moved.length) this.pump();
  }

  /** Applies the device's events after the job's cursor; true when the job changed step or status. */
  private catchUp(serial: string): boolean {
    let job = this.cache.get(serial);
    if (!job) return false;
    const eligible = (j: Job) => (j.status === 'running' && WAITING_STEPS.has(j.step)) || j.status === 'failed' || j.status === 'timed-out';
    if (!eligible(job)) return false;
    const device = this.deps.store.get(serial);
    if (!device) return false;
    const image = this.deps.imageIdentity(device);
    const start = job;
    let cursor = job.cursor;
    for (;;) {
      const events = this.deps.store.history(serial, cursor, 500);
      if (events.length === 0) break;
      for (const e of events) {
        cursor = e.id;
        if (e.source === 'onboarding' || !eligible(job)) continue;
        const patch = applySignal(job, e, Date.parse(e.at), image);
        if (!patch) continue;
        const redirected = patch.status === 'complete' && patch.reason?.startsWith('redirected') === true;
        job = this.transition(job, { ...patch, cursor }, redirected ? { redirected: true } : {});
      }
      if (events.length < 500) break;
    }
    if (cursor !== job.cursor) job = this.transition(job, { cursor });
    return job.step !== start.step || job.status !== start.status;
  }

  // ---- BMC steps ---------------------------------------------------------------------------

  private runBmcSteps(serial: string): void {
    const rt = this.rt(serial);
    if (rt.bmcRunning) return;
    rt.bmcRunning = true;
    const run = (async () => {
      try {
        const device = this.deps.store.get(serial);
        if (!device?.bmc) {
          const job = this.cache.get(serial);
          if (job) this.transition(job, { status: 'failed', failedStep: job.step, reason: 'the device has no BMC any more' });
          return;
        }
        await this.withBmcLock(bmcKey(device), () => this.bmcLoop(serial, rt));
      } catch (err) {
        this.log.error({ serial, err: errorMessage(err) }, 'onboarding: BMC step runner failed');
      } finally {
        rt.bmcRunning = false;
        const job = this.cache.get(serial);
        if (!job || job.status !== 'running' || !BMC_STEPS.has(job.step)) await this.closeSession(rt);
        if (job && TERMINAL.has(job.status)) this.runtime.delete(serial);
      }
      if (this.stopping) return;
      const job = this.cache.get(serial);
      if (job?.status === 'running') this.advance(serial);
      this.pump();
    })();
    this.inflight.add(run);
    void run.finally(() => this.inflight.delete(run));
  }

  private async bmcLoop(serial: string, rt: Runtime): Promise<void> {
    for (;;) {
      if (this.stopping) return;
      let job = this.cache.get(serial);
      if (!job || job.status !== 'running' || !BMC_STEPS.has(job.step)) return;
      const device = this.deps.store.get(serial);
      if (!device?.bmc) return;
      const step = job.step;
      const resumed = job.phase === 'started';
      // The power-on resets the device: what it said before belongs to the previous boot.
      // (Not on resume: the device may already have booted and asked us before the crash.)
      const extra: JobPatch = step === 'power-on' && !resumed ? { cursor: this.jobs.maxEventId(serial) } : {};
      job = this.jobs.stepStarted(job, this.clock.now(), extra);
      this.cache.set(serial, job);
      this.armTimer(serial);
      const controller = new AbortController();
      rt.controller = controller;
      let result: { patch: JobPatch; note?: string };
      try {
        const started = job;
        result = await this.observer.inStep(serial, () => this.performStep(started, device, rt, resumed, controller.signal));
      } catch (err) {
        const now = this.cache.get(serial);
        if (this.stopping || !now || now.status !== 'running' || now.step !== step || now.attempt !== job.attempt) return;
        const messageId = messageIdOf(err) ?? rt.lastMessageId ?? null;
        this.log.warn({ serial, step, err: errorMessage(err), messageId }, 'onboarding BMC step failed');
        this.transition(now, { status: 'failed', failedStep: step, reason: `${step}: ${errorMessage(err)}`, messageId });
        return;
      } finally {
        if (rt.controller === controller) rt.controller = undefined;
      }
      const now = this.cache.get(serial);
      if (this.stopping || !now || now.status !== 'running' || now.step !== step || now.attempt !== job.attempt) return;
      const next = nextBmcStep(step, result.patch.path ?? now.path);
      const patch: JobPatch = { ...result.patch, step: next, messageId: rt.lastMessageId ?? now.messageId };
      if (next === 'complete') patch.status = 'complete';
      this.transition(now, patch, result.note ? { note: result.note } : {});
      if (!BMC_STEPS.has(next)) return;
    }
  }

  private async session(device: Device, rt: Runtime, signal: AbortSignal): Promise<BmcSession> {
    if (rt.session) return rt.session;
    const bmc = device.bmc!;
    const endpoint: BmcEndpoint = { ...endpointFromDevice(bmc), url: bmcUrl(bmc.address) };
    const serial = device.serial;
    const keep = (password: string) => this.deps.store.setBmcPassword(serial, password, 'onboarding');
    const connect = (ep: BmcEndpoint, onPasswordChange: (password: string) => void) =>
      this.deps.connect(ep, {
        log: this.log.child({ serial, bmc: ep.url }),
        signal,
        onStep: (s) => this.recordBmcStep(serial, ep.url, rt, s),
        onPasswordChange,
      });
    // A factory-fresh BMC (PasswordChangeRequired) is given the record's password, or a generated
    // one when the record holds only the factory password; either is sealed in the record before
    // the client logs in with it.
    if (!bmc.password && bmc.factoryPassword) endpoint.password = bmc.factoryPassword;
    try {
      rt.session = await connect(endpoint, keep);
    } catch (err) {
      if (!(bmc.password && bmc.factoryPassword && isZtpError(err, 'REDFISH_AUTH_FAILED'))) throw err;
      // The configured password is refused: the BMC may still be factory-fresh. The record already
      // holds the configured one; if the change does not take, it stays (the factory one is not written).
      rt.session = await connect({ ...endpoint, password: bmc.factoryPassword, newPassword: bmc.password }, (password) => {
        if (password !== bmc.factoryPassword) keep(password);
      });
    }
    return rt.session;
  }

  /** Every BMC step becomes a history event of the device (source 'redfish'). */
  private recordBmcStep(serial: string, bmc: string, rt: Runtime, s: StepOutcome): void {
    if (s.messageId) rt.lastMessageId = s.messageId;
    try {
      const data: Record<string, unknown> = { outcome: s.outcome, durationMs: s.durationMs, bmc };
      if (s.messageId) data.messageId = s.messageId;
      if (s.via) data.via = s.via;
      if (s.detail) data.detail = s.detail;
      this.deps.store.record({ serial, source: 'redfish', type: s.step, data });
    } catch (err) {
      this.log.error({ serial, err: errorMessage(err) }, 'onboarding: could not record a BMC step');
    }
  }

  private async performStep(job: Job, device: Device, rt: Runtime, resumed: boolean, signal: AbortSignal): Promise<{ patch: JobPatch; note?: string }> {
    const session = await this.session(device, rt, signal);
    const op = { signal };
    const inventory = async () => (rt.inventory ??= await session.inventory(op));
    switch (job.step) {
      case 'bmc-check': {
        rt.inventory = undefined;
        const inv = await inventory();
        const path = choosePath(inv, this.deps.settings.bootPath);
        const url = this.deps.imageUrlFor(device, path === 'virtual-media' ? 'bmc' : 'device');
        if (!url) throw new ZtpError('ONBOARDING_INVALID', `boot image "${device.bootImage ?? ''}" is not in the catalogue`);
        const macs = device.macs.filter((m) => inv.macs.includes(m));
        let note = device.macs.length && inv.macs.length && macs.length === 0 ? `BMC reports MACs ${inv.macs.join(', ')}; none is the device's` : `power ${inv.powerState}`;
        // BlueField: the mode the record asks for is set now; the power-on step's boot applies it.
        const mode = device.bmc?.operationMode;
        if (mode && inv.operationMode !== mode) {
          if (!session.setOperationMode || inv.operationMode === null) {
            throw new ZtpError('REDFISH_UNSUPPORTED', `the device record asks for ${mode} mode but the BMC exposes no operation mode`);
          }
          await session.setOperationMode(mode, op);
          note += `; operation mode ${inv.operationMode} → ${mode} (at the boot)`;
        }
        return { patch: { path, imageUrl: url }, note };
      }
      case 'media-insert': {
        const r = await session.insertMedia(job.imageUrl!, op);
        return { patch: {}, note: `${r.outcome} in ${r.slot}` };
      }
      case 'http-boot-set': {
        const inv = await inventory();
        if (!inv.allowedBootTargets.includes('UefiHttp')) throw new ZtpError('REDFISH_UNSUPPORTED', 'the BMC does not offer UefiHttp as a boot target');
        return { patch: {}, note: `HttpBootUri ${job.imageUrl}` };
      }
      case 'boot-override': {
        const inv = await inventory();
        const target = bootTarget(job.path, inv);
        await session.setOneTimeBoot(target, job.path === 'uefi-http' ? { ...op, httpBootUri: job.imageUrl! } : op);
        return { patch: {}, note: `once to ${target}` };
      }
      case 'power-on':
        return this.powerOn(job, device, session, await inventory(), resumed, signal);
      case 'cleanup':
        await session.clearBoot(op);
        return { patch: {}, note: job.path === 'virtual-media' ? 'media ejected, boot override cleared' : 'boot override cleared' };
      default:
        throw new ZtpError('ONBOARDING_INVALID', `${job.step} is not a BMC step`);
    }
  }

  private async powerOn(job: Job, device: Device, session: BmcSession, inv: Inventory, resumed: boolean, signal: AbortSignal): Promise<{ patch: JobPatch; note?: string }> {
    const state = await session.powerState({ signal });
    let note: string;
    if (state === 'On' || state === 'PoweringOn') {
      if (resumed) {
        // We may have sent the reset before the restart: never a second power cycle.
        note = 'already on (resumed: not reset again)';
      } else if (this.sharesHostSystem(device)) {
        note = 'already on; not restarted: its BMC system is the parent host\'s (never power the host off)';
      } else {
        const kind = RESTARTS.find((k) => inv.allowedResetTypes.includes(k)) ?? 'ForceRestart';
        const r = await session.reset(kind, { signal });
        note = `was on: ${r.resetType} (${r.outcome})`;
      }
    } else {
      const r = await session.reset('On', { signal });
      note = `${r.resetType} (${r.outcome})`;
    }
    const limit = this.timeoutOf(job) ?? 300_000;
    await session.waitForPower('On', { signal, timeoutMs: Math.max(1000, job.stepStartedAt + limit - this.clock.now()) });
    return { patch: {}, note };
  }

  /** A DPU driven through its parent host's own BMC system: restarting it would restart the host. */
  private sharesHostSystem(device: Device): boolean {
    if (!device.parentHost || !device.bmc) return false;
    const host = this.deps.store.get(device.parentHost);
    if (!host?.bmc) return false;
    return bmcKey(host) === bmcKey(device) && (host.bmc.systemId ?? '') === (device.bmc.systemId ?? '');
  }

  private async withBmcLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.bmcLocks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = previous.then(() => mine);
    this.bmcLocks.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.bmcLocks.get(key) === tail) this.bmcLocks.delete(key);
    }
  }

  private requireStarted(): void {
    if (!this.started || this.stopping) throw new ZtpError('ONBOARDING_DISABLED', 'the onboarding conductor is not running (onboarding.enabled)');
  }

  private requireJob(serial: string): Job {
    this.deps.store.require(serial);
    const job = this.cache.get(serial);
    if (!job) throw new ZtpError('ONBOARDING_NOT_FOUND', `${serial} has no onboarding job (ztp onboard ${serial})`, { details: { serial } });
    return job;
  }
}

export function bmcUrl(address: string): string {
  return /^https?:\/\//i.test(address) ? address.replace(/\/+$/, '') : `https://${address}`;
}

function bmcKey(device: Device): string {
  return bmcUrl(device.bmc!.address).toLowerCase();
}

function choosePath(inv: Inventory, preference: OnboardingSettings['bootPath']): BootPath {
  const hasCd = inv.virtualMedia.some((m) => m.mediaTypes.some((t) => /^(CD|DVD)$/i.test(t)));
  const hasHttp = inv.allowedBootTargets.includes('UefiHttp');
  if (preference === 'virtual-media') {
    if (!hasCd) throw new ZtpError('REDFISH_UNSUPPORTED', 'the BMC has no virtual media CD/DVD slot (onboarding.bootPath is virtual-media)');
    return 'virtual-media';
  }
  if (preference === 'uefi-http') {
    if (!hasHttp) throw new ZtpError('REDFISH_UNSUPPORTED', 'the BMC does not offer UefiHttp as a boot target (onboarding.bootPath is uefi-http)');
    return 'uefi-http';
  }
  if (hasCd) return 'virtual-media';
  if (hasHttp) return 'uefi-http';
  throw new ZtpError('REDFISH_UNSUPPORTED', 'the BMC offers neither a virtual media CD slot nor UEFI HTTP boot');
}

function bootTarget(path: BootPath | null, inv: Inventory): BootTarget {
  if (path === 'uefi-http') return 'UefiHttp';
  // Some BMCs (Supermicro, AMI) list only UsbCd for their virtual CD.
  if (inv.allowedBootTargets.length && !inv.allowedBootTargets.includes('Cd') && inv.allowedBootTargets.includes('UsbCd')) return 'UsbCd';
  return 'Cd';
}

function messageIdOf(err: unknown): string | undefined {
  if (!isZtpError(err)) return undefined;
  const id = err.details?.messageId;
  return typeof id === 'string' ? id : undefined;
}
