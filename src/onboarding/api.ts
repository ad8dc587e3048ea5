// Admin API routes of the conductor, mounted under /api/v1 (bearer token) by the suite:
//   POST /onboarding                      start (serials or all; idempotent)
//   GET  /onboarding[?status=]            every job, with counts by status
//   GET  /onboarding/{serial}             one job
//   POST /onboarding/{serial}/retry       {from: "step" | "start"}
//   POST /onboarding/{serial}/abort
//   GET  /devices/{serial}/timeline       the device's timeline with durations
// Every transition is a history event, so the existing /api/v1/events stream carries them.
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { DeviceStore, HistoryEvent } from '../devices/store.js';
import { ZtpError } from '../errors.js';
import type { Conductor } from './conductor.js';
import { JOB_STATUSES, type Job } from './job.js';
import { publicJob } from './jobs.js';
import { currentAttempt, timeline } from './timeline.js';

export interface OnboardingApiOptions {
  conductor: Conductor | undefined;
  store: DeviceStore;
}

function conductorOf(o: OnboardingApiOptions): Conductor {
  if (!o.conductor) throw new ZtpError('ONBOARDING_DISABLED', 'the onboarding conductor is disabled on this server (onboarding.enabled=false)');
  return o.conductor;
}

function counts(jobs: Job[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0]));
  for (const j of jobs) out[j.status] = (out[j.status] ?? 0) + 1;
  return out;
}

function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new ZtpError('ONBOARDING_INVALID', 'body must be a JSON object');
  return body as Record<string, unknown>;
}

export const onboardingApiRoutes: FastifyPluginAsync<OnboardingApiOptions> = async (app: FastifyInstance, opts) => {
  // Open streams end when the server closes, so a shutdown never waits on a watcher.
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });

  app.post('/onboarding', async (req) => {
    const conductor = conductorOf(opts);
    const body = bodyObject(req.body);
    for (const key of Object.keys(body)) if (!['serials', 'all', 'concurrency', 'restart'].includes(key)) throw new ZtpError('ONBOARDING_INVALID', `unknown field "${key}"`);
    let serials: string[];
    if (body.all === true) {
      if (body.serials !== undefined) throw new ZtpError('ONBOARDING_INVALID', 'give serials or all, not both');
      serials = opts.store.list().map((d) => d.serial);
    } else {
      if (!Array.isArray(body.serials) || body.serials.length === 0 || !body.serials.every((s) => typeof s === 'string' && s.length > 0)) {
        throw new ZtpError('ONBOARDING_INVALID', 'serials must be a non-empty list of serial numbers (or all: true)');
      }
      serials = [...new Set(body.serials as string[])];
    }
    const concurrency = body.concurrency;
    if (concurrency !== undefined && (typeof concurrency !== 'number' || !Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100_000)) {
      throw new ZtpError('ONBOARDING_INVALID', 'concurrency must be a whole number from 1 to 100000');
    }
    const results = conductor.onboard(serials, { ...(concurrency !== undefined ? { concurrency } : {}), restart: body.restart === true, actor: 'api' });
    return {
      results: results.map((r) => ({ serial: r.serial, outcome: r.outcome, ...(r.reason ? { reason: r.reason } : {}), ...(r.job ? { job: publicJob(r.job) } : {}) })),
      summary: { queued: results.filter((r) => r.outcome === 'queued').length, unchanged: results.filter((r) => r.outcome === 'unchanged').length, refused: results.filter((r) => r.outcome === 'refused').length },
    };
  });

  app.get('/onboarding', async (req) => {
    const conductor = conductorOf(opts);
    const status = (req.query as { status?: string }).status;
    const jobs = conductor.list();
    return { counts: counts(jobs), jobs: jobs.filter((j) => !status || j.status === status).map(publicJob) };
  });

  app.get('/onboarding/:serial', async (req) => {
    const { serial } = req.params as { serial: string };
    const conductor = conductorOf(opts);
    opts.store.require(serial);
    const job = conductor.job(serial);
    if (!job) throw new ZtpError('ONBOARDING_NOT_FOUND', `${serial} has no onboarding job`, { details: { serial } });
    return { job: publicJob(job) };
  });

  app.post('/onboarding/:serial/retry', async (req) => {
    const { serial } = req.params as { serial: string };
    const body = bodyObject(req.body);
    const from = body.from ?? 'step';
    if (from !== 'step' && from !== 'start') throw new ZtpError('ONBOARDING_INVALID', 'from must be "step" or "start"');
    return { job: publicJob(conductorOf(opts).retry(serial, from, 'api')) };
  });

  app.post('/onboarding/:serial/abort', async (req) => {
    const { serial } = req.params as { serial: string };
    return { job: publicJob(conductorOf(opts).abort(serial, 'api')) };
  });

  // A filtered live stream for `ztp onboard --wait`: a snapshot of the jobs, then every history
  // event of those devices as it commits (replayed from ?after= first, so a reconnect loses none).
  app.get('/onboarding/stream', async (req, reply) => {
    const conductor = conductorOf(opts);
    const q = req.query as { serial?: string | string[]; after?: string };
    const wanted = q.serial === undefined ? undefined : new Set(Array.isArray(q.serial) ? q.serial : q.serial.split(',').filter(Boolean));
    const after = Math.max(0, Number.parseInt(q.after ?? '0', 10) || 0);
    const keep = (e: HistoryEvent) => e.serial !== null && (!wanted || wanted.has(e.serial));
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (event: string, data: unknown, id?: number) => res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    let last = after;
    const onEvent = (e: HistoryEvent) => {
      if (e.id > last && keep(e)) {
        last = e.id;
        send('history', e, e.id);
      }
    };
    if (after > 0) {
      for (let page = opts.store.eventsAfter(after, 1000); page.length; page = opts.store.eventsAfter(page[page.length - 1]!.id, 1000)) {
        for (const e of page) onEvent(e);
        if (page.length < 1000) break;
      }
    }
    send('snapshot', { jobs: conductor.list().filter((j) => !wanted || wanted.has(j.serial)).map(publicJob) });
    opts.store.events.on('event', onEvent);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    keepAlive.unref();
    streams.add(res);
    const close = () => {
      streams.delete(res);
      clearInterval(keepAlive);
      opts.store.events.off('event', onEvent);
    };
    req.raw.on('close', close);
    res.on('error', close);
    return reply;
  });

  app.get('/devices/:serial/timeline', async (req) => {
    const { serial } = req.params as { serial: string };
    opts.store.require(serial);
    const q = req.query as { all?: string };
    const job = opts.conductor?.job(serial);
    const events = opts.store.recentHistory(serial, 10_000);
    return { serial, job: job ? publicJob(job) : null, entries: timeline(q.all === 'true' ? events : currentAttempt(events, job?.attempt)) };
  });
};
