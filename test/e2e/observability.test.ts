// Issue 10 "Metrics, telemetry, health": two simulated DPUs behind emulated BMCs onboarded end to
// end by the suite (real sockets), with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP
// receiver in this test. Then:
//   - /metrics (prom-client) has HELP on every family and counts what happened: bootstrap RPCs by
//     outcome and profile (a wrong password as 401), progress reports, Redfish calls by operation,
//     step durations, image bytes, admin API requests, device states, process/event-loop metrics;
//   - the receiver got a span per onboarding job with a child per step, Redfish CLIENT spans under
//     the BMC steps that made them, SERVER spans for bootstrap RPCs, and progress reports as log
//     records.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { TERMINAL } from '../../src/onboarding/job.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import { ensureImage, registerDevices, type AdminApi } from '../../src/simulate/admin.js';
import { emulatedBmcs } from '../../src/simulate/bmcs.js';
import { directDhcp } from '../../src/simulate/dhcp.js';
import { VirtualLab } from '../../src/simulate/lab.js';
import { PROGRESS, JSON_TYPE, basic } from '../helpers/bootstrap.js';
import { startTestSuite, TEST_TOKEN, type TestSuite } from '../helpers/suite.js';

interface OtlpValue { stringValue?: string; intValue?: string | number; boolValue?: boolean }
interface OtlpAttr { key: string; value: OtlpValue }
interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: OtlpAttr[]; status?: { code?: number } }
interface OtlpLog { body?: OtlpValue; severityText?: string; attributes: OtlpAttr[] }

/** An OTLP/HTTP (JSON) collector: what a lab's OpenTelemetry Collector receives. */
class OtlpReceiver {
  readonly spans: OtlpSpan[] = [];
  readonly logs: OtlpLog[] = [];
  readonly contentTypes = new Set<string>();
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.contentTypes.add(String(req.headers['content-type']));
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown[]>;
        if (req.url === '/v1/traces') {
          for (const rs of body.resourceSpans as { scopeSpans: { spans: OtlpSpan[] }[] }[]) for (const ss of rs.scopeSpans) this.spans.push(...ss.spans);
        } else if (req.url === '/v1/logs') {
          for (const rl of body.resourceLogs as { scopeLogs: { logRecords: OtlpLog[] }[] }[]) for (const sl of rl.scopeLogs) this.logs.push(...sl.logRecords);
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address() as { port: number };
    return `http://127.0.0.1:${addr.port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

const attr = (a: OtlpAttr[], key: string) => {
  const v = a.find((x) => x.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? String(v.intValue) : v?.boolValue !== undefined ? String(v.boolValue) : undefined);
};

/** Sample value of one series in a Prometheus text exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : undefined;
}

const receiver = new OtlpReceiver();
let t: TestSuite;
let lab: VirtualLab | undefined;

beforeAll(async () => {
  const endpoint = await receiver.start();
  t = await startTestSuite('ztp-observability-', { env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'dpu-ztp-test' } });
});

afterAll(async () => {
  await lab?.stop();
  await t?.suite.stop();
  await receiver.stop();
});

describe('metrics and OpenTelemetry of an onboarding', () => {
  it('counts every service in /metrics and exports job, step, Redfish and RPC spans and progress logs over OTLP', async () => {
    const { suite } = t;
    const config = suite.ctx.config;
    const api: AdminApi = { url: t.apiBase, token: TEST_TOKEN };
    const image = await ensureImage(api, 'otel-os.img', randomBytes(32 * 1024));
    lab = await VirtualLab.create({
      count: 2,
      profile: 'rfc8572',
      serialPrefix: 'OTEL',
      macTag: 0x7d,
      bootImage: image.name,
      bootstrapUrl: `https://localhost:${config.bootstrap.port}`,
      serverCaPem: suite.ctx.pki.rootCaPem,
      masaCaPem: suite.ctx.pki.masa.certPem,
      issueIdevid: (serial) => issueDeviceIdentity(suite.ctx.pki, serial),
      dhcp: directDhcp(silentLogger),
      bmcs: emulatedBmcs({ log: silentLogger, quirks: () => 'generic', mediaCa: suite.ctx.pki.rootCaPem }),
      rangeBytes: 16 * 1024,
    });
    const serials = lab.devices.map((d) => d.serial).sort();
    expect((await registerDevices(api, lab.deviceRecords())).created).toBe(2);
    const conductor = suite.conductor!;
    conductor.onboard(lab.devices.map((d) => d.serial));
    const deadline = Date.now() + 60_000;
    while (lab.devices.some((d) => !TERMINAL.has(conductor.job(d.serial)?.status ?? 'queued'))) {
      if (Date.now() > deadline) throw new Error('onboarding did not finish within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const d of lab.devices) expect(conductor.job(d.serial)?.status, d.serial).toBe('complete');

    // A device with a wrong password: refused, counted as 401 under its profile, its span an error.
    const dispatcher = new Agent({ connect: { ca: suite.ctx.pki.rootCaPem } });
    const refused = await request(`${t.bootstrapBase}${PROGRESS}`, {
      method: 'POST',
      dispatcher,
      headers: { authorization: basic(lab.devices[0]!.serial, 'wrong-password'), 'content-type': JSON_TYPE, accept: JSON_TYPE },
      body: JSON.stringify({ 'ietf-sztp-bootstrap-server:input': { 'progress-type': 'bootstrap-initiated' } }),
    });
    await refused.body.dump();
    expect(refused.statusCode).toBe(401);
    await dispatcher.close();

    const scrape = await request(`${t.apiBase}/metrics`);
    const text = await scrape.body.text();
    expect(scrape.headers['content-type'], text.slice(0, 300)).toMatch(/^text\/plain; version=0\.0\.4/);
    // HELP and TYPE on every family.
    const typed = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    const helped = new Set([...text.matchAll(/^# HELP (\S+) \S/gm)].map((m) => m[1]!));
    expect(typed.length).toBeGreaterThan(20);
    for (const family of typed) expect(helped.has(family), `# HELP ${family}`).toBe(true);

    expect(sample(text, 'ztp_devices{state="onboarded"}')).toBe(2);
    expect(sample(text, 'ztp_onboarding_jobs{status="complete"}')).toBe(2);
    expect(sample(text, 'ztp_bootstrap_requests_total{rpc="get-bootstrapping-data",outcome="ok",profile="rfc8572"}')).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'ztp_bootstrap_requests_total{rpc="report-progress",outcome="ok",profile="rfc8572"}')).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'ztp_bootstrap_requests_total{rpc="report-progress",outcome="401",profile="unauthenticated"}')).toBe(1);
    expect(sample(text, 'ztp_bootstrap_progress_reports_total{type="bootstrap-complete"}')).toBe(2);
    // Redfish operations as the client names them (login, insert, reset, eject, ...).
    expect(sample(text, 'ztp_redfish_requests_total{method="POST",operation="insert",outcome="204"}')).toBe(2);
    expect(sample(text, 'ztp_redfish_requests_total{method="POST",operation="eject",outcome="204"}')).toBe(2);
    expect(sample(text, 'ztp_redfish_request_duration_seconds_count{method="POST",operation="reset"}')).toBe(2);
    expect(sample(text, 'ztp_onboarding_step_duration_seconds_count{step="power-on",outcome="done"}')).toBe(2);
    expect(sample(text, 'ztp_onboarding_step_duration_seconds_count{step="progress",outcome="done"}')).toBe(2);
    // The BMCs read the 32 KiB image as virtual media; the DPUs read it again as their boot image.
    expect(sample(text, 'ztp_image_bytes_served_total{protocol="http",view="bmc"}') ?? 0).toBeGreaterThan(0);
    expect(sample(text, 'ztp_http_requests_total{service="api",method="POST",status="201"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'ztp_history_events_total{source="bootstrap",type="progress"}')).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);

    // Stopping the suite flushes what is batched to the collector.
    await lab.stop();
    lab = undefined;
    await suite.stop();

    expect([...receiver.contentTypes]).toEqual(['application/json']);
    const spans = receiver.spans;
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const jobs = spans.filter((s) => s.name === 'onboarding job');
    expect(jobs.map((s) => attr(s.attributes, 'ztp.serial')).sort()).toEqual(serials);
    for (const job of jobs) {
      expect(attr(job.attributes, 'ztp.status')).toBe('complete');
      const steps = spans.filter((s) => s.parentSpanId === job.spanId).map((s) => s.name);
      expect(steps).toEqual(expect.arrayContaining(['onboarding step bmc-check', 'onboarding step media-insert', 'onboarding step power-on', 'onboarding step progress', 'onboarding step cleanup']));
    }
    // Redfish exchanges are CLIENT spans (kind 3) under the step that made them.
    const insert = spans.filter((s) => s.name === 'redfish POST' && attr(s.attributes, 'ztp.operation') === 'insert');
    expect(insert).toHaveLength(2);
    for (const s of insert) {
      expect(s.kind).toBe(3);
      const parent = byId.get(s.parentSpanId ?? '');
      expect(parent?.name).toBe('onboarding step media-insert');
      expect(attr(s.attributes, 'http.response.status_code')).toBe('204');
    }
    // Bootstrap RPCs are SERVER spans (kind 2); the refused one is an error (status code 2).
    const rpcs = spans.filter((s) => s.name === 'sztp get-bootstrapping-data');
    expect(rpcs.length).toBeGreaterThanOrEqual(2);
    expect(rpcs.every((s) => s.kind === 2 && attr(s.attributes, 'ztp.profile') === 'rfc8572')).toBe(true);
    const denied = spans.filter((s) => s.name === 'sztp report-progress' && attr(s.attributes, 'http.response.status_code') === '401');
    expect(denied).toHaveLength(1);
    expect(denied[0]!.status?.code).toBe(2);
    // Progress reports as log records, one per report, with the device's serial.
    const complete = receiver.logs.filter((l) => attr(l.attributes, 'ztp.progress_type') === 'bootstrap-complete');
    expect(complete.map((l) => attr(l.attributes, 'ztp.serial')).sort()).toEqual(serials);
    expect(complete.every((l) => l.severityText === 'INFO' && (l.body?.stringValue ?? '').startsWith('bootstrap-complete'))).toBe(true);
  }, 90_000);
});
