// The live dashboard: plain HTML, CSS and JS files in src/api/static/ (no framework, no build
// step), served by @fastify/static under a strict Content-Security-Policy: nothing inline,
// nothing from elsewhere, connections only to this origin. The files are read from the source
// tree both when run from src/ (tests) and from dist/ (`ztp serve`): the same relative path
// reaches them from src/api/ and dist/api/.
//
// The admin token is typed into the page's sign-in form and kept in sessionStorage; every request
// carries it as a bearer header (the event stream is read with fetch(), not EventSource), so it
// is never in a URL.
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Where the dashboard's files are, from src/api/ or dist/api/ alike. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../src/api/static/', import.meta.url));

/** For every dashboard response: only this origin's script, style and API. */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Serves / (index.html) and its assets; only the files present at start-up (no wildcard route). */
export async function registerDashboard(app: FastifyInstance): Promise<void> {
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
