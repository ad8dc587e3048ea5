// SQLite adapter for onboarding jobs (migration 005). Every change of a job's step or status is
// written together with its history event (source 'onboarding', type 'transition') in one
// transaction through the device store, so a crash leaves either both or neither, and the
// device's state (state.ts) moves in that same transaction.
import type { Db } from '../db/database.js';
import type { DeviceStore, HistoryEvent } from '../devices/store.js';
import { isTransition, type Job, type JobPatch, type JobStatus, type Step } from './job.js';

interface JobRow {
  serial: string;
  attempt: number;
  status: string;
  step: string;
  phase: string;
  path: string | null;
  step_started_at: number;
  started_at: number;
  finished_at: number | null;
  reason: string | null;
  failed_step: string | null;
  message_id: string | null;
  timed_out_after_ms: number | null;
  image_url: string | null;
  image_fetched: number;
  dhcp_seen: number;
  progress_count: number;
  last_progress: string | null;
  last_signal_at: number | null;
  last_error: string | null;
  cursor: number;
  batch: string | null;
  batch_concurrency: number | null;
  parent_host: string | null;
  queued_at: number;
  updated_at: number;
}

/** Extra facts carried by a transition event (never secrets). */
export interface TransitionNote {
  note?: string;
  newAttempt?: boolean;
  actor?: string;
  redirected?: boolean;
}

export class JobStore {
  private readonly stmts;

  constructor(
    db: Db,
    private readonly store: DeviceStore,
  ) {
    this.stmts = {
      get: db.prepare(`SELECT * FROM onboarding_jobs WHERE serial = ?`),
      all: db.prepare(`SELECT * FROM onboarding_jobs ORDER BY queued_at, serial`),
      upsert: db.prepare(`INSERT INTO onboarding_jobs (serial, attempt, status, step, phase, path, step_started_at, started_at, finished_at, reason,
          failed_step, message_id, timed_out_after_ms, image_url, image_fetched, dhcp_seen, progress_count, last_progress, last_signal_at,
          last_error, cursor, batch, batch_concurrency, parent_host, queued_at, updated_at)
        VALUES (@serial, @attempt, @status, @step, @phase, @path, @step_started_at, @started_at, @finished_at, @reason, @failed_step, @message_id,
          @timed_out_after_ms, @image_url, @image_fetched, @dhcp_seen, @progress_count, @last_progress, @last_signal_at, @last_error, @cursor,
          @batch, @batch_concurrency, @parent_host, @queued_at, @updated_at)
        ON CONFLICT(serial) DO UPDATE SET attempt=excluded.attempt, status=excluded.status, step=excluded.step, phase=excluded.phase,
          path=excluded.path, step_started_at=excluded.step_started_at, started_at=excluded.started_at, finished_at=excluded.finished_at,
          reason=excluded.reason, failed_step=excluded.failed_step, message_id=excluded.message_id, timed_out_after_ms=excluded.timed_out_after_ms,
          image_url=excluded.image_url, image_fetched=excluded.image_fetched, dhcp_seen=excluded.dhcp_seen, progress_count=excluded.progress_count,
          last_progress=excluded.last_progress, last_signal_at=excluded.last_signal_at, last_error=excluded.last_error, cursor=excluded.cursor,
          batch=excluded.batch, batch_concurrency=excluded.batch_concurrency, parent_host=excluded.parent_host, queued_at=excluded.queued_at,
          updated_at=excluded.updated_at`),
      maxEvent: db.prepare(`SELECT coalesce(max(id), 0) AS id FROM events WHERE serial = ?`),
    };
  }

  get(serial: string): Job | undefined {
    const row = this.stmts.get.get(serial) as JobRow | undefined;
    return row ? rowToJob(row) : undefined;
  }

  all(): Job[] {
    return (this.stmts.all.all() as JobRow[]).map(rowToJob);
  }

  /** Id of the newest history event of a device (a job's cursor starts there). */
  maxEventId(serial: string): number {
    return (this.stmts.maxEvent.get(serial) as { id: number }).id;
  }

  /** Writes a new attempt (replacing the previous row) and its transition event, atomically. */
  create(job: Job, previous: Job | undefined, extra: TransitionNote = {}): { job: Job; event: HistoryEvent } {
    return this.store.transaction(() => {
      this.stmts.upsert.run(jobParams(job));
      const event = this.store.record({ serial: job.serial, source: 'onboarding', type: 'transition', data: transitionData(previous, job, job.startedAt, extra) });
      return { job, event };
    });
  }

  /**
   * Applies a patch at `now`. A change of step or status records a transition event in the same
   * transaction; other changes (flags, cursor) only update the row.
   */
  update(job: Job, patch: JobPatch, now: number, extra: TransitionNote = {}): { job: Job; event?: HistoryEvent } {
    const next = applyPatch(job, patch, now);
    return this.store.transaction(() => {
      this.stmts.upsert.run(jobParams(next));
      if (!isTransition(patch, job)) return { job: next };
      const event = this.store.record({ serial: job.serial, source: 'onboarding', type: 'transition', data: transitionData(job, next, now, extra) });
      return { job: next, event };
    });
  }

  /**
   * "About to call the BMC for this step": persisted (with its event) before the call, so a
   * resumed conductor knows the call may have been made and reconciles instead of repeating.
   */
  stepStarted(job: Job, now: number, patch: JobPatch = {}): Job {
    const next = applyPatch(job, { ...patch, phase: 'started' }, now);
    next.stepStartedAt = now;
    return this.store.transaction(() => {
      this.stmts.upsert.run(jobParams(next));
      this.store.record({ serial: job.serial, source: 'onboarding', type: 'step-started', data: { attempt: job.attempt, step: job.step, resumed: job.phase === 'started' } });
      return next;
    });
  }
}

const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['complete', 'failed', 'timed-out', 'aborted']);

export function applyPatch(job: Job, patch: JobPatch, now: number): Job {
  const next: Job = { ...job, updatedAt: now };
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) (next as unknown as Record<string, unknown>)[k] = v;
  const stepChanged = patch.step !== undefined && patch.step !== job.step;
  if (stepChanged) {
    next.stepStartedAt = now;
    if (patch.phase === undefined) next.phase = 'pending';
  }
  if (patch.status !== undefined && patch.status !== job.status) {
    if (TERMINAL_STATUSES.has(patch.status)) next.finishedAt = now;
    else next.finishedAt = null;
    // A job that starts running (from the queue or revived by its device) starts its step clock.
    if (patch.status === 'running' && !stepChanged) next.stepStartedAt = now;
  }
  return next;
}

function transitionData(from: Job | undefined, to: Job, now: number, extra: TransitionNote): Record<string, unknown> {
  const data: Record<string, unknown> = {
    attempt: to.attempt,
    step: to.step,
    status: to.status,
    from: from ? { step: from.step, status: from.status } : null,
  };
  if (from && from.step !== to.step) data.stepDurationMs = Math.max(0, now - from.stepStartedAt);
  if (to.reason) data.reason = to.reason;
  if (to.status === 'failed' || to.status === 'timed-out' || to.status === 'aborted') {
    if (to.failedStep) data.failedStep = to.failedStep;
    if (to.messageId) data.messageId = to.messageId;
  }
  if (to.status === 'timed-out' && to.timedOutAfterMs !== null) data.afterMs = to.timedOutAfterMs;
  if (to.path && (!from || from.path !== to.path)) data.path = to.path;
  if (to.imageUrl && (!from || from.imageUrl !== to.imageUrl)) data.imageUrl = to.imageUrl;
  if (to.parentHost && (!from || extra.newAttempt)) data.parentHost = to.parentHost;
  if (to.batch && extra.newAttempt) data.batch = to.batch;
  if (extra.note) data.note = extra.note;
  if (extra.newAttempt) data.newAttempt = true;
  if (extra.actor) data.actor = extra.actor;
  if (extra.redirected) data.redirected = true;
  return data;
}

function jobParams(j: Job) {
  return {
    serial: j.serial, attempt: j.attempt, status: j.status, step: j.step, phase: j.phase, path: j.path, step_started_at: j.stepStartedAt,
    started_at: j.startedAt, finished_at: j.finishedAt, reason: j.reason, failed_step: j.failedStep, message_id: j.messageId,
    timed_out_after_ms: j.timedOutAfterMs, image_url: j.imageUrl, image_fetched: j.imageFetched ? 1 : 0, dhcp_seen: j.dhcpSeen ? 1 : 0,
    progress_count: j.progressCount, last_progress: j.lastProgress, last_signal_at: j.lastSignalAt, last_error: j.lastError, cursor: j.cursor,
    batch: j.batch, batch_concurrency: j.batchConcurrency, parent_host: j.parentHost, queued_at: j.startedAt, updated_at: j.updatedAt,
  };
}

function rowToJob(r: JobRow): Job {
  return {
    serial: r.serial,
    attempt: r.attempt,
    status: r.status as JobStatus,
    step: r.step as Step,
    phase: r.phase as Job['phase'],
    path: r.path as Job['path'],
    stepStartedAt: r.step_started_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    reason: r.reason,
    failedStep: r.failed_step as Step | null,
    messageId: r.message_id,
    timedOutAfterMs: r.timed_out_after_ms,
    imageUrl: r.image_url,
    imageFetched: r.image_fetched === 1,
    dhcpSeen: r.dhcp_seen === 1,
    progressCount: r.progress_count,
    lastProgress: r.last_progress,
    lastSignalAt: r.last_signal_at,
    lastError: r.last_error,
    cursor: r.cursor,
    batch: r.batch,
    batchConcurrency: r.batch_concurrency,
    parentHost: r.parent_host,
    updatedAt: r.updated_at,
  };
}

/** The job as the API and CLI show it (times as ISO strings). */
export function publicJob(j: Job): Record<string, unknown> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    serial: j.serial, attempt: j.attempt, status: j.status, step: j.step, path: j.path, reason: j.reason, failedStep: j.failedStep,
    messageId: j.messageId, timedOutAfterMs: j.timedOutAfterMs, imageUrl: j.imageUrl, imageFetched: j.imageFetched, dhcpSeen: j.dhcpSeen,
    progressCount: j.progressCount, lastProgress: j.lastProgress, lastError: j.lastError, batch: j.batch, parentHost: j.parentHost,
    startedAt: iso(j.startedAt), stepStartedAt: iso(j.stepStartedAt), finishedAt: iso(j.finishedAt), updatedAt: iso(j.updatedAt),
  };
}
