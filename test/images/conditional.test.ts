// RFC 9110 §13 conditional requests for immutable images: precedence, comparison functions, dates.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { evaluateConditionals, httpDate, ifRangeMatches, parseEntityTags, parseHttpDate } from '../../src/images/conditional.js';

const LM = Date.parse('2030-01-01T00:00:00Z');
const NOW = LM + 3600_000;
const V = { etag: '"abc"', lastModified: LM };

describe('HTTP-date (§5.6.7)', () => {
  it('accepts the three formats of the RFC example', () => {
    const t = Date.parse('1994-11-06T08:49:37Z');
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(t); // IMF-fixdate
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(t); // obsolete RFC 850
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')).toBe(t); // ANSI C asctime()
  });
  it.each(['yesterday', '', '2030-01-01', 'Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 08:49:37 PST'])('rejects %j', (v) => {
    expect(parseHttpDate(v)).toBeUndefined();
  });
  it('round-trips whole seconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4102444800 }), (s) => {
        expect(parseHttpDate(httpDate(s * 1000))).toBe(s * 1000);
      }),
    );
  });
});

describe('entity tags (§8.8.3)', () => {
  it('parses lists, weak tags and *', () => {
    expect(parseEntityTags('"a", W/"b" ,"c"')).toEqual([
      { weak: false, opaque: '"a"' },
      { weak: true, opaque: '"b"' },
      { weak: false, opaque: '"c"' },
    ]);
    expect(parseEntityTags('*')).toBe('any');
    expect(parseEntityTags('"a,b"')).toEqual([{ weak: false, opaque: '"a,b"' }]);
    expect(parseEntityTags('garbage')).toEqual([]);
  });
});

describe('evaluateConditionals (§13.2.2 precedence)', () => {
  const lmDate = httpDate(LM);
  it.each([
    [{}, { status: 200, useRange: true }],
    [{ ifMatch: '"abc"' }, { status: 200, useRange: true }],
    [{ ifMatch: '*' }, { status: 200, useRange: true }],
    [{ ifMatch: 'W/"abc"' }, { status: 412 }], // If-Match uses strong comparison
    [{ ifMatch: '"x"' }, { status: 412 }],
    [{ ifUnmodifiedSince: httpDate(LM - 1000) }, { status: 412 }],
    [{ ifUnmodifiedSince: lmDate }, { status: 200, useRange: true }],
    [{ ifMatch: '"abc"', ifUnmodifiedSince: httpDate(LM - 1000) }, { status: 200, useRange: true }], // step 2 only without If-Match
    [{ ifNoneMatch: '"abc"' }, { status: 304 }],
    [{ ifNoneMatch: 'W/"abc"' }, { status: 304 }], // weak comparison
    [{ ifNoneMatch: '*' }, { status: 304 }],
    [{ ifNoneMatch: '"x"' }, { status: 200, useRange: true }],
    [{ ifModifiedSince: lmDate }, { status: 304 }],
    [{ ifModifiedSince: httpDate(LM + 5000) }, { status: 304 }],
    [{ ifModifiedSince: httpDate(LM - 1000) }, { status: 200, useRange: true }],
    [{ ifModifiedSince: 'not a date' }, { status: 200, useRange: true }], // invalid date ignored (§13.1.3)
    [{ ifNoneMatch: '"x"', ifModifiedSince: lmDate }, { status: 200, useRange: true }], // INM wins over IMS
    [{ ifMatch: '"x"', ifNoneMatch: '"abc"' }, { status: 412 }], // step 1 before step 3
    [{ ifRange: '"abc"' }, { status: 200, useRange: true }],
    [{ ifRange: '"x"' }, { status: 200, useRange: false }],
    [{ ifRange: 'W/"abc"' }, { status: 200, useRange: false }], // If-Range: strong comparison only
    [{ ifRange: lmDate }, { status: 200, useRange: true }],
    [{ ifRange: httpDate(LM + 1000) }, { status: 200, useRange: false }], // exact match only
    [{ ifRange: 'junk' }, { status: 200, useRange: false }],
  ])('%j → %j', (h, expected) => {
    expect(evaluateConditionals(h, V, NOW)).toEqual(expected);
  });

  it('If-Range with a date is not strong when Last-Modified is within a second of now (§8.8.2.2)', () => {
    expect(ifRangeMatches(httpDate(LM), V, LM + 200)).toBe(false);
    expect(ifRangeMatches(httpDate(LM), V, LM + 1000)).toBe(true);
  });

  it('never throws on arbitrary header values', () => {
    const s = fc.option(fc.string({ maxLength: 60 }), { nil: undefined });
    fc.assert(
      fc.property(s, s, s, s, s, (ifMatch, ifNoneMatch, ifModifiedSince, ifUnmodifiedSince, ifRange) => {
        const out = evaluateConditionals({ ifMatch, ifNoneMatch, ifModifiedSince, ifUnmodifiedSince, ifRange }, V, NOW);
        expect([200, 304, 412]).toContain(out.status);
      }),
      { numRuns: 1000 },
    );
  });
});
