// Issue 11 "XML bodies that crash the parser answer 500": hostile XML shapes (deep nesting,
// prototype names, DTDs, undeclared entities) are the client's mistake, so 400 malformed-message,
// never 500; the five predefined entities and character references are decoded (XML 1.0 §4.6, §4.1).
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_XML_DEPTH, NS_BOOTSTRAP, prescanXml } from '../../src/bootstrap/restconf.js';
import { isZtpError } from '../../src/errors.js';
import { basic, bootstrapFixture, GBD, PROGRESS, XML_TYPE, type BootstrapFixture } from '../helpers/bootstrap.js';

let f: BootstrapFixture;

beforeAll(async () => {
  f = await bootstrapFixture();
  f.store.upsert({ serial: 'XML-1', password: 'pw-xml', profile: 'rfc8572', config: 'cfg' });
});

const wrap = (inner: string) => `<input xmlns="${NS_BOOTSTRAP}">${inner}</input>`;
const post = (url: string, payload: string) =>
  f.app.inject({ method: 'POST', url, headers: { authorization: basic('XML-1', 'pw-xml'), 'content-type': XML_TYPE, accept: XML_TYPE }, payload });

function errorTag(body: string): string | undefined {
  return /<error-tag>([^<]*)<\/error-tag>/.exec(body)?.[1];
}

const nested = (depth: number) => '<a>'.repeat(depth) + 'x' + '</a>'.repeat(depth);

describe('hostile XML shapes are 400 malformed-message (issue 11)', () => {
  const shapes: [string, string][] = [
    ['the issue example: <constructor/>', wrap('<constructor/>')],
    ['<__proto__> element', wrap('<__proto__><progress-type>bootstrap-complete</progress-type></__proto__>')],
    ['prefixed <x:__proto__> (would become __proto__ once prefixes are stripped)', wrap('<x:__proto__ xmlns:x="urn:x"><progress-type>informational</progress-type></x:__proto__>')],
    ['<prototype> element', wrap('<prototype>1</prototype>')],
    ['constructor as an attribute name', `<input xmlns="${NS_BOOTSTRAP}" constructor="1"><hw-model>m</hw-model></input>`],
    ['nesting 150 deep (the parser throws past 100)', wrap(nested(150))],
    [`nesting just past the bound (${MAX_XML_DEPTH + 1} with <input>)`, wrap(nested(MAX_XML_DEPTH))],
    ['DOCTYPE', `<!DOCTYPE input>${wrap('<hw-model>m</hw-model>')}`],
    ['ENTITY declaration (billion laughs opener)', `<!DOCTYPE input [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>${wrap('<hw-model>&lol2;</hw-model>')}`],
    ['an undeclared entity', wrap('<hw-model>&unknown;</hw-model>')],
    ['an HTML entity (not one of the five XML ones)', wrap('<hw-model>a&nbsp;b</hw-model>')],
    ['a bare ampersand', wrap('<hw-model>a & b</hw-model>')],
    ['a character reference to NUL', wrap('<hw-model>&#0;</hw-model>')],
    ['a character reference past U+10FFFF', wrap('<hw-model>&#x110000;</hw-model>')],
    ['an undeclared entity in an attribute value', `<input xmlns="${NS_BOOTSTRAP}" a="&evil;"><hw-model>m</hw-model></input>`],
  ];

  for (const url of [GBD, PROGRESS]) {
    it.each(shapes)(`${url.slice(url.indexOf(':') + 1)}: %s`, async (_name, payload) => {
      const res = await post(url, payload);
      expect(res.statusCode).toBe(400);
      expect(errorTag(res.body)).toBe('malformed-message');
    });
  }

  it('nesting up to the bound is still decoded (then refused as an unknown element, not as malformed)', async () => {
    const res = await post(GBD, wrap(nested(MAX_XML_DEPTH - 1)));
    expect(res.statusCode).toBe(400);
    expect(errorTag(res.body)).toBe('unknown-element');
  });

  it('the pre-scan takes 64 KiB of tags, references or attributes and throws nothing but malformed-message', () => {
    for (const text of ['<a>'.repeat(20_000), wrap('&amp;'.repeat(12_000) + '&'), '<a b="1" c="2"/>'.repeat(4_000)]) {
      let caught: unknown;
      try {
        prescanXml(text);
      } catch (err) {
        caught = err;
      }
      if (caught !== undefined) expect(isZtpError(caught, 'SZTP_MALFORMED_MESSAGE')).toBe(true);
    }
  });
});

describe('predefined entities and character references are decoded (issue 11: &amp; was stored literally)', () => {
  it('&amp; &lt; &gt; &quot; &apos; and &#NN; / &#xNN; reach the stored progress message decoded', async () => {
    const res = await post(PROGRESS, wrap('<progress-type>informational</progress-type><message>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#70;&#x47; &#x1F600; &amp;lt;</message>'));
    expect(res.statusCode).toBe(204);
    const last = f.store.recentHistory('XML-1', 1, 'progress')[0]!;
    // &amp;lt; decodes once, to the text "&lt;" (no double decoding).
    expect(last.data.message).toBe('a & b <c> "d" \'e\' FG \u{1F600} &lt;');
  });

  it('CDATA stays literal: "&amp;" inside it is text, not a reference', async () => {
    const res = await post(PROGRESS, wrap('<progress-type>informational</progress-type><message><![CDATA[x &amp; <y> &unknown;]]></message>'));
    expect(res.statusCode).toBe(204);
    expect(f.store.recentHistory('XML-1', 1, 'progress')[0]!.data.message).toBe('x &amp; <y> &unknown;');
  });
});

// ---------------------------------------------------------------------------------------------
// Property: whatever hostile ingredient a generated XML body carries, the answer is 4xx.

type Ingredient = 'deep' | 'proto-element' | 'proto-prefixed' | 'proto-attribute' | 'doctype' | 'entity-decl' | 'unknown-entity' | 'bad-charref' | 'bare-amp';
const INGREDIENTS: Ingredient[] = ['deep', 'proto-element', 'proto-prefixed', 'proto-attribute', 'doctype', 'entity-decl', 'unknown-entity', 'bad-charref', 'bare-amp'];
const protoName = fc.constantFrom('__proto__', 'constructor', 'prototype');
// Benign noise around the hostile part: legal references, CDATA, comments, known elements.
const benignText = fc.array(fc.constantFrom('m', ' ', '&amp;', '&lt;', '&#65;', '&#x263A;', '<![CDATA[&x; <z>]]>', '<!-- c -->', 'é'), { maxLength: 6 }).map((a) => a.join(''));

const hostile = fc.record({
  ingredient: fc.constantFrom(...INGREDIENTS),
  depth: fc.integer({ min: MAX_XML_DEPTH, max: 400 }),
  proto: protoName,
  entity: fc.constantFrom('unknown', 'nbsp', 'copy', 'AMP', 'lt x', 'xxe'),
  charref: fc.constantFrom('#0', '#x0', '#xD800', '#xFFFE', '#x110000', '#99999999', '#', '#x', '#12a'),
  before: benignText,
  after: benignText,
  rpc: fc.constantFrom(GBD, PROGRESS),
  place: fc.constantFrom('first', 'nested', 'last'),
}).map((g) => {
  let hostilePart: string;
  let prolog = '';
  let rootAttr = '';
  switch (g.ingredient) {
    case 'deep': hostilePart = nested(g.depth); break;
    case 'proto-element': hostilePart = `<${g.proto}>${g.before}</${g.proto}>`; break;
    case 'proto-prefixed': hostilePart = `<p:${g.proto} xmlns:p="urn:p"><progress-type>informational</progress-type></p:${g.proto}>`; break;
    case 'proto-attribute': hostilePart = ''; rootAttr = ` ${g.proto}="x"`; break;
    case 'doctype': hostilePart = ''; prolog = '<!DOCTYPE input SYSTEM "file:///etc/passwd">'; break;
    case 'entity-decl': hostilePart = '<hw-model>&e;</hw-model>'; prolog = `<!DOCTYPE input [<!ENTITY e "${'x'.repeat(10)}">]>`; break;
    case 'unknown-entity': hostilePart = `<hw-model>${g.before}&${g.entity};</hw-model>`; break;
    case 'bad-charref': hostilePart = `<hw-model>&${g.charref};</hw-model>`; break;
    case 'bare-amp': hostilePart = `<hw-model>${g.before} & ${g.after}</hw-model>`; break;
  }
  const benign = `<hw-model>${g.before}</hw-model>`;
  const body = g.place === 'first' ? hostilePart + benign : g.place === 'last' ? benign + hostilePart : `<ssh-host-keys>${hostilePart}</ssh-host-keys>`;
  return { ...g, xml: `<?xml version="1.0"?>${prolog}<input xmlns="${NS_BOOTSTRAP}"${rootAttr}>${body}</input>` };
});

describe('property: hostile XML only ever sees 4xx', () => {
  it('400..499 for every generated shape, and the generator reaches each ingredient', async () => {
    const seen = new Map<string, number>();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(hostile, async (g) => {
        const res = await post(g.rpc, g.xml);
        seen.set(g.ingredient, (seen.get(g.ingredient) ?? 0) + 1);
        if (g.ingredient === 'deep' && g.depth > 100) seen.set('deeper than the parser limit (100)', (seen.get('deeper than the parser limit (100)') ?? 0) + 1);
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
        expect(errorTag(res.body)).toBe('malformed-message');
      }),
      { numRuns: 400 },
    );
    // Show and assert the reach: every ingredient, and nesting beyond the parser's own limit.
    console.log('hostile XML ingredients generated:', Object.fromEntries(seen), 'statuses:', Object.fromEntries(statuses));
    for (const ingredient of INGREDIENTS) expect(seen.get(ingredient) ?? 0).toBeGreaterThanOrEqual(10);
    expect(seen.get('deeper than the parser limit (100)') ?? 0).toBeGreaterThanOrEqual(10);
  });
});
