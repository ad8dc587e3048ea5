// The live dashboard: plain HTML, CSS and JS files in src/api/static/ (no framework, no build
// step), served under a strict Content-Security-Policy: nothing inline, nothing from elsewhere,
// connections only to this origin. The files are read from a `static` directory beside this
// module if a build copied one there, else from the source tree above it (src/api/ for tests,
// dist/api/ for `ztp serve`, bench/out/*/api/ for the benches).
//
// Three small files: served here, not by @fastify/static, whose import (with glob, send, mime,
// ...) cost every `ztp serve` start ~30 ms of CPU and ~3 MB before anyone opened the dashboard
// (issue 12, bench/startup). Each file present at start gets a route (no wildcard), is read on
// each request (a new version reaches open browsers on reload) and revalidated by ETag and
// Last-Modified (304); HEAD is answered by fastify from the GET route. No ranges: the files
// are small and a browser loads them whole.
//
// The admin token is typed into the page's sign-in form and kept in sessionStorage; every request
// carries it as a bearer header (the event stream is read with fetch(), not EventSource), so it
// is never in a URL.
import { existsSync, readdirSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';

/** Where the dashboard's files are (undefined: not shipped with this copy). */
export const DASHBOARD_DIR = findDashboardDir();

function findDashboardDir(): string | undefined {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const beside = join(here, 'static');
  if (existsSync(join(beside, 'index.html'))) return beside;
  for (let dir = here; dirname(dir) !== dir; dir = dirname(dir)) {
    const source = join(dir, 'src', 'api', 'static');
    if (existsSync(join(source, 'index.html'))) return source;
  }
  return undefined;
}

/** For every dashboard response: only this origin's script, style and API. */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The types the dashboard's files need; another kind of file is not served. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** A file's validator: weak, from its size and modification time (as @fastify/send makes it). */
const etagOf = (size: number, mtimeMs: number) => `W/"${size.toString(16)}-${mtimeMs.toString(16)}"`;

/** Is the client's copy current (RFC 9110 13.1.2 and 13.1.3; If-None-Match wins when present)? */
function notModified(req: FastifyRequest, etag: string, mtimeMs: number): boolean {
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag.replace(/^W\//, ''));
  }
  const since = Date.parse(req.headers['if-modified-since'] ?? '');
  return Number.isFinite(since) && Math.floor(mtimeMs / 1000) * 1000 <= since;
}

async function sendFile(req: FastifyRequest, reply: FastifyReply, file: string, type: string): Promise<FastifyReply> {
  const info = await stat(file).catch(() => undefined);
  if (!info) {
    // removed since start (an upgrade in progress): as if it had never been there
    reply.callNotFound();
    return reply;
  }
  const mtimeMs = info.mtime.getTime();
  const etag = etagOf(info.size, mtimeMs);
  reply.headers({
    'cache-control': 'no-cache',
    'content-security-policy': DASHBOARD_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    etag,
    'last-modified': info.mtime.toUTCString(),
  });
  if (notModified(req, etag, mtimeMs)) return reply.code(304).send();
  return reply.type(type).send(await readFile(file));
}

/** Serves / (index.html) and its assets; only the files present at start-up (no wildcard route). */
export async function registerDashboard(app: FastifyInstance, log: Logger): Promise<void> {
  if (!DASHBOARD_DIR) {
    // The API works without it; say why / is a 404.
    log.warn({}, 'dashboard files (src/api/static) are not in this installation; / is not served');
    return;
  }
  const dir = DASHBOARD_DIR;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const type = CONTENT_TYPES[extname(entry.name)];
    if (!entry.isFile() || !type) continue;
    const file = join(dir, entry.name);
    const handler = (req: FastifyRequest, reply: FastifyReply) => sendFile(req, reply, file, type);
    app.get(`/${entry.name}`, handler);
    if (entry.name === 'index.html') app.get('/', handler);
  }
}
