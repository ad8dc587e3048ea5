// What issue 12 changed on the bootstrap request path, held to the behaviour it replaced:
// remembered Content-Type/Accept decisions answer exactly as parsing does, and a cached reply is
// found without rebuilding it but never when the catalogue's view of its image changed.
import { describe, expect, it } from 'vitest';
import { imageResolver } from '../../src/bootstrap/images.js';
import { BootstrapResponder } from '../../src/bootstrap/responder.js';
import { decodeBootstrapRequest, requestEncoding, responseEncoding } from '../../src/bootstrap/restconf.js';
import type { Device } from '../../src/devices/model.js';
import { isZtpError } from '../../src/errors.js';
import { labPki } from '../helpers/bootstrap.js';

const device: Device = {
  serial: 'HOT-1', profile: 'rfc8572', hasPassword: false, signing: 'auto', macs: [], bootImage: 'os.img', bootImageSha256: null, osName: null,
  osVersion: null, config: 'hostname a\n', preScript: null, postScript: null, redirect: null, bmc: null, parentHost: null, hwModel: null,
  onboardingTimeouts: null, state: 'registered', stateChangedAt: '', revision: 1, createdAt: '', updatedAt: '',
};

function outcome(f: () => unknown): unknown {
  try {
    return f();
  } catch (err) {
    return isZtpError(err) ? err.code : err;
  }
}

describe('remembered media type decisions', () => {
  const contentTypes = [undefined, '', '  ', 'application/yang-data+json', 'Application/YANG-Data+JSON; charset=utf-8', 'application/xml', 'text/xml', 'text/plain', 'application/yang-data+json;', 'x'.repeat(300)];
  const accepts = [undefined, '', '*/*', 'application/*', 'application/yang-data+xml', 'application/yang-data+xml;q=0.5, application/yang-data+json', 'text/html', 'text/html;q=0, */*;q=0.1', 'application/json;q=0', 'y'.repeat(300)];

  it('answer the same on every call, refusals included, whatever was asked before', () => {
    // Three passes: the first parses, the others may be answered from memory.
    const passes = [0, 1, 2].map(() => contentTypes.map((ct) => outcome(() => requestEncoding(ct))));
    expect(passes[1]).toEqual(passes[0]);
    expect(passes[2]).toEqual(passes[0]);
    expect(passes[0]).toEqual([undefined, undefined, undefined, 'json', 'json', 'xml', 'xml', 'SZTP_UNSUPPORTED_MEDIA_TYPE', 'json', 'SZTP_UNSUPPORTED_MEDIA_TYPE']);
  });

  it('keep */* and application/* following the request encoding (the fallback is part of what is remembered)', () => {
    for (let pass = 0; pass < 2; pass++) {
      for (const accept of accepts) {
        const json = outcome(() => responseEncoding(accept, 'json'));
        const xml = outcome(() => responseEncoding(accept, 'xml'));
        const none = outcome(() => responseEncoding(accept, undefined));
        expect(none, String(accept)).toEqual(json);
        if (accept === '*/*' || accept === 'application/*' || !accept) {
          expect(json).toBe('json');
          expect(xml).toBe('xml');
        }
      }
      expect(outcome(() => responseEncoding('text/html', 'json'))).toBe('SZTP_NOT_ACCEPTABLE');
      expect(outcome(() => responseEncoding('text/html;q=0, */*;q=0.1', 'xml'))).toBe('xml');
      expect(outcome(() => responseEncoding('application/yang-data+xml;q=0.5, application/yang-data+json', 'xml'))).toBe('json');
    }
  });

  it('decodes module-qualified and plain members alike (the parsed object is kept when nothing is qualified)', () => {
    const body = (o: Record<string, unknown>) => Buffer.from(JSON.stringify({ 'ietf-sztp-bootstrap-server:input': o }));
    const plain = decodeBootstrapRequest(body({ 'hw-model': 'm', 'signed-data-preferred': [null] }), 'json');
    const qualified = decodeBootstrapRequest(body({ 'ietf-sztp-bootstrap-server:hw-model': 'm', 'signed-data-preferred': [null] }), 'json');
    expect(qualified).toEqual(plain);
    expect(plain).toMatchObject({ hwModel: 'm', signedDataPreferred: true });
    expect(outcome(() => decodeBootstrapRequest(Buffer.from('{"ietf-sztp-bootstrap-server:input":{"__proto__":{"x":1}}}'), 'json'))).toBe('SZTP_UNKNOWN_ELEMENT');
  });
});

describe('cached replies', () => {
  it('a hit returns the decision and wire bytes of the reply it reuses', async () => {
    const { pki } = await labPki();
    const responder = new BootstrapResponder({ pki, images: imageResolver(() => ({ url: 'https://images.lab/os.img', sha256: 'ab'.repeat(32) })), encrypt: false });
    const first = await responder.reply(device, { signedDataPreferred: false, warnings: [] }, 'json');
    const again = await responder.reply(device, { signedDataPreferred: false, warnings: [] }, 'json');
    expect(first.cached).toBe(false);
    expect(again.cached).toBe(true);
    expect(again.decision).toEqual(first.decision);
    expect(again.decision.info).toMatchObject({ kind: 'onboarding-information', bootImage: { sha256: 'ab'.repeat(32) } });
    expect(again.bytes.equals(Buffer.from(first.body))).toBe(true);
  });

  it('the catalogue changing an image (digest, URL, OS name or version) without the device record changing rebuilds the reply', async () => {
    const { pki } = await labPki();
    let entry: { url: string; sha256: string; osName?: string; osVersion?: string } | undefined = { url: 'https://images.lab/os.img', sha256: 'ab'.repeat(32), osName: 'DPU-OS', osVersion: '1' };
    const responder = new BootstrapResponder({ pki, images: imageResolver(() => entry), encrypt: false });
    const ask = () => responder.reply(device, { signedDataPreferred: false, warnings: [] }, 'json');
    expect((await ask()).cached).toBe(false);
    expect((await ask()).cached).toBe(true);
    for (const change of [{ osVersion: '2' }, { osName: 'Other' }, { url: 'https://images.lab/v2/os.img' }, { sha256: 'cd'.repeat(32) }]) {
      entry = { ...entry!, ...change };
      const rebuilt = await ask();
      expect(rebuilt.cached, JSON.stringify(change)).toBe(false);
      expect(rebuilt.decision.info).toMatchObject({ bootImage: { downloadUris: [entry.url], sha256: entry.sha256, osVersion: entry.osVersion, osName: entry.osName } });
      expect((await ask()).cached).toBe(true);
    }
    // An image the catalogue no longer has is an error, cached reply or not.
    entry = undefined;
    await expect(ask()).rejects.toMatchObject({ code: 'SZTP_INTERNAL' });
  });

  it('a redirect device needs no image: none is looked up, and its reply is cached', async () => {
    const { pki } = await labPki();
    let lookups = 0;
    const responder = new BootstrapResponder({ pki, images: imageResolver(() => (lookups++, undefined)), encrypt: false });
    const redirect: Device = { ...device, redirect: [{ address: 'bootstrap2.lab', port: 8443 }] };
    const first = await responder.reply(redirect, { signedDataPreferred: false, warnings: [] }, 'json');
    const again = await responder.reply(redirect, { signedDataPreferred: false, warnings: [] }, 'json');
    expect(first.decision.info.kind).toBe('redirect-information');
    expect(again.cached).toBe(true);
    expect(lookups).toBe(0);
  });
});
