// Property tests of the RESTCONF codec (STYLE.md practice 6): decoders never throw anything
// but our typed error, whatever the bytes, including Buffer views with a non-zero byteOffset.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBootstrapRequest, decodeProgressReport, requestEncoding, responseEncoding, restconfError } from '../../src/bootstrap/restconf.js';
import { certificatesOf, parseContentInfo, unwrapUnsigned, contentInfo, OID } from '../../src/pki/cms.js';
import { ZtpError } from '../../src/errors.js';

const onlyTyped = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ZtpError)) throw err;
  }
};

function sliced(bytes: Uint8Array): Buffer {
  const backing = Buffer.alloc(bytes.length + 7, 0xaa);
  backing.set(bytes, 3);
  return backing.subarray(3, 3 + bytes.length);
}

describe('RESTCONF input decoding, hostile bytes', () => {
  it('decode never throws anything but ZtpError (random bytes, both encodings, sliced views)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.constantFrom('json', 'xml', undefined), (bytes, enc) => {
        onlyTyped(() => decodeBootstrapRequest(sliced(bytes), enc as 'json'));
        onlyTyped(() => decodeProgressReport(sliced(bytes), enc as 'json'));
      }),
      { numRuns: 2000 },
    );
  });

  it('decode never throws anything but ZtpError (random JSON values as input)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const body = Buffer.from(JSON.stringify({ 'ietf-sztp-bootstrap-server:input': value }));
        onlyTyped(() => decodeBootstrapRequest(body, 'json'));
        onlyTyped(() => decodeProgressReport(body, 'json'));
      }),
      { numRuns: 2000 },
    );
  });

  it('CMS parsing never throws anything but ZtpError, and unwrap(contentInfo(x)) = x', () => {
    // Random bytes alone never got past CMS_MALFORMED (5,000 of 5,000, issue 11): most inputs
    // here are ContentInfos of every content type the project reads, some with one byte
    // changed, cut short or extended, so the ContentInfo and SignedData parsers behind the BER
    // check are reached too.
    const oid = fc.oneof(fc.constantFrom(...Object.values(OID)), fc.array(fc.nat(40_000), { minLength: 1, maxLength: 6 }).map((arcs) => `1.2.${arcs.join('.')}`));
    type Mutation = { kind: 'none' } | { kind: 'flip'; at: number; value: number } | { kind: 'cut'; at: number } | { kind: 'extend'; extra: Uint8Array };
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      { arbitrary: fc.constant({ kind: 'none' as const }), weight: 2 },
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.nat(255) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 3 }) }),
    );
    const mutated = fc.record({ oid, payload: fc.uint8Array({ maxLength: 300, size: 'max' }), m: mutation }).map(({ oid, payload, m }) => {
      const der = contentInfo(oid, payload);
      if (m.kind === 'flip') der[m.at % der.length] = m.value;
      if (m.kind === 'cut') return new Uint8Array(der.subarray(0, m.at % der.length));
      if (m.kind === 'extend') return new Uint8Array(Buffer.concat([der, m.extra]));
      return new Uint8Array(der);
    });
    const outcomes = new Map<string, number>();
    const runs = 5000;
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300, size: 'max' }), mutated, mutated), fc.uint8Array({ maxLength: 300, size: 'max' }), (input, bytes) => {
        let outcome = 'parsed';
        try {
          parseContentInfo(sliced(input));
        } catch (err) {
          if (!(err instanceof ZtpError)) throw err;
          outcome = err.code;
        }
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        onlyTyped(() => unwrapUnsigned(sliced(input)));
        onlyTyped(() => certificatesOf(sliced(input)));
        const wrapped = contentInfo(OID.conveyedInfoJson, bytes);
        expect(Buffer.compare(unwrapUnsigned(sliced(wrapped)).content, Buffer.from(bytes))).toBe(0);
      }),
      { numRuns: runs },
    );
    // Seen per 5,000 runs: ~1,800 parse as a ContentInfo, the rest CMS_MALFORMED.
    expect((outcomes.get('parsed') ?? 0) / runs, JSON.stringify([...outcomes])).toBeGreaterThanOrEqual(0.2);
  });

  it('regression: asn1js RangeError on a UniversalString of odd length is a typed error', () => {
    expect(() => parseContentInfo(Buffer.from([28, 5, 0, 0, 0, 0, 0]))).toThrow(ZtpError);
  });

  it('truncations of a valid ContentInfo are CMS_MALFORMED', () => {
    const der = contentInfo(OID.conveyedInfoJson, Buffer.from('{"x":1}'));
    for (let n = 0; n < der.length; n++) {
      expect(() => parseContentInfo(der.subarray(0, n))).toThrow(ZtpError);
    }
  });
});

describe('media types (RFC 8040 §5.2)', () => {
  it.each([
    ['application/yang-data+json', undefined, 'json'],
    ['application/yang-data+xml', undefined, 'xml'],
    ['application/yang-data+xml', '*/*', 'xml'],
    ['application/yang-data+json', 'application/yang-data+xml;q=0.9, application/yang-data+json;q=0.1', 'xml'],
    [undefined, undefined, 'json'],
  ])('request %s with Accept %s answers %s', (ct, accept, expected) => {
    expect(responseEncoding(accept, requestEncoding(ct))).toBe(expected);
  });

  it('error bodies never leak details at 500', () => {
    const out = restconfError(new Error('secret path /etc/x'), 'json');
    expect(out.status).toBe(500);
    expect(out.body).not.toContain('secret');
  });
});
