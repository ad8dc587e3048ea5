// Fastify sets up its default JSON Schema compilers (ajv with ajv-formats for validation,
// fast-json-stringify for response serialisation) whenever an app is created, whether or not a
// route has a schema: ~30 ms of CPU and ~3.5 MB for a process that creates apps (issue 12,
// measured with three apps), and the suite's routes have no schemas. These factories load the
// same defaults, from fastify's own dependencies, the first time a route needs one. Every app of
// a process must use them: one app without them loads ajv for all.
// One difference from the defaults: fastify then treats the validator as custom, which matters
// only for a `headers` schema (it no longer lower-cases that schema's property names).
import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type SchemaController = NonNullable<FastifyServerOptions['schemaController']>;
/** What @fastify/ajv-compiler and @fastify/fast-json-stringify-compiler build (typed loosely: fastify checks the shape). */
type Factory = (externalSchemas: unknown, options: unknown) => unknown;

/** require() as fastify resolves its own dependencies (they are not ours to name in package.json). */
const requireFromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));

let validatorFactory: Factory | undefined;
let serializerFactory: Factory | undefined;

const buildValidator: Factory = (externalSchemas, options) => {
  validatorFactory ??= (requireFromFastify('@fastify/ajv-compiler') as () => Factory)();
  return validatorFactory(externalSchemas, options);
};
const buildSerializer: Factory = (externalSchemas, options) => {
  serializerFactory ??= (requireFromFastify('@fastify/fast-json-stringify-compiler') as () => Factory)();
  return serializerFactory(externalSchemas, options);
};

/** Pass as `schemaController` to Fastify(): the default compilers, loaded on first use. */
export const lazySchemaCompilers = { compilersFactory: { buildValidator, buildSerializer } } as unknown as SchemaController;
