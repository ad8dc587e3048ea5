// The OpenAPI document and the admin app cannot drift: every route the app registers (with the
// plugins ztp serve mounts, as src/suite.ts does) is documented with its methods, and every
// documented operation is served. Issue 10: /api/v1/images was missing.
import { mkdtempSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApiApp } from '../../src/api/app.js';
import { OPENAPI } from '../../src/api/openapi.js';
import { validateConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { imagesApiRoutes } from '../../src/images/api.js';
import { ImageCatalogue } from '../../src/images/catalogue.js';
import { silentLogger } from '../../src/log.js';
import { onboardingApiRoutes } from '../../src/onboarding/api.js';

const dir = mkdtempSync(join(tmpdir(), 'ztp-openapi-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const asPlugin = (plugin: unknown) => plugin as FastifyPluginAsync<Record<string, unknown>>;

/** The admin app with the plugins src/suite.ts mounts (images API, onboarding API). */
function adminApp() {
  const config = validateConfig({ dataDir: dir, publicHost: 'ztp.lab' });
  const db = openDatabase({ file: join(dir, 'ztp.db') });
  const store = new DeviceStore(db);
  const catalogue = new ImageCatalogue(db, join(dir, 'images'));
  const app = buildApiApp({
    store,
    log: silentLogger,
    token: 'tok',

    imageKnown: (name) => catalogue.get(name) !== undefined,
    plugins: [
      { prefix: '', plugin: asPlugin(imagesApiRoutes), options: { catalogue, store, log: silentLogger, config, publicHost: 'ztp.lab' } },
      { prefix: '', plugin: asPlugin(onboardingApiRoutes), options: { conductor: undefined, store } },
    ],
  });
  return { app, store, db };
}

/** Every route as `METHOD /path/:param`, from fastify's own route tree (HEAD twins left out). */
async function registeredRoutes(app: FastifyInstance): Promise<Set<string>> {
  await app.ready();
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)(?:[└├]── )?(\S+) \(([A-Z, ]+)\)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4 + (line.includes('── ') ? 1 : 0);
    const parent = stack[depth - 1] ?? '';
    const path = m[2]!.startsWith('/') ? parent.replace(/\/$/, '') + m[2]! : `${parent.replace(/\/$/, '')}/${m[2]!}`;
    stack[depth] = path;
    stack.length = depth + 1;
    for (const method of m[3]!.split(', ')) if (method !== 'HEAD') out.add(`${method} ${path}`);
  }
  return out;
}

function documentedRoutes(): Set<string> {
  const out = new Set<string>();
  for (const [path, item] of Object.entries(OPENAPI.paths)) {
    for (const method of Object.keys(item)) out.add(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`);
  }
  return out;
}

// The dashboard's page and assets are for browsers, not API clients.
const isDashboardAsset = (route: string) => !/^[A-Z]+ \/(api\/|metrics$|healthz$|readyz$)/.test(route);

describe('OpenAPI document', () => {
  it('documents every route the admin app registers, and only those', async () => {
    const { app } = adminApp();
    const registered = await registeredRoutes(app);
    expect(registered.size).toBeGreaterThan(20);
    expect(registered).toContain('GET /api/v1/devices/:serial/history');
    const api = [...registered].filter((r) => !isDashboardAsset(r));
    expect(api.filter((r) => !documentedRoutes().has(r)), 'registered but not documented').toEqual([]);
    expect([...documentedRoutes()].filter((r) => !registered.has(r)), 'documented but not registered').toEqual([]);
    await app.close();
  });

  it('the route reader sees nested plugin routes (the images API is there)', async () => {
    const { app } = adminApp();
    const registered = await registeredRoutes(app);
    for (const r of ['GET /api/v1/images', 'POST /api/v1/images', 'GET /api/v1/images/:name', 'DELETE /api/v1/images/:name', 'POST /api/v1/onboarding/:serial/retry']) expect(registered, r).toContain(r);
    await app.close();
  });

  it('the served document is this one, with the image schema and the state enum', async () => {
    const { app } = adminApp();
    const res = await app.inject({ url: '/api/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as typeof OPENAPI;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/images', '/api/v1/images/{name}']));
    expect(doc.components.schemas.Image.properties.sha256).toBeDefined();
    expect(doc.paths['/api/v1/devices'].get.parameters[0]!.schema.enum).toContain('onboarded');
    await app.close();
  });
});

describe('DELETE /api/v1/images/{name} while a device boots it', () => {
  it('409 IMAGES_IN_USE tells an API client to add ?force=true (not the CLI\'s --force); with it, 200', async () => {
    const { app, store } = adminApp();
    const auth = { authorization: 'Bearer tok' };
    const up = await app.inject({ method: 'POST', url: '/api/v1/images?name=os.img', headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: Readable.from([Buffer.from('dpu os bytes')]) });
    expect(up.statusCode).toBe(201);
    store.upsert({ serial: 'IMG-1', bootImage: 'os.img' }, 'test');
    const refused = await app.inject({ method: 'DELETE', url: '/api/v1/images/os.img', headers: auth });
    expect(refused.statusCode).toBe(409);
    const error = refused.json().error as { code: string; message: string; details: { devices: string[] } };
    expect(error.code).toBe('IMAGES_IN_USE');
    expect(error.message).toMatch(/\?force=true/);
    expect(error.message).not.toMatch(/--force/);
    expect(error.details.devices).toEqual(['IMG-1']);
    const forced = await app.inject({ method: 'DELETE', url: '/api/v1/images/os.img?force=true', headers: auth });
    expect(forced.statusCode).toBe(200);
    expect(forced.json()).toMatchObject({ removed: true, referencedBy: ['IMG-1'] });
    await app.close();
  });
});
