// The dashboard's files (src/api/static) as the admin API serves them (issue 12: without
// @fastify/static): every file under the strict CSP, revalidated by ETag / Last-Modified, HEAD
// without a body, nothing outside the directory and nothing that was not there at start.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_CSP, DASHBOARD_DIR, registerDashboard } from '../../src/api/dashboard.js';
import { silentLogger } from '../../src/log.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = Fastify();
  await app.register(async (scope) => registerDashboard(scope, silentLogger));
  await app.ready();
});
afterAll(() => app.close());

describe('dashboard files', () => {
  it('are shipped with this copy', () => {
    expect(DASHBOARD_DIR).toBeDefined();
  });

  it.each([
    ['/', 'index.html', 'text/html; charset=utf-8'],
    ['/index.html', 'index.html', 'text/html; charset=utf-8'],
    ['/dashboard.js', 'dashboard.js', 'application/javascript; charset=utf-8'],
    ['/dashboard.css', 'dashboard.css', 'text/css; charset=utf-8'],
  ])('%s: the file, its type, no-cache and the CSP', async (url, file, type) => {
    const res = await app.inject({ url });
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.equals(readFileSync(join(DASHBOARD_DIR!, file)))).toBe(true);
    expect(res.headers).toMatchObject({ 'content-type': type, 'cache-control': 'no-cache', 'content-security-policy': DASHBOARD_CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    expect(res.headers.etag).toMatch(/^W\/"[0-9a-f]+-[0-9a-f]+"$/);
    expect(Date.parse(String(res.headers['last-modified']))).toBeGreaterThan(0);
  });

  it('a reload revalidates: 304 for the current ETag or a later If-Modified-Since, 200 with the file otherwise', async () => {
    const first = await app.inject({ url: '/dashboard.js' });
    const etag = String(first.headers.etag);
    const lastModified = String(first.headers['last-modified']);
    const same = await app.inject({ url: '/dashboard.js', headers: { 'if-none-match': `"other", ${etag}` } });
    expect(same.statusCode).toBe(304);
    expect(same.body).toBe('');
    expect(same.headers).toMatchObject({ etag, 'content-security-policy': DASHBOARD_CSP });
    expect((await app.inject({ url: '/dashboard.js', headers: { 'if-none-match': '"something-else"' } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/dashboard.js', headers: { 'if-modified-since': lastModified } })).statusCode).toBe(304);
    expect((await app.inject({ url: '/dashboard.js', headers: { 'if-modified-since': new Date(Date.parse(lastModified) - 1000).toUTCString() } })).statusCode).toBe(200);
    // If-None-Match wins over If-Modified-Since
    expect((await app.inject({ url: '/dashboard.js', headers: { 'if-none-match': '"something-else"', 'if-modified-since': lastModified } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/dashboard.js', headers: { 'if-modified-since': 'not a date' } })).statusCode).toBe(200);
  });

  it('HEAD: the headers without the body', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(res.headers['content-length']).toBe(String(readFileSync(join(DASHBOARD_DIR!, 'index.html')).length));
  });

  it.each(['/../package.json', '/%2e%2e/package.json', '/static/index.html', '/nothing.js', '/index.html/', '//dashboard.js'])('%s is a 404', async (url) => {
    expect((await app.inject({ url })).statusCode).toBe(404);
  });
});
