// `ztp onboard` and `ztp status`. The conductor runs inside `ztp serve`, so `ztp onboard` asks it
// through the admin API and, with --wait, follows the server's event stream until every device
// is done. `ztp status` reads the jobs and histories from the database, like `ztp device show`.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { parseImport } from '../devices/import.js';
import { ZtpError } from '../errors.js';
import { formatDuration, jobProgress, parseDuration, TERMINAL, type JobStatus } from '../onboarding/job.js';
import { JobStore, publicJob } from '../onboarding/jobs.js';
import { currentAttempt, timeline, type TimelineEntry } from '../onboarding/timeline.js';
import { AdminClient } from './admin-client.js';
import { configFrom, EXIT, globalOptions, openStorage, table, usageError, type Io } from './common.js';
import type { CliRegistrar } from './main.js';

interface PublicJob {
  serial: string;
  attempt: number;
  status: JobStatus;
  step: string;
  reason: string | null;
  failedStep: string | null;
  messageId: string | null;
  timedOutAfterMs: number | null;
  progressCount: number;
  startedAt: string;
  finishedAt: string | null;
  path: string | null;
}

interface OnboardResponse {
  results: { serial: string; outcome: 'queued' | 'unchanged' | 'refused'; reason?: string; job?: PublicJob }[];
}

interface Tracked {
  serial: string;
  outcome: string;
  /** the attempt this command waits for */
  attempt: number;
  job: PublicJob | undefined;
  reason?: string;
}

/** Exit code of a finished set of devices: failed 7 > timed-out 8 > refused 4 > ok 0. */
export function onboardExitCode(tracked: { outcome: string; job?: Pick<PublicJob, 'status'> | undefined }[], gaveUp: boolean): number {
  if (tracked.some((t) => t.job?.status === 'failed' || t.job?.status === 'aborted')) return EXIT.ONBOARDING_FAILED;
  if (gaveUp || tracked.some((t) => t.job?.status === 'timed-out')) return EXIT.ONBOARDING_TIMED_OUT;
  if (tracked.some((t) => t.outcome === 'refused')) return EXIT.INVALID;
  return EXIT.OK;
}

function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return '[' + '#'.repeat(full) + '-'.repeat(width - full) + ']';
}

function done(t: Tracked): boolean {
  if (t.outcome === 'refused') return true;
  return !!t.job && t.job.attempt >= t.attempt && TERMINAL.has(t.job.status);
}

function summaryTable(tracked: Tracked[]): string {
  const rows = tracked.map((t) => {
    const j = t.job;
    const took = j?.finishedAt ? formatDuration(Date.parse(j.finishedAt) - Date.parse(j.startedAt)) : '-';
    const status = t.outcome === 'refused' ? 'refused' : (j?.status ?? '-');
    const reason = t.outcome === 'refused' ? (t.reason ?? '') : (j?.reason ?? '') + (j?.messageId ? ` [${j.messageId}]` : '');
    return [t.serial, status, j?.failedStep ?? j?.step ?? '-', String(j?.attempt ?? '-'), took, reason];
  });
  return table([['SERIAL', 'STATUS', 'STEP', 'ATTEMPT', 'TOOK', 'REASON'], ...rows]);
}

export const registerOnboardCommands: CliRegistrar = (program, action, io) => {
  program
    .command('onboard [serials...]')
    .description('onboard devices through the running ztp serve (idempotent: a job in progress is not restarted)')
    .option('--all', 'every registered device')
    .option('--inventory <file>', 'import this fleet inventory first (the ztp device import format, CSV or JSON), then onboard its devices')
    .option('--format <format>', 'inventory format: csv, json or auto', 'auto')
    .option('--concurrency <n>', 'at most this many of these devices at once (the server limit applies too)')
    .option('--restart', 'start again even devices whose last onboarding completed')
    .option('--wait', 'follow until every device completes, fails or times out; exit 0 only if all completed')
    .option('--timeout <duration>', 'with --wait: give up waiting after this long (e.g. 90s, 30m, 2h); the jobs go on')
    .option('--server <url>', 'admin API of ztp serve (default: from the configuration)')
    .option('--token <token>', 'admin token (default: from the configuration or <data-dir>/admin-token)')
    .action(
      action(async (cmd: Command, serials: string[], opts: Record<string, string | boolean | undefined>) => {
        const g = globalOptions(cmd);
        const config = configFrom(g);
        const client = AdminClient.from(config, { server: opts.server as string | undefined, token: opts.token as string | undefined });
        let targets = [...new Set(serials)];
        if (opts.inventory) {
          let text: string;
          try {
            text = readFileSync(opts.inventory as string, 'utf8');
          } catch (err) {
            throw new ZtpError('DEVICE_IMPORT_INVALID', `inventory: cannot read ${String(opts.inventory)}: ${(err as Error).message}`);
          }
          const format = opts.format as 'csv' | 'json' | 'auto';
          const inputs = parseImport(text, format);
          const kind = format === 'auto' ? (/^\s*[[{]/.test(text) ? 'json' : 'csv') : format;
          const imported = await client.request<{ created: number; updated: number; unchanged: number }>('POST', '/api/v1/devices/import', text, kind === 'csv' ? 'text/csv' : 'application/json');
          if (!g.json) io.err(`inventory: ${inputs.length} device(s): ${imported.created} created, ${imported.updated} updated, ${imported.unchanged} unchanged`);
          targets = [...new Set([...targets, ...inputs.map((i) => i.serial)])];
        }
        if (opts.all && targets.length) throw usageError('give serials (or --inventory) or --all, not both');
        if (!opts.all && targets.length === 0) throw usageError('name the devices to onboard: serials, --inventory FILE or --all');
        let concurrency: number | undefined;
        if (opts.concurrency !== undefined) {
          concurrency = Number(opts.concurrency);
          if (!Number.isInteger(concurrency) || concurrency < 1) throw usageError('--concurrency must be a whole number ≥ 1');
        }
        let timeoutMs: number | undefined;
        if (opts.timeout !== undefined) {
          timeoutMs = parseDuration(String(opts.timeout));
          if (timeoutMs === undefined || timeoutMs <= 0) throw usageError(`--timeout: "${String(opts.timeout)}" is not a duration (e.g. 90s, 30m, 2h)`);
        }
        const body = { ...(opts.all ? { all: true } : { serials: targets }), ...(concurrency ? { concurrency } : {}), ...(opts.restart ? { restart: true } : {}) };
        if (!opts.wait) {
          const res = await client.request<OnboardResponse>('POST', '/api/v1/onboarding', body);
          if (g.json) io.out(JSON.stringify(res, null, 2));
          else io.out(table([['SERIAL', 'OUTCOME', 'STATUS', 'STEP', 'REASON'], ...res.results.map((r) => [r.serial, r.outcome, r.job?.status ?? '-', r.job?.step ?? '-', r.reason ?? ''])]));
          return res.results.some((r) => r.outcome === 'refused') ? EXIT.INVALID : EXIT.OK;
        }
        return waitFor(io, g.json === true, client, body, opts.all ? undefined : targets, timeoutMs);
      }),
    );

  program
    .command('status [serial]')
    .description('the fleet\'s onboarding summary, or one device\'s timeline (DHCP, BMC steps, image reads, sZTP requests, progress) with durations')
    .option('--watch', 'redraw every second until interrupted')
    .option('--all-attempts', 'with a serial: the whole history, not only the current attempt')
    .addOption(new Option('--interval <ms>', 'with --watch: redraw period').default('1000').hideHelp())
    .addOption(new Option('--watch-count <n>', 'with --watch: stop after n redraws (tests)').hideHelp())
    .action(
      action(async (cmd: Command, serial: string | undefined, opts: { watch?: boolean; allAttempts?: boolean; interval: string; watchCount?: string }) => {
        const g = globalOptions(cmd);
        const storage = openStorage(g);
        try {
          const jobs = new JobStore(storage.db, storage.store);
          const render = () => (serial ? deviceStatus(storage.store, jobs, serial, opts.allAttempts === true) : fleetStatus(storage.store, jobs));
          const first = render();
          const show = (v: { json: unknown; text: string }, redraw: boolean) => {
            if (g.json) io.out(JSON.stringify(v.json, null, opts.watch ? 0 : 2));
            else io.out((redraw && io.tty ? '\x1b[H\x1b[2J' : '') + v.text);
          };
          show(first, false);
          if (!opts.watch) return EXIT.OK;
          const limit = opts.watchCount ? Number(opts.watchCount) : Infinity;
          const interval = Math.max(50, Number(opts.interval) || 1000);
          let last = JSON.stringify(first.json);
          await new Promise<void>((resolveWatch) => {
            let n = 1;
            const timer = setInterval(() => {
              const v = render();
              const now = JSON.stringify(v.json);
              if (now !== last || !g.json) show(v, true);
              last = now;
              if (++n >= limit) stop();
            }, interval);
            const stop = () => {
              clearInterval(timer);
              process.off('SIGINT', stop);
              resolveWatch();
            };
            process.once('SIGINT', stop);
          });
          return EXIT.OK;
        } finally {
          storage.close();
        }
      }),
    );
};

async function waitFor(io: Io, json: boolean, client: AdminClient, body: Record<string, unknown>, serials: string[] | undefined, timeoutMs: number | undefined): Promise<number> {
  const tracked = new Map<string, Tracked>();
  const controller = new AbortController();
  let lastId = 0;
  let resolved = false;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const buffered: { event: string; data: unknown; id: number | undefined }[] = [];
  let started = false;
  const tty = io.tty === true && !json;
  let drawn = 0;

  const draw = () => {
    if (!tty) return;
    const list = [...tracked.values()];
    const lines = list.map((t) => {
      const j = t.job;
      const f = t.outcome === 'refused' ? 0 : j ? jobProgress({ step: j.step as never, status: j.status, progressCount: j.progressCount }, j.path !== 'none') : 0;
      const label = t.outcome === 'refused' ? `refused: ${t.reason ?? ''}` : j ? `${j.status === 'running' ? j.step : j.status}${j.reason ? `: ${j.reason}` : ''}` : 'waiting';
      return `${t.serial.padEnd(20)} ${bar(f)} ${label}`.slice(0, 160);
    });
    const complete = list.filter(done).length;
    const overall = list.length ? list.reduce((a, t) => a + (done(t) ? 1 : t.job ? jobProgress({ step: t.job.step as never, status: t.job.status, progressCount: t.job.progressCount }, t.job.path !== 'none') : 0), 0) / list.length : 0;
    lines.push(`${'overall'.padEnd(20)} ${bar(overall)} ${complete}/${list.length} done`);
    io.out((drawn ? `\x1b[${drawn}A` : '') + lines.map((l) => `\x1b[2K${l}`).join('\n'));
    drawn = lines.length;
  };

  const check = () => {
    if (!resolved && started && [...tracked.values()].every(done)) {
      resolved = true;
      finish();
    }
  };

  const apply = (event: string, data: unknown, id: number | undefined) => {
    if (id !== undefined) lastId = Math.max(lastId, id);
    if (event === 'snapshot') {
      for (const j of (data as { jobs: PublicJob[] }).jobs) {
        const t = tracked.get(j.serial);
        if (t && (!t.job || j.attempt >= t.job.attempt)) t.job = j;
      }
      draw();
      check();
      return;
    }
    if (event !== 'history') return;
    const e = data as { id: number; at: string; serial: string; source: string; type: string; data: Record<string, unknown> };
    const t = tracked.get(e.serial);
    if (!t) return;
    if (json) io.out(JSON.stringify({ kind: 'event', ...e }));
    if (e.source === 'onboarding' && e.type === 'transition') {
      const d = e.data;
      const attempt = Number(d.attempt);
      if (!t.job || attempt >= t.job.attempt) {
        t.job = {
          ...(t.job ?? ({} as PublicJob)),
          serial: e.serial, attempt, status: d.status as JobStatus, step: String(d.step), reason: typeof d.reason === 'string' ? d.reason : null,
          failedStep: typeof d.failedStep === 'string' ? d.failedStep : null, messageId: typeof d.messageId === 'string' ? d.messageId : null,
          timedOutAfterMs: typeof d.afterMs === 'number' ? d.afterMs : null, progressCount: t.job?.progressCount ?? 0,
          startedAt: d.newAttempt ? e.at : (t.job?.startedAt ?? e.at), finishedAt: TERMINAL.has(d.status as JobStatus) ? e.at : null,
          path: typeof d.path === 'string' ? d.path : (t.job?.path ?? null),
        };
        if (!tty && !json) io.out(`${e.at}  ${e.serial}  ${t.job.step}/${t.job.status}${t.job.reason ? `  ${t.job.reason}` : ''}`);
      }
    } else if (e.source === 'bootstrap' && e.type === 'progress' && t.job) {
      t.job.progressCount++;
    }
    draw();
    check();
  };

  // The stream opens before the request, so no transition between the two is missed.
  const path = `/api/v1/onboarding/stream${serials ? `?serial=${serials.map(encodeURIComponent).join(',')}` : ''}`;
  const follow = async () => {
    let failures = 0;
    while (!controller.signal.aborted) {
      try {
        await client.stream(`${path}${path.includes('?') ? '&' : '?'}after=${lastId}`, (ev, data, id) => (started ? apply(ev, data, id) : buffered.push({ event: ev, data, id })), controller.signal);
        failures = 0;
      } catch (err) {
        // The server went away (restart, kill -9): keep trying until it is back or we give up.
        if (++failures === 1 && !json) io.err(`ztp: lost the server's event stream (${(err as Error).message}); reconnecting`);
      }
      if (controller.signal.aborted) return;
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(failures, 4))));
    }
  };
  const following = follow();
  let deadline: NodeJS.Timeout | undefined;
  let gaveUp = false;
  try {
    // Let the stream connect first (its snapshot arrives before any later event).
    await new Promise((r) => setTimeout(r, 50));
    const res = await client.request<OnboardResponse>('POST', '/api/v1/onboarding', body);
    for (const r of res.results) {
      const attempt = r.job?.attempt ?? 0;
      tracked.set(r.serial, { serial: r.serial, outcome: r.outcome, attempt, job: r.job, ...(r.reason ? { reason: r.reason } : {}) });
    }
    if (json) io.out(JSON.stringify({ kind: 'started', results: res.results.map((r) => ({ serial: r.serial, outcome: r.outcome, ...(r.reason ? { reason: r.reason } : {}), attempt: r.job?.attempt ?? null })) }));
    else if (!tty) for (const r of res.results) io.out(`${r.serial}: ${r.outcome}${r.reason ? ` (${r.reason})` : ''}`);
    started = true;
    for (const b of buffered.splice(0)) apply(b.event, b.data, b.id);
    draw();
    check();
    if (timeoutMs !== undefined) {
      deadline = setTimeout(() => {
        gaveUp = true;
        finish();
      }, timeoutMs);
    }
    // A final poll catches a stream that connected late or not at all.
    const poll = setInterval(() => {
      void client
        .request<{ jobs: PublicJob[] }>('GET', '/api/v1/onboarding')
        .then((r) => apply('snapshot', { jobs: r.jobs.filter((j) => tracked.has(j.serial)) }, undefined))
        .catch(() => undefined);
    }, 5000);
    poll.unref();
    await finished;
    clearInterval(poll);
  } finally {
    if (deadline) clearTimeout(deadline);
    controller.abort();
    await following;
  }
  const list = [...tracked.values()];
  const code = onboardExitCode(list, gaveUp && !list.every(done));
  if (json) {
    io.out(JSON.stringify({ kind: 'summary', exitCode: code, gaveUp, devices: list.map((t) => ({ serial: t.serial, outcome: t.outcome, ...(t.reason ? { reason: t.reason } : {}), job: t.job ?? null })) }));
  } else {
    if (gaveUp) io.err(`ztp: gave up waiting after ${formatDuration(timeoutMs!)}; the jobs go on (ztp status)`);
    io.out(summaryTable(list));
  }
  return code;
}

function fleetStatus(store: ReturnType<typeof openStorage>['store'], jobs: JobStore): { json: unknown; text: string } {
  const all = jobs.all();
  const devices = store.list();
  const byStatus: Record<string, number> = {};
  for (const j of all) byStatus[j.status] = (byStatus[j.status] ?? 0) + 1;
  const states = store.stateCounts();
  const now = Date.now();
  const rows = all.map((j) => [
    j.serial, j.status, j.step, String(j.attempt),
    formatDuration((j.finishedAt ?? now) - j.startedAt), formatDuration((j.finishedAt ?? now) - j.stepStartedAt),
    (j.reason ?? '') + (j.messageId && j.status !== 'complete' ? ` [${j.messageId}]` : ''),
  ]);
  const text = [
    `devices: ${devices.length}   jobs: ${all.length}   ` + Object.entries(byStatus).map(([s, n]) => `${s}: ${n}`).join('   '),
    `device states: ` + (Object.entries(states).map(([s, n]) => `${s}: ${n}`).join('   ') || '-'),
    '',
    all.length ? table([['SERIAL', 'STATUS', 'STEP', 'ATTEMPT', 'TOTAL', 'IN STEP', 'REASON'], ...rows]) : 'no onboarding jobs (ztp onboard <serial…> | --all)',
  ].join('\n');
  return { json: { devices: devices.length, states, jobs: byStatus, list: all.map(publicJob) }, text };
}

function deviceStatus(store: ReturnType<typeof openStorage>['store'], jobs: JobStore, serial: string, allAttempts: boolean): { json: unknown; text: string } {
  const device = store.require(serial);
  const job = jobs.get(serial);
  const events = store.recentHistory(serial, 10_000);
  const entries = timeline(allAttempts ? events : currentAttempt(events, job?.attempt));
  const head = job
    ? `${serial}: ${job.status} at ${job.step} (attempt ${job.attempt}, device state ${device.state})${job.reason ? `\n  reason: ${job.reason}` : ''}${job.messageId && job.status !== 'complete' ? ` [${job.messageId}]` : ''}`
    : `${serial}: no onboarding job (device state ${device.state})`;
  const line = (e: TimelineEntry) =>
    `  ${e.at}  +${formatDuration(e.offsetMs).padEnd(8)} ${e.error ? '!' : ' '} ${e.source.padEnd(10)} ${e.summary}${e.durationMs !== undefined && e.source !== 'onboarding' ? `  (${formatDuration(e.durationMs)})` : ''}`;
  return { json: { serial, state: device.state, job: job ? publicJob(job) : null, timeline: entries }, text: [head, '', 'timeline:', ...entries.map(line)].join('\n') };
}
