// Property tests of the RESTCONF codec (STYLE.md practice 6): decoders never throw anything
// but our typed error, whatever the bytes, including Buffer views with a non-zero byteOffset.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBootstrapRequest, decodeProgressReport, requestEncoding, responseEncoding, restconfError } from '../../src/bootstrap/restconf.js';
import { parseContentInfo, unwrapUnsigned, contentInfo, OID } from '../../src/pki/cms.js';
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
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        onlyTyped(() => parseContentInfo(sliced(bytes)));
        const wrapped = contentInfo(OID.conveyedInfoJson, bytes);
        expect(Buffer.compare(unwrapUnsigned(sliced(wrapped)).content, Buffer.from(bytes))).toBe(0);
      }),
      { numRuns: 5000 },
    );
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
