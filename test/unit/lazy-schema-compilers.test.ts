// Issue 12: fastify loads ajv and fast-json-stringify's compiler for every app it creates; with
// lazySchemaCompilers they load only when a route has a schema, and then work as the defaults do.
import { createRequire } from 'node:module';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { lazySchemaCompilers } from '../../src/http/lazy-schema-compilers.js';

const cjsCache = createRequire(import.meta.url).cache;
const ajvLoaded = () => Object.keys(cjsCache).some((file) => /node_modules\/ajv\//.test(file));

describe('fastify schema compilers loaded on first use', () => {
  it('an app whose routes have no schema does not load ajv; a route with one loads it and validates and serialises as the defaults do', async () => {
    expect(ajvLoaded()).toBe(false); // this worker has not loaded it yet
    const plain = Fastify({ schemaController: lazySchemaCompilers });
    plain.get('/', async () => ({ ok: true }));
    await plain.ready();
    expect((await plain.inject({ url: '/' })).json()).toEqual({ ok: true });
    expect(ajvLoaded()).toBe(false);

    const checked = Fastify({ schemaController: lazySchemaCompilers });
    checked.post('/items', {
      schema: {
        body: { type: 'object', required: ['count'], properties: { count: { type: 'integer', minimum: 1 } }, additionalProperties: false },
        response: { 200: { type: 'object', properties: { count: { type: 'integer' } } } },
      },
    }, async (req) => ({ count: (req.body as { count: number }).count, secret: 'not in the response schema' }));
    await checked.ready();
    expect(ajvLoaded()).toBe(true);
    const bad = await checked.inject({ method: 'POST', url: '/items', payload: { count: 0 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'FST_ERR_VALIDATION', message: 'body/count must be >= 1' });
    const good = await checked.inject({ method: 'POST', url: '/items', payload: { count: '3' } });
    // ajv's default coercion, and the response serialiser drops what its schema does not list
    expect(good.statusCode).toBe(200);
    expect(good.body).toBe('{"count":3}');
    await Promise.all([plain.close(), checked.close()]);
  });
});
