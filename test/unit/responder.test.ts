// The bootstrap responder's caching and its CMS-free decision (issue 12: encoded replies cached
// per device revision; pki/cms.js loaded on first use, so decide() carries its own OIDs).
import { describe, expect, it } from 'vitest';
import { CONTENT_TYPE, decide, BootstrapResponder } from '../../src/bootstrap/responder.js';
import { imageResolver } from '../../src/bootstrap/images.js';
import { encodeBootstrapOutput } from '../../src/bootstrap/restconf.js';
import { OID, verifySignedData } from '../../src/pki/cms.js';
import type { Device } from '../../src/devices/model.js';
import { splitPem } from '../../src/pki/lab.js';
import { labPki } from '../helpers/bootstrap.js';

const device: Device = {
  serial: 'RESP-1', profile: 'rfc8572', hasPassword: false, signing: 'auto', macs: [], bootImage: null, bootImageSha256: null, osName: null,
  osVersion: null, config: 'hostname a\n', preScript: null, postScript: null, redirect: null, bmc: null, parentHost: null, hwModel: null,
  onboardingTimeouts: null, state: 'registered', stateChangedAt: '', revision: 1, createdAt: '', updatedAt: '',
};

describe('bootstrap responder', () => {
  it('names the same eContentTypes as pki/cms.ts (RFC 8572 §10.3, RFC 5652 §5.1)', () => {
    expect(CONTENT_TYPE).toEqual({ conveyedInfoXml: OID.conveyedInfoXml, conveyedInfoJson: OID.conveyedInfoJson, signedData: OID.signedData });
    const images = imageResolver(undefined);
    expect(decide(device, { signedDataPreferred: false, warnings: [] }, 'xml', images, { encrypt: false }).contentType).toBe(OID.conveyedInfoXml);
    expect(decide(device, { signedDataPreferred: false, warnings: [] }, 'json', images, { encrypt: false }).contentType).toBe(OID.conveyedInfoJson);
  });

  it.each(['json', 'xml'] as const)('caches the encoded %s body per device revision and encoding; a new revision rebuilds it', async (enc) => {
    const { pki } = await labPki();
    const responder = new BootstrapResponder({ pki, images: imageResolver(undefined), encrypt: false });
    const request = { signedDataPreferred: true, warnings: [] };
    const first = await responder.reply(device, request, enc);
    expect(first.cached).toBe(false);
    expect(first.body).toBe(encodeBootstrapOutput(first.output, enc));
    // signed, and verifiable: the lazily loaded CMS code did the signing
    expect(first.decision.signed).toBe(true);
    const verified = await verifySignedData(first.output.conveyedInformation, [splitPem(pki.owner.certPem).at(-1)!]);
    expect(verified.eContentType).toBe(enc === 'json' ? OID.conveyedInfoJson : OID.conveyedInfoXml);
    const again = await responder.reply(device, request, enc);
    expect(again.cached).toBe(true);
    expect(again.body).toBe(first.body);
    const other = await responder.reply(device, request, enc === 'json' ? 'xml' : 'json');
    expect(other.cached).toBe(false);
    expect(other.body).not.toBe(first.body);
    const changed = await responder.reply({ ...device, revision: 2, config: 'hostname b\n' }, request, enc);
    expect(changed.cached).toBe(false);
    expect(changed.body).not.toBe(first.body);
  });

  it('never caches a reply to a nonce (the voucher carries it)', async () => {
    const { pki } = await labPki();
    const responder = new BootstrapResponder({ pki, images: imageResolver(undefined), encrypt: false });
    const request = { signedDataPreferred: true, nonce: Buffer.from('0123456789abcdef'), warnings: [] };
    const a = await responder.reply(device, request, 'json');
    const b = await responder.reply(device, request, 'json');
    expect(a.cached || b.cached).toBe(false);
    expect(b.body).not.toBe(a.body);
  });
});
