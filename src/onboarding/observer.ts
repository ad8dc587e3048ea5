// Onboarding as metrics and traces: each step's duration in a histogram, and a span per job with
// a child span per step. Redfish exchanges made while a BMC step runs become children of that
// step's span (telemetry.withSpan), so a collector shows "power-on took 41 s: 6 BMC calls, one
// 503". Spans cover what this process saw: a job resumed after a restart starts a new job span.
import type { Observability } from '../observability.js';
import { SpanStatusCode, noTelemetry, type Span } from '../telemetry.js';
import type { Job } from './job.js';

const ENDED = new Set(['complete', 'failed', 'timed-out', 'aborted']);

interface OpenSpans {
  job: Span;
  step?: Span;
  stepName?: string;
}

export class OnboardingObserver {
  private readonly open = new Map<string, OpenSpans>();
  private readonly telemetry;

  constructor(private readonly obs: Observability = {}) {
    this.telemetry = obs.telemetry ?? noTelemetry;
  }

  /** A job moved (step or status); `now` is the transition time. */
  changed(before: Job | undefined, after: Job, now: number): void {
    const stepEnded = before !== undefined && before.status === 'running' && (before.step !== after.step || after.status !== 'running');
    if (stepEnded) {
      const outcome = after.status === 'running' || after.status === 'complete' ? 'done' : after.status;
      this.obs.metrics?.stepDuration.observe({ step: before.step, outcome }, Math.max(0, now - before.stepStartedAt) / 1000);
    }
    if (!this.telemetry.enabled) return;
    let spans = this.open.get(after.serial);
    if (stepEnded && spans?.step) {
      if (after.status !== 'running' && after.status !== 'complete') spans.step.setStatus({ code: SpanStatusCode.ERROR, message: after.reason ?? after.status });
      spans.step.end();
      delete spans.step;
      delete spans.stepName;
    }
    if (ENDED.has(after.status)) {
      if (spans) {
        spans.job.setAttribute('ztp.status', after.status);
        if (after.status !== 'complete') spans.job.setStatus({ code: SpanStatusCode.ERROR, message: after.reason ?? after.status });
        spans.job.end();
        this.open.delete(after.serial);
      }
      return;
    }
    if (after.status !== 'running') return;
    if (!spans) {
      const job = this.telemetry.startSpan('onboarding job', { 'ztp.serial': after.serial, 'ztp.attempt': after.attempt, 'ztp.path': after.path ?? '' });
      if (!job) return;
      spans = { job };
      this.open.set(after.serial, spans);
    }
    if (!spans.step || spans.stepName !== after.step) {
      spans.step?.end();
      spans.step = this.telemetry.startSpan(`onboarding step ${after.step}`, { 'ztp.serial': after.serial, 'ztp.step': after.step }, { parent: spans.job });
      spans.stepName = after.step;
    }
  }

  /** Runs a BMC step with its span active. */
  inStep<T>(serial: string, fn: () => T): T {
    return this.telemetry.withSpan(this.open.get(serial)?.step, fn);
  }

  /** Shutdown: open spans end here (the job goes on in the next process). */
  close(): void {
    for (const spans of this.open.values()) {
      spans.step?.setAttribute('ztp.interrupted', true);
      spans.step?.end();
      spans.job.setAttribute('ztp.interrupted', true);
      spans.job.end();
    }
    this.open.clear();
  }
}
