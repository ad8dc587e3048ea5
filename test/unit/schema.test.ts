// Issue 12: `ztp serve` builds and checks its configuration schema with src/schema.ts instead of
// loading TypeBox at every start. Its builders must make what TypeBox's Type makes (compared on
// the whole configuration schema), and its check must answer what Value.Default and Value.Check
// answer, for every document: compared on documents generated from the schema itself (mostly
// well-formed, some with wrong types, out-of-range numbers, unknown keys, missing properties,
// nulls and arbitrary JSON), and on the edges of each kind.
import { Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertSupported, conforms, fillDefaults, Type as OurType } from '../../src/schema.js';
import { ConfigSchema, validateConfig } from '../../src/config.js';
import type { ZtpError } from '../../src/errors.js';

const Kind = Symbol.for('TypeBox.Kind');
const OptionalKind = Symbol.for('TypeBox.Optional');

/** Something that is not what `schema` wants, or is at its edge. */
const wrong: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, undefined, '', 'x', 0, -1, 1.5, 1e9, true, false, [], {}, NaN, Infinity, '8443', [1], { a: 1 }),
  fc.jsonValue({ maxDepth: 2 }),
);

/**
 * Documents shaped by `schema`. Noisy ones are wrong at some nodes (a wrong type, a number out of
 * range, an unknown key, a missing required property); clean ones are valid, defaults aside.
 */
function documentOf(schema: TSchema, noisy: boolean, depth = 0): fc.Arbitrary<unknown> {
  const s = schema as TSchema & Record<string, unknown>;
  let right: fc.Arbitrary<unknown>;
  switch (s[Kind as unknown as string] as string) {
    case 'Object': {
      const properties = s.properties as Record<string, TSchema>;
      const required = (s.required as string[] | undefined) ?? [];
      const entries = Object.entries(properties).map(([name, sub]) => {
        const value = documentOf(sub, noisy, depth + 1);
        return fc.tuple(fc.constant(name), !noisy && required.includes(name) ? value : fc.option(value, { nil: undefined, freq: 2 }));
      });
      const extra = noisy ? fc.option(fc.constantFrom('colour', 'prot', 'Port'), { freq: 8 }) : fc.constant(null);
      right = fc.tuple(fc.tuple(...entries), extra).map(([pairs, unknownKey]) => {
        const out: Record<string, unknown> = {};
        // absent is the common case (defaults fill it); an explicit undefined is kept sometimes
        for (const [name, value] of pairs) if (value !== undefined || name.length % 3 === 0) out[name] = value;
        if (unknownKey) out[unknownKey] = 1;
        return out;
      });
      break;
    }
    case 'Array':
      right = depth > 6 ? fc.constant([]) : fc.array(documentOf(s.items as TSchema, noisy, depth + 1), { maxLength: 3 });
      break;
    case 'Union':
      right = fc.oneof(...(s.anyOf as TSchema[]).map((m) => documentOf(m, noisy, depth + 1)));
      break;
    case 'Literal':
      right = fc.constant(s.const);
      break;
    case 'Integer':
    case 'Number': {
      const min = (s.minimum as number | undefined) ?? -1000;
      const max = (s.maximum as number | undefined) ?? min + 100_000;
      const inRange = fc.integer({ min: Math.ceil(min), max: Math.floor(max) });
      right = noisy ? fc.oneof(inRange, fc.constantFrom(min - 1, max + 1, min, max), fc.double({ min, max, noNaN: true })) : inRange;
      break;
    }
    case 'String': {
      const minLength = (s.minLength as number | undefined) ?? 0;
      right = fc.oneof(fc.string({ minLength, maxLength: 8 }), fc.constantFrom('https://x.example', '10.0.0.0/24'), ...(noisy ? [fc.constant('')] : []));
      break;
    }
    case 'Boolean':
      right = fc.boolean();
      break;
    default:
      throw new Error(`no generator for ${String(s[Kind as unknown as string])}`);
  }
  return noisy ? fc.oneof({ arbitrary: right, weight: 30 }, { arbitrary: wrong, weight: 1 }) : right;
}

/** The same schema built by TypeBox's own Type from each node's kind and options. */
function rebuiltByTypebox(schema: TSchema): TSchema {
  const s = schema as TSchema & Record<string, unknown>;
  const kind = s[Kind as unknown as string] as string;
  const options = (...structural: string[]) => Object.fromEntries(Object.entries(s).filter(([key]) => !structural.includes(key)));
  const built = ((): TSchema => {
    switch (kind) {
      case 'Object':
        return Type.Object(Object.fromEntries(Object.entries(s.properties as Record<string, TSchema>).map(([name, sub]) => [name, rebuiltByTypebox(sub)])), options('type', 'properties', 'required'));
      case 'Array':
        return Type.Array(rebuiltByTypebox(s.items as TSchema), options('type', 'items'));
      case 'Union':
        return Type.Union((s.anyOf as TSchema[]).map(rebuiltByTypebox), options('anyOf'));
      case 'Literal':
        return Type.Literal(s.const as string, options('type', 'const'));
      case 'Integer':
        return Type.Integer(options('type'));
      case 'Number':
        return Type.Number(options('type'));
      case 'String':
        return Type.String(options('type'));
      case 'Boolean':
        return Type.Boolean(options('type'));
      default:
        throw new Error(`no TypeBox builder for ${kind}`);
    }
  })();
  return OptionalKind in s ? Type.Optional(built) : built;
}

describe('src/schema.ts agrees with TypeBox (issue 12)', () => {
  it('builds the configuration schema exactly as TypeBox would, kind symbols and optional markers included', () => {
    const rebuilt = rebuiltByTypebox(ConfigSchema);
    expect(ConfigSchema).toStrictEqual(rebuilt);
    // the comparison sees symbol keys: an optional marker more or less is a difference
    const dhcpOptions = (rebuilt.properties as Record<string, TSchema>).dhcp!.properties.options as Record<symbol, unknown>;
    expect(dhcpOptions[OptionalKind]).toBe('Optional');
    expect(OurType.Object({ a: OurType.String() })).not.toStrictEqual(Type.Object({ a: Type.Optional(Type.String()) }));
    expect(OurType.Optional(OurType.Integer({ minimum: 1 }))).toStrictEqual(Type.Optional(Type.Integer({ minimum: 1 })));
    expect(() => OurType.Union([OurType.Literal('only')])).toThrow(/two members/);
  });

  it('supports every kind and keyword the configuration schema uses', () => {
    expect(() => assertSupported(ConfigSchema)).not.toThrow();
  });

  it('refuses a kind or keyword it does not implement, instead of checking it loosely', () => {
    expect(() => assertSupported(Type.Object({ name: Type.String({ pattern: '^a' }) }))).toThrow(/keyword "pattern" of String at \(root\)\.name/);
    expect(() => assertSupported(Type.Object({ when: Type.Date() }))).toThrow(/kind Date/);
    expect(() => assertSupported(Type.Object({}, { additionalProperties: Type.String() }))).toThrow(/additionalProperties/);
    expect(() => assertSupported(Type.Record(Type.String(), Type.Number()))).toThrow(/kind Record/);
  });

  it('fills the same defaults and gives the same verdict as Value.Default + Value.Check on generated documents', () => {
    let valid = 0;
    fc.assert(
      fc.property(fc.oneof(documentOf(ConfigSchema, false), documentOf(ConfigSchema, true)), (doc) => {
        const ours = fillDefaults(ConfigSchema, structuredClone(doc));
        const theirs: unknown = Value.Default(ConfigSchema, structuredClone(doc));
        expect(ours).toStrictEqual(theirs);
        const verdict = Value.Check(ConfigSchema, theirs);
        expect(conforms(ConfigSchema, ours)).toBe(verdict);
        if (verdict) valid++;
      }),
      { numRuns: 600 },
    );
    // the generator reaches both sides of the check
    expect(valid).toBeGreaterThan(100);
    expect(valid).toBeLessThan(500);
  });

  it('agrees on the edges of each kind', () => {
    const cases: [TSchema, unknown][] = [
      [Type.Integer({ minimum: 0, maximum: 10 }), 10],
      [Type.Integer({ minimum: 0, maximum: 10 }), 11],
      [Type.Integer(), 1.5],
      [Type.Integer(), -0],
      [Type.Number({ minimum: 0.1 }), 0.1],
      [Type.Number({ minimum: 0.1 }), 0.09],
      [Type.Number(), NaN],
      [Type.Number(), Infinity],
      [Type.Number(), '1'],
      [Type.String({ minLength: 1 }), ''],
      [Type.Array(Type.String()), { length: 0 }],
      [Type.Array(Type.String(), { default: [] }), { a: 1 }],
      [Type.Object({ a: Type.Optional(Type.String()) }, { additionalProperties: false }), { a: undefined }],
      [Type.Object({ a: Type.String() }), { a: undefined }],
      [Type.Object({ a: Type.String() }), []],
      [Type.Object({ a: Type.String({ default: 'x' }) }, { additionalProperties: false, default: {} }), null],
      [Type.Union([Type.Literal(4), Type.Literal(6)]), '4'],
      [Type.Union([Type.Literal('a'), Type.Literal('b')], { default: 'a' }), undefined],
    ];
    for (const [schema, value] of cases) {
      const ours = fillDefaults(schema, structuredClone(value));
      const theirs: unknown = Value.Default(schema, structuredClone(value));
      expect(ours, JSON.stringify(value)).toStrictEqual(theirs);
      expect(conforms(schema, ours), `${JSON.stringify(schema)} ${String(value)}`).toBe(Value.Check(schema, theirs));
    }
    // an optional property's marker is a symbol, not a keyword
    expect(Object.getOwnPropertySymbols(Type.Optional(Type.String()))).toContain(OptionalKind);
  });

  it('errors are still worded by TypeBox and name the key', () => {
    const error = (raw: unknown) => {
      try {
        validateConfig(raw);
      } catch (err) {
        return err as ZtpError;
      }
      throw new Error('no error');
    };
    expect(error({ bootstrap: { port: 70000 } }).message).toBe('configuration key "bootstrap.port": Expected integer to be less or equal to 65535 (got 70000)');
    expect(error({ http: { rateLimit: 'fast' } }).message).toBe('configuration key "http.rateLimit": Expected number (got "fast")');
    expect(error({ dhcp: { subnets: [{ subnet: '10.0.0.0/24', pools: [{ start: '10.0.0.5' }] }] } }).message).toBe('configuration key "dhcp.subnets.0.pools.0.end": Expected required property (got undefined)');
    expect(error({ onboarding: { webhooks: [{ url: 'http://x', colour: 'red' }] } }).message).toBe('configuration key "onboarding.webhooks.0.colour": Unexpected property (got "red")');
    expect(error({ colour: 'red' }).message).toBe('configuration key "colour": Unexpected property (got "red")');
  });
});
