// The live dashboard: plain HTML, CSS and JS files in src/api/static/ (no framework, no build
// step), served by @fastify/static under a strict Content-Security-Policy: nothing inline,
// nothing from elsewhere, connections only to this origin. The files are read from a `static`
// directory beside this module if a build copied one there, else from the source tree above it
// (src/api/ for tests, dist/api/ for `ztp serve`, bench/out/*/api/ for the benches).
//
// The admin token is typed into the page's sign-in form and kept in sessionStorage; every request
// carries it as a bearer header (the event stream is read with fetch(), not EventSource), so it
// is never in a URL.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
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

/** Serves / (index.html) and its assets; only the files present at start-up (no wildcard route). */
export async function registerDashboard(app: FastifyInstance, log: Logger): Promise<void> {
  if (!DASHBOARD_DIR) {
    // The API works without it; say why / is a 404.
    log.warn({}, 'dashboard files (src/api/static) are not in this installation; / is not served');
    return;
  }
  await app.register(fastifyStatic, {
    root: DASHBOARD_DIR,
    wildcard: false,
    index: 'index.html',
    // A new version must reach open browsers on reload; the files are small.
    cacheControl: false,
    decorateReply: false,
    setHeaders: (reply) => {
      reply.header('cache-control', 'no-cache');
      reply.header('content-security-policy', DASHBOARD_CSP);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
    },
  });
}
