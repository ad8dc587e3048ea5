// The admin API through inject(): bearer auth, device CRUD, import, history, events, metrics.
import { describe, expect, it } from 'vitest';
import { buildApiApp } from '../../src/api/app.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { BMC_STRING_FIELDS, KNOWN_FIELDS } from '../../src/devices/model.js';
import { silentLogger } from '../../src/log.js';

function setup() {
  const store = new DeviceStore(openDatabase({ file: ':memory:' }));
  const app = buildApiApp({ store, log: silentLogger, token: 'tok' });
  const auth = { authorization: 'Bearer tok' };
  return { store, app, auth };
}

describe('admin API', () => {
  it('refuses requests without the bearer token, serves OpenAPI and health without', async () => {
    const { app } = setup();
    expect((await app.inject({ method: 'GET', url: '/api/v1/devices' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/api/v1/devices', headers: { authorization: 'Bearer nope' } })).statusCode).toBe(401);
    const openapi = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    expect(openapi.json().openapi).toBe('3.1.0');
    // The document describes what the API accepts: DeviceInput lists exactly the parser's fields.
    const input = openapi.json().components.schemas.DeviceInput;
    expect(Object.keys(input.properties).sort()).toEqual([...KNOWN_FIELDS].sort());
    expect(Object.keys(input.properties.bmc.properties).sort()).toEqual(['address', 'insecure', 'operationMode', ...BMC_STRING_FIELDS].sort());
    expect(openapi.json().webhooks['onboarding.transition'].post.requestBody).toBeDefined();
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
  });

  it('creates, updates idempotently, shows and removes devices; never returns secrets', async () => {
    const { app, auth } = setup();
    const body = { serial: 'A1', password: 'pw', profile: 'opi', macs: ['02:00:00:00:00:01'], bmc: { address: 'https://bmc1', username: 'root', password: 'calvin' } };
    const created = await app.inject({ method: 'POST', url: '/api/v1/devices', headers: auth, payload: body });
    expect(created.statusCode).toBe(201);
    expect(created.body).not.toContain('calvin');
    expect(created.body).not.toContain('scrypt');
    expect(created.json().device.bmc).toMatchObject({ address: 'https://bmc1', hasPassword: true });
    const again = await app.inject({ method: 'PUT', url: '/api/v1/devices/A1', headers: auth, payload: { ...body, serial: undefined } });
    expect(again.json().outcome).toBe('unchanged');
    const shown = await app.inject({ method: 'GET', url: '/api/v1/devices/A1', headers: auth });
    expect(shown.json().history[0]).toMatchObject({ source: 'admin', type: 'device-added' });
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/devices/A1', headers: auth })).json()).toEqual({ serial: 'A1', removed: true });
    const gone = await app.inject({ method: 'GET', url: '/api/v1/devices/A1', headers: auth });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe('DEVICE_NOT_FOUND');
  });

  it('rejects invalid devices with 400 naming the field, and malformed JSON', async () => {
    const { app, auth } = setup();
    const bad = await app.inject({ method: 'POST', url: '/api/v1/devices', headers: auth, payload: { serial: 'A', profile: 'x' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'DEVICE_INVALID', details: { field: 'profile' } });
    const malformed = await app.inject({ method: 'POST', url: '/api/v1/devices', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"serial":' });
    expect(malformed.statusCode).toBe(400);
  });

  it('imports CSV all-or-nothing', async () => {
    const { app, auth, store } = setup();
    const bad = await app.inject({ method: 'POST', url: '/api/v1/devices/import', headers: { ...auth, 'content-type': 'text/csv' }, payload: 'serial,profile\nB1,opi\nB2,zzz\n' });
    expect(bad.statusCode).toBe(400);
    expect(store.count()).toBe(0);
    const ok = await app.inject({ method: 'POST', url: '/api/v1/devices/import', headers: { ...auth, 'content-type': 'text/csv' }, payload: 'serial,profile\nB1,opi\nB2,rfc8572\n' });
    expect(ok.json()).toMatchObject({ created: 2 });
  });

  it('history, events paging and metrics read the same store', async () => {
    const { app, auth, store } = setup();
    store.upsert({ serial: 'C1' });
    store.record({ serial: 'C1', source: 'bootstrap', type: 'progress', data: { progressType: 'bootstrap-complete' } });
    const history = await app.inject({ method: 'GET', url: '/api/v1/devices/C1/history?after=0', headers: auth });
    expect(history.json().events.map((e: { type: string }) => e.type)).toEqual(['device-added', 'progress']);
    const progress = await app.inject({ method: 'GET', url: '/api/v1/devices/C1/progress', headers: auth });
    expect(progress.json().reports).toHaveLength(1);
    const events = await app.inject({ method: 'GET', url: '/api/v1/events?after=1', headers: auth });
    expect(events.json().events).toHaveLength(1);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toContain('ztp_devices{state="onboarded"} 1');
    expect(metrics.body).toContain('ztp_history_events_total{source="bootstrap",type="progress"} 1');
    expect((await app.inject({ method: 'GET', url: '/api/v1/status', headers: auth })).json()).toEqual({ devices: 1, states: { onboarded: 1 } });
  });

  it('the dashboard page is served and the SSE stream delivers live events', async () => {
    const { app, store } = setup();
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('<script src="/dashboard.js" defer></script>');
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const port = (app.server.address() as { port: number }).port;
      const controller = new AbortController();
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/events`, { headers: { accept: 'text/event-stream', authorization: 'Bearer tok' }, signal: controller.signal });
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const reader = res.body!.getReader();
      store.upsert({ serial: 'LIVE-1' });
      let text = '';
      while (!text.includes('LIVE-1')) text += new TextDecoder().decode((await reader.read()).value);
      expect(text).toContain('event: history');
      controller.abort();
    } finally {
      await app.close();
    }
  });
});
