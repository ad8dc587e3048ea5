// The configuration schema's building blocks, without loading TypeBox at start (issue 12).
// Importing '@sinclair/typebox' costs `ztp serve` ~85 ms of CPU and ~12 MB (it loads ~200 ES
// modules), its Value module as much again, to build and check a schema that uses eight kinds
// and a handful of JSON Schema keywords. This module builds the same schema objects TypeBox's
// Type builds (the same keys and kind symbols, so TypeBox's own functions and Static<> still
// apply), fills defaults and checks a document as TypeBox 0.34's Value.Default and Value.Check
// do for those keywords. test/unit/schema.test.ts compares both with TypeBox's on the whole
// configuration schema and on generated documents; config.ts asks TypeBox for the error only
// when the check fails, so the message a user sees is TypeBox's. A kind or keyword not handled
// here is refused (assertSupported), never checked loosely.
import type {
  ArrayOptions, IntegerOptions, NumberOptions, ObjectOptions, SchemaOptions, StringOptions,
  TArray, TBoolean, TInteger, TLiteral, TLiteralValue, TNumber, TObject, TOptional, TProperties, TSchema, TString, TUnion,
} from '@sinclair/typebox';

export type { Static, TObject, TSchema } from '@sinclair/typebox';

/** TypeBox marks every schema with its kind, and optional properties, under registered symbols. */
const Kind = Symbol.for('TypeBox.Kind');
const OptionalKind = Symbol.for('TypeBox.Optional');

/** As TypeBox's CreateType (default instance mode): the options, then the kind's own keys. */
const create = <T>(schema: object, options: object | undefined): T => ({ ...options, ...schema }) as T;

/** The subset of TypeBox's Type the configuration uses, building identical schema objects. */
export const Type = {
  Object<T extends TProperties>(properties: T, options?: ObjectOptions): TObject<T> {
    const required = Object.keys(properties).filter((name) => !(OptionalKind in properties[name]!));
    return create({ [Kind]: 'Object', type: 'object', ...(required.length > 0 ? { required } : {}), properties }, options);
  },
  Array<T extends TSchema>(items: T, options?: ArrayOptions): TArray<T> {
    return create({ [Kind]: 'Array', type: 'array', items }, options);
  },
  /** Two members or more (TypeBox turns fewer into Never or the member itself). */
  Union<T extends TSchema[]>(anyOf: [...T], options?: SchemaOptions): TUnion<T> {
    if (anyOf.length < 2) throw new Error('schema: a union needs two members or more');
    return create({ [Kind]: 'Union', anyOf }, options);
  },
  Literal<T extends TLiteralValue>(value: T, options?: SchemaOptions): TLiteral<T> {
    return create({ [Kind]: 'Literal', const: value, type: typeof value }, options);
  },
  Integer(options?: IntegerOptions): TInteger {
    return create({ [Kind]: 'Integer', type: 'integer' }, options);
  },
  Number(options?: NumberOptions): TNumber {
    return create({ [Kind]: 'Number', type: 'number' }, options);
  },
  String(options?: StringOptions): TString {
    return create({ [Kind]: 'String', type: 'string' }, options);
  },
  Boolean(options?: SchemaOptions): TBoolean {
    return create({ [Kind]: 'Boolean', type: 'boolean' }, options);
  },
  Optional<T extends TSchema>(schema: T): TOptional<T> {
    return { ...schema, [OptionalKind]: 'Optional' } as TOptional<T>;
  },
};

type Schema = Readonly<Record<string | symbol, unknown>>;

/** Keywords each kind may carry beyond annotations; anything else is refused. */
const HANDLED: Readonly<Record<string, readonly string[]>> = {
  Object: ['type', 'properties', 'required', 'additionalProperties'],
  Array: ['type', 'items', 'minItems', 'maxItems'],
  Union: ['anyOf'],
  Literal: ['type', 'const'],
  Integer: ['type', 'minimum', 'maximum'],
  Number: ['type', 'minimum', 'maximum'],
  String: ['type', 'minLength', 'maxLength'],
  Boolean: ['type'],
};
/** Keywords that describe, not constrain (`env` is ours: the setting's environment variable). */
const ANNOTATIONS = new Set(['default', 'description', 'title', 'examples', 'env']);

const kindOf = (schema: Schema): string => String(schema[Kind]);
const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object';

/** Throws when `schema` uses a kind or keyword these functions do not implement. */
export function assertSupported(schemaObject: object, path = '(root)'): void {
  const schema = schemaObject as Schema;
  const kind = kindOf(schema);
  const handled = HANDLED[kind];
  if (!handled) throw new Error(`schema: schema kind ${kind} at ${path} is not supported`);
  for (const key of Object.keys(schema)) {
    if (!handled.includes(key) && !ANNOTATIONS.has(key)) throw new Error(`schema: keyword "${key}" of ${kind} at ${path} is not supported`);
  }
  if (kind === 'Object') {
    if (schema.additionalProperties !== undefined && schema.additionalProperties !== false) throw new Error(`schema: additionalProperties other than false at ${path} is not supported`);
    for (const [name, sub] of Object.entries(schema.properties as Record<string, Schema>)) assertSupported(sub, `${path}.${name}`);
  } else if (kind === 'Array') {
    assertSupported(schema.items as Schema, `${path}[]`);
  } else if (kind === 'Union') {
    for (const sub of schema.anyOf as Schema[]) assertSupported(sub, path);
  }
}

/** A schema's default (cloned) where the value is missing; objects are merged over it, as TypeBox does. */
function valueOrDefault(schema: Schema, value: unknown): unknown {
  const fallback = 'default' in schema ? structuredClone(schema.default) : undefined;
  if (value === undefined) return fallback;
  return isObject(value) && isObject(fallback) ? Object.assign(fallback, value) : value;
}

/**
 * Fills missing values with schema defaults, in place where the value is an object or array
 * (as Value.Default does; pass a copy). Returns the filled value; it still has to be checked.
 */
export function fillDefaults(schemaObject: object, value: unknown): unknown {
  const schema = schemaObject as Schema;
  switch (kindOf(schema)) {
    case 'Object': {
      const filled = valueOrDefault(schema, value);
      if (!isObject(filled)) return filled;
      for (const [name, sub] of Object.entries(schema.properties as Record<string, Schema>)) {
        const property = fillDefaults(sub, filled[name]);
        if (property !== undefined) filled[name] = property;
      }
      return filled;
    }
    case 'Array': {
      const filled = Array.isArray(value) ? value : valueOrDefault(schema, value);
      if (!Array.isArray(filled)) return filled;
      for (let i = 0; i < filled.length; i++) filled[i] = fillDefaults(schema.items as Schema, filled[i]);
      return filled;
    }
    case 'Union': {
      // TypeBox fills each member on a copy and keeps the first that then checks.
      const filled = valueOrDefault(schema, value);
      for (const member of schema.anyOf as Schema[]) {
        const candidate = fillDefaults(member, structuredClone(filled));
        if (conforms(member, candidate)) return candidate;
      }
      return filled;
    }
    default:
      return valueOrDefault(schema, value);
  }
}

const within = (schema: Schema, n: number): boolean =>
  (schema.minimum === undefined || n >= (schema.minimum as number)) && (schema.maximum === undefined || n <= (schema.maximum as number));
const lengthWithin = (schema: Schema, n: number, min: string, max: string): boolean =>
  (schema[min] === undefined || n >= (schema[min] as number)) && (schema[max] === undefined || n <= (schema[max] as number));

/** Does `value` satisfy `schema` (Value.Check's answer for the supported keywords)? */
export function conforms(schemaObject: object, value: unknown): boolean {
  const schema = schemaObject as Schema;
  switch (kindOf(schema)) {
    case 'Object': {
      if (!isObject(value) || Array.isArray(value)) return false;
      const properties = schema.properties as Record<string, Schema>;
      const required = (schema.required as string[] | undefined) ?? [];
      for (const [name, sub] of Object.entries(properties)) {
        // An optional property is checked only when it holds something other than undefined.
        if ((required.includes(name) || value[name] !== undefined) && !conforms(sub, value[name])) return false;
      }
      return schema.additionalProperties !== false || Object.getOwnPropertyNames(value).every((name) => Object.hasOwn(properties, name));
    }
    case 'Array':
      return Array.isArray(value) && lengthWithin(schema, value.length, 'minItems', 'maxItems') && value.every((item) => conforms(schema.items as Schema, item));
    case 'Union':
      return (schema.anyOf as Schema[]).some((member) => conforms(member, value));
    case 'Literal':
      return value === schema.const;
    case 'Integer':
      return Number.isInteger(value) && within(schema, value as number);
    case 'Number':
      return Number.isFinite(value) && within(schema, value as number);
    case 'String':
      return typeof value === 'string' && lengthWithin(schema, value.length, 'minLength', 'maxLength');
    case 'Boolean':
      return typeof value === 'boolean';
    default:
      throw new Error(`schema: schema kind ${kindOf(schema)} is not supported`);
  }
}
