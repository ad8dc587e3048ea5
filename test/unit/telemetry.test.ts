// The OTEL environment as the OpenTelemetry spec defines it, read from the env the suite is given.
import { createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../src/log.js';
import * as otelApi from '@opentelemetry/api';
import { noTelemetry, otlpRequested, parseOtlpHeaders, signalUrl, SpanKind, SpanStatusCode, startTelemetry } from '../../src/telemetry.js';

describe('OpenTelemetry environment', () => {
  it('exports only when an OTLP endpoint is set, and OTEL_SDK_DISABLED=true wins', async () => {
    expect(otlpRequested({})).toBe(false);
    expect(otlpRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(true);
    expect(otlpRequested({ OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://c:4318/v1/logs' })).toBe(true);
    expect(otlpRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' })).toBe(false);
    expect(await startTelemetry({}, silentLogger)).toBe(noTelemetry);
    // The no-op path runs what it is given and starts nothing.
    expect(noTelemetry.startSpan('x')).toBeUndefined();
    expect(noTelemetry.withSpan(undefined, () => 42)).toBe(42);
  });

  it('signal URLs: the per-signal variable as is, else the base with /v1/<signal>', () => {
    expect(signalUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, 'traces')).toBe('http://c:4318/v1/traces');
    expect(signalUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/otlp/' }, 'logs')).toBe('http://c:4318/otlp/v1/logs');
    expect(signalUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x' }, 'traces')).toBe('http://t:1/x');
    expect(signalUrl({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x' }, 'logs')).toBe('http://localhost:4318/v1/logs');
  });

  it('OTEL_EXPORTER_OTLP_HEADERS: comma-separated k=v, URL-decoded, malformed pairs skipped', () => {
    expect(parseOtlpHeaders(undefined)).toEqual({});
    expect(parseOtlpHeaders('api-key=s%3Dcret, x-tenant = lab1,broken,=nokey,bad=%E0%A4%A')).toEqual({ 'api-key': 's=cret', 'x-tenant': 'lab1' });
  });
});

describe('the API enums, defined without loading @opentelemetry/api (issue 12)', () => {
  it('SpanKind and SpanStatusCode carry the numbers of the API enums', () => {
    const members = (e: object) => Object.fromEntries(Object.entries(e).filter(([k]) => !/^\d+$/.test(k)));
    expect(SpanKind).toStrictEqual(members(otelApi.SpanKind));
    expect(SpanStatusCode).toStrictEqual(members(otelApi.SpanStatusCode));
  });
});

describe('a collector that never answers', () => {
  it('does not hold up shutdown: the last flush is abandoned with a warning', async () => {
    // Accepts connections and reads requests, never replies (a hung collector or proxy).
    const sockets: Socket[] = [];
    const hung = createServer((s) => {
      sockets.push(s);
      s.resume();
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const lines: string[] = [];
    const log = createLogger('warn', { write: (l: string) => lines.push(l) });
    try {
      const telemetry = await startTelemetry({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(hung.address() as { port: number }).port}` }, log);
      expect(telemetry.enabled).toBe(true);
      telemetry.startSpan('work')?.end();
      telemetry.emitLog('progress', 'INFO');
      // Without the bound the processors wait out their export timeouts; the test's own
      // timeout below is shorter than those would be together with the 30 s SDK default.
      await telemetry.shutdown();
      expect(lines.some((l) => l.includes('did not take the last batch in time'))).toBe(true);
      expect(sockets.length).toBeGreaterThan(0);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => hung.close(() => r()));
    }
  }, 10_000);
});
