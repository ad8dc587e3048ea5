// A device's onboarding timeline: its history events (DHCP, BMC steps, image reads, sZTP
// requests, progress reports, job transitions) as one line each, with when, how long after the
// previous one, and how long the step itself took when the source measured it. Pure.
import type { HistoryEvent } from '../devices/store.js';
import { ERROR_CATALOGUE } from '../errors.js';
import { formatDuration } from './job.js';

export interface TimelineEntry {
  id: number;
  at: string;
  /** ms since the first entry */
  offsetMs: number;
  /** ms since the previous entry */
  sincePreviousMs: number;
  source: string;
  type: string;
  summary: string;
  /** what the source measured (BMC step, download) or the step that just ended (transitions) */
  durationMs?: number;
  error?: boolean;
}

const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));

export function summarize(e: Pick<HistoryEvent, 'source' | 'type' | 'data'>): { summary: string; durationMs?: number; error?: boolean } {
  const d = e.data;
  const ms = typeof d.durationMs === 'number' ? d.durationMs : undefined;
  const withMs = (summary: string, durationMs = ms, error = false) => ({ summary, ...(durationMs !== undefined ? { durationMs } : {}), ...(error ? { error } : {}) });
  switch (e.source) {
    case 'dhcp':
      return withMs(`DHCP ${e.type}${d.ip ? ` ${str(d.ip)}` : d.address ? ` ${str(d.address)}` : ''}${d.mac ? ` to ${str(d.mac)}` : ''}`);
    case 'redfish':
      return withMs(`BMC ${e.type} ${str(d.outcome)}${d.via ? ` via ${str(d.via)}` : ''}${d.messageId ? ` [${str(d.messageId)}]` : ''}${d.detail ? `: ${str(d.detail)}` : ''}`, ms, d.outcome === 'failed');
    case 'images':
      return withMs(`image ${str(d.image)} read by ${str(d.client)}: ${str(d.bytes)} bytes${d.requests ? ` in ${str(d.requests)} requests` : ''}${d.completed === true ? '' : ' (incomplete)'}`);
    case 'bootstrap':
      if (e.type === 'progress') {
        const type = str(d.progressType);
        return withMs(`sZTP progress ${type}${d.message ? `: ${str(d.message)}` : ''}`, undefined, type.endsWith('-error') || type === 'boot-image-mismatch');
      }
      if (e.type === 'request') {
        const ok = d.result === 'ok';
        // A failure names its HTTP status and code, so a 401 never reads like a served request.
        const status = typeof d.code === 'string' && d.code in ERROR_CATALOGUE ? ERROR_CATALOGUE[d.code as keyof typeof ERROR_CATALOGUE].status : 500;
        return withMs(`sZTP ${str(d.rpc) || 'request'} ${ok ? `→ ${str(d.response)}${d.signed ? ' (signed)' : ''}` : `failed ${status} ${str(d.code)}: ${str(d.error ?? d.code)}`}`, undefined, !ok);
      }
      return withMs(`sZTP ${e.type}`);
    case 'onboarding':
      if (e.type === 'step-started') return withMs(`step ${str(d.step)} started${d.resumed ? ' (resumed after restart)' : ''}`);
      if (e.type === 'transition') {
        const status = str(d.status);
        const reason = d.reason ? `: ${str(d.reason)}` : '';
        const note = d.note ? ` (${str(d.note)})` : '';
        const dur = typeof d.stepDurationMs === 'number' ? d.stepDurationMs : undefined;
        const from = d.from && typeof d.from === 'object' ? (d.from as Record<string, unknown>) : undefined;
        const took = dur !== undefined && from ? `, ${str(from.step)} took ${formatDuration(dur)}` : '';
        return withMs(`job ${status === 'running' ? '' : status + ' '}at ${str(d.step)}${reason}${note}${took}`, dur, status === 'failed' || status === 'timed-out');
      }
      return withMs(`onboarding ${e.type}`);
    default:
      return withMs(`${e.source} ${e.type}${d.actor ? ` by ${str(d.actor)}` : ''}`);
  }
}

export function timeline(events: HistoryEvent[]): TimelineEntry[] {
  const first = events[0] ? Date.parse(events[0].at) : 0;
  let previous = first;
  return events.map((e) => {
    const at = Date.parse(e.at);
    const entry: TimelineEntry = { id: e.id, at: e.at, offsetMs: at - first, sincePreviousMs: at - previous, source: e.source, type: e.type, ...summarize(e) };
    previous = at;
    return entry;
  });
}

/** The events of the current attempt: from its first transition on (else the whole history given). */
export function currentAttempt(events: HistoryEvent[], attempt: number | undefined): HistoryEvent[] {
  if (attempt === undefined) return events;
  const start = events.findIndex((e) => e.source === 'onboarding' && e.type === 'transition' && e.data.attempt === attempt && e.data.newAttempt === true);
  return start >= 0 ? events.slice(start) : events;
}
