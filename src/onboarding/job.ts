// The onboarding job of one device: its steps, and the pure rules that move it. No I/O here:
// the conductor (conductor.ts) runs BMC steps and feeds history events in; this module says what
// each event means for the job, so a job can be reasoned about (and tested) without a clock or a
// database.
//
//   bmc-check → media-insert | http-boot-set → boot-override → power-on      (BMC steps, driven)
//     → booting (image fetched, DHCP seen) → bootstrapping → progress …      (signals, awaited)
//     → cleanup (eject, clear override) → complete
//   any step → failed (reason, step, Redfish MessageId or sZTP *-error message)
//            → timed-out (step, after how long) → aborted (by an operator)
//
// A device without a BMC enters at `booting` (racked and powered by hand, or DHCP boot alone).

export const STEPS = [
  'bmc-check',
  'media-insert',
  'http-boot-set',
  'boot-override',
  'power-on',
  'booting',
  'bootstrapping',
  'progress',
  'cleanup',
  'complete',
] as const;
export type Step = (typeof STEPS)[number];

/** Steps the conductor performs against the BMC. */
export const BMC_STEPS: ReadonlySet<Step> = new Set<Step>(['bmc-check', 'media-insert', 'http-boot-set', 'boot-override', 'power-on', 'cleanup']);
/** Steps that wait for the device to do something (signals through the history). */
export const WAITING_STEPS: ReadonlySet<Step> = new Set<Step>(['booting', 'bootstrapping', 'progress']);
/** Steps with a timeout (every step but the end). */
export const TIMED_STEPS = STEPS.filter((s) => s !== 'complete');

export const JOB_STATUSES = ['queued', 'running', 'complete', 'failed', 'timed-out', 'aborted'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL: ReadonlySet<JobStatus> = new Set<JobStatus>(['complete', 'failed', 'timed-out', 'aborted']);

/** How the BMC boots the device's image: InsertMedia + Cd, or a UEFI HTTP boot URI. */
export type BootPath = 'virtual-media' | 'uefi-http' | 'none';

/** 'pending': the step was entered; 'started': its BMC call may have been sent (resume reconciles). */
export type StepPhase = 'pending' | 'started';

export interface Job {
  serial: string;
  /** 1 for the first onboarding of this device, +1 for each start or retry */
  attempt: number;
  status: JobStatus;
  step: Step;
  phase: StepPhase;
  path: BootPath | null;
  /** epoch ms */
  stepStartedAt: number;
  startedAt: number;
  finishedAt: number | null;
  reason: string | null;
  /** the step a failed / timed-out job stopped at */
  failedStep: Step | null;
  /** last Redfish MessageId seen by this job (a failure's cause when the BMC said one) */
  messageId: string | null;
  timedOutAfterMs: number | null;
  /** the image URL handed to the BMC (per-device path) */
  imageUrl: string | null;
  imageFetched: boolean;
  dhcpSeen: boolean;
  progressCount: number;
  lastProgress: string | null;
  /** epoch ms of the last signal that counts as progress (resets the progress step's idle timeout) */
  lastSignalAt: number | null;
  /** last sZTP request error (e.g. access denied): the hint in a timed-out reason */
  lastError: string | null;
  /** id of the last history event of this device the job has considered */
  cursor: number;
  /** a group started together (`ztp onboard …`), with its own concurrency limit */
  batch: string | null;
  batchConcurrency: number | null;
  /** serial of the parent host device (recorded link: host first, host stays powered) */
  parentHost: string | null;
  updatedAt: number;
}

export interface SignalLike {
  id: number;
  source: string;
  type: string;
  data: Record<string, unknown>;
}

/** What the device record says about the image this job boots. */
export interface ImageIdentity {
  /** catalogue name or URL, as in the device record */
  bootImage: string | null;
  /** catalogue digest (or the record's bootImageSha256 for a URL image) */
  sha256: string | null;
}

/** A change to a job; `step`/`status` set means a transition (a history event). */
export interface JobPatch {
  step?: Step;
  status?: JobStatus;
  reason?: string | null;
  failedStep?: Step | null;
  messageId?: string | null;
  timedOutAfterMs?: number | null;
  imageFetched?: boolean;
  dhcpSeen?: boolean;
  progressCount?: number;
  lastProgress?: string | null;
  lastSignalAt?: number | null;
  lastError?: string | null;
  path?: BootPath | null;
  imageUrl?: string | null;
  phase?: StepPhase;
  cursor?: number;
}

export function isTransition(patch: JobPatch, job: Job): boolean {
  return (patch.step !== undefined && patch.step !== job.step) || (patch.status !== undefined && patch.status !== job.status);
}

export function isStep(value: unknown): value is Step {
  return typeof value === 'string' && (STEPS as readonly string[]).includes(value);
}

export function isJobStatus(value: unknown): value is JobStatus {
  return typeof value === 'string' && (JOB_STATUSES as readonly string[]).includes(value);
}

export function stepIndex(step: Step): number {
  return STEPS.indexOf(step);
}

export function firstStep(hasBmc: boolean): Step {
  return hasBmc ? 'bmc-check' : 'booting';
}

/** The BMC step after `step` on `path` (power-on hands over to the device: booting). */
export function nextBmcStep(step: Step, path: BootPath | null): Step {
  switch (step) {
    case 'bmc-check':
      return path === 'uefi-http' ? 'http-boot-set' : 'media-insert';
    case 'media-insert':
    case 'http-boot-set':
      return 'boot-override';
    case 'boot-override':
      return 'power-on';
    case 'power-on':
      return 'booting';
    case 'cleanup':
      return 'complete';
    default:
      return step;
  }
}

const PROGRESS_ERROR = (type: string) => type === 'bootstrap-error' || type.endsWith('-error') || type === 'boot-image-mismatch';

/** Does this download belong to the image this job boots? (by name, digest, or URL) */
export function isOwnImage(data: Record<string, unknown>, image: ImageIdentity): boolean {
  if (!image.bootImage && !image.sha256) return false;
  const name = typeof data.image === 'string' ? data.image : undefined;
  const sha = typeof data.sha256 === 'string' ? data.sha256.toLowerCase() : undefined;
  if (image.sha256 && sha === image.sha256) return true;
  return name !== undefined && (name === image.bootImage || (image.bootImage !== null && image.bootImage.endsWith('/' + name)));
}

/**
 * What one history event of the job's device means for the job. Pure: the same job and event
 * always give the same patch (null: nothing to change). `now` is the event's time (epoch ms).
 *
 * Signals count only while the job waits for the device (booting, bootstrapping, progress) and,
 * so that the device's state and the job agree, after a failure or timeout: a device that asks
 * again or reports on (RFC 8572 §5.6 retries) takes its job along. An aborted job is not
 * conducted any more and ignores signals.
 */
export function applySignal(job: Job, event: SignalLike, now: number, image: ImageIdentity): JobPatch | null {
  const waiting = job.status === 'running' && WAITING_STEPS.has(job.step);
  const revivable = job.status === 'failed' || job.status === 'timed-out';
  if (!waiting && !revivable) return null;
  const key = `${event.source}:${event.type}`;
  const d = event.data;
  switch (key) {
    case 'dhcp:lease':
      return waiting && !job.dhcpSeen ? { dhcpSeen: true } : null;
    case 'images:download':
      // Only the device's own image advances it: another image read through its MAC path
      // (a shell, a firmware blob) says nothing about the onboarding.
      return waiting && !job.imageFetched && d.completed === true && isOwnImage(d, image) ? { imageFetched: true } : null;
    case 'bootstrap:request': {
      if (d.result !== 'ok') return { lastError: describeRequestError(d) };
      if (d.response === 'redirect-information') {
        // The device onboards with another bootstrap server: this job is done; its media stays
        // (the device may still run from it).
        return { step: 'complete', status: 'complete', reason: 'redirected to another bootstrap server', lastSignalAt: now };
      }
      if (job.step === 'bootstrapping' && waiting) return { lastSignalAt: now };
      if (job.step === 'progress' && waiting) return { step: 'bootstrapping', lastSignalAt: now };
      return { step: 'bootstrapping', status: 'running', reason: null, failedStep: null, timedOutAfterMs: null, lastSignalAt: now };
    }
    case 'bootstrap:progress': {
      const type = String(d.progressType ?? '');
      const count = { progressCount: job.progressCount + 1, lastProgress: type, lastSignalAt: now };
      if (type === 'bootstrap-complete') {
        // Nothing to clean up on a device no BMC booted.
        if (job.path === 'none') return { ...count, step: 'complete', status: 'complete', reason: null, failedStep: null, timedOutAfterMs: null };
        return { ...count, step: 'cleanup', status: 'running', phase: 'pending', reason: null, failedStep: null, timedOutAfterMs: null };
      }
      if (PROGRESS_ERROR(type)) {
        if (job.status === 'failed') return count;
        const message = typeof d.message === 'string' && d.message ? `: ${d.message}` : '';
        return { ...count, status: 'failed', failedStep: job.step, reason: `device reported ${type}${message}` };
      }
      if (revivable) return { ...count, step: 'progress', status: 'running', reason: null, failedStep: null, timedOutAfterMs: null };
      return job.step === 'progress' ? count : { ...count, step: 'progress' };
    }
    default:
      return null;
  }
}

function describeRequestError(d: Record<string, unknown>): string {
  const rpc = typeof d.rpc === 'string' ? d.rpc : 'request';
  const why = typeof d.error === 'string' ? d.error : typeof d.code === 'string' ? d.code : 'error';
  return `${rpc}: ${why}`;
}

/** Step timeouts in seconds, by step (the config's onboarding.timeouts, camelCased keys). */
export type StepTimeouts = Partial<Record<TimeoutKey, number>>;
export type TimeoutKey = 'bmcCheck' | 'mediaInsert' | 'httpBootSet' | 'bootOverride' | 'powerOn' | 'booting' | 'bootstrapping' | 'progress' | 'cleanup';

export const TIMEOUT_KEYS: Record<Exclude<Step, 'complete'>, TimeoutKey> = {
  'bmc-check': 'bmcCheck',
  'media-insert': 'mediaInsert',
  'http-boot-set': 'httpBootSet',
  'boot-override': 'bootOverride',
  'power-on': 'powerOn',
  booting: 'booting',
  bootstrapping: 'bootstrapping',
  progress: 'progress',
  cleanup: 'cleanup',
};

/** Seconds allowed for `step`: the device's override, else the configured default. */
export function stepTimeoutMs(step: Step, defaults: Record<TimeoutKey, number>, override: StepTimeouts | null | undefined): number | null {
  if (step === 'complete') return null;
  const key = TIMEOUT_KEYS[step];
  const seconds = override?.[key] ?? defaults[key];
  return seconds * 1000;
}

/**
 * When the current step times out (epoch ms), or null. The progress step is an idle timeout:
 * it counts from the last report, since an agent reports at every phase and an install is long.
 */
export function stepDeadline(job: Job, timeoutMs: number | null): number | null {
  if (job.status !== 'running' || timeoutMs === null) return null;
  const from = job.step === 'progress' ? Math.max(job.stepStartedAt, job.lastSignalAt ?? 0) : job.stepStartedAt;
  return from + timeoutMs;
}

const WAITED_FOR: Partial<Record<Step, string>> = {
  booting: 'get-bootstrapping-data from the device',
  bootstrapping: 'progress report',
  progress: 'further progress report',
};

export function timeoutReason(job: Job, afterMs: number): string {
  const what = WAITED_FOR[job.step];
  const base = what ? `no ${what} within ${formatDuration(afterMs)}` : `${job.step} did not finish within ${formatDuration(afterMs)}`;
  const hints: string[] = [];
  if (job.step === 'booting') hints.push(`image ${job.imageFetched ? 'fetched' : 'not fetched'}`, `DHCP ${job.dhcpSeen ? 'seen' : 'not seen'}`);
  if (job.lastProgress && job.step === 'progress') hints.push(`last report ${job.lastProgress}`);
  if (job.lastError) hints.push(`last error ${job.lastError}`);
  return hints.length ? `${base} (${hints.join(', ')})` : base;
}

/** 90 s → "1m30s", 3_600_000 ms → "1h". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', s || (!h && !m) ? `${s}s` : ''].join('');
}

/** "90", "90s", "15m", "1h30m", "500ms" → milliseconds; undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
    matched = re.lastIndex;
  }
  return matched === t.length && matched > 0 ? total : undefined;
}

/** Fraction of the way through the steps (0..1), for progress bars. */
export function jobProgress(job: Pick<Job, 'step' | 'status' | 'progressCount'>, hasBmc: boolean): number {
  if (job.status === 'complete') return 1;
  const first = stepIndex(firstStep(hasBmc));
  const span = stepIndex('complete') - first;
  let at = stepIndex(job.step) - first;
  // Inside `progress`, each report moves the bar a little (RFC 8572 defines about eight).
  if (job.step === 'progress') at += Math.min(0.9, job.progressCount / 9);
  return Math.max(0, Math.min(0.99, at / span));
}
