// Issue 9 "one device end to end through real sockets": the suite as `ztp serve` composes it
// (startSuite), onboarding started through the admin API; the conductor drives our Redfish
// client against the BMC emulator over HTTPS (its own self-signed certificate, made by openssl
// and pinned on the device record as the BMC's CA); the emulator mounts the image from the
// image server over HTTPS (HEAD + ranges, the suite's CA); the simulated DPU behind it boots
// when its BMC powers it on and runs its sZTP agent (rfc8572: voucher → owner certificate →
// signature) over HTTPS with mTLS (a lab IDevID). The job ends `complete`; read back from the
// emulator over Redfish, the media is ejected and the boot override cleared; the device's
// timeline holds the BMC steps, the image reads attributed to the device, and the sZTP progress.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { TimelineEntry } from '../../src/onboarding/timeline.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import { registerDevices, type AdminApi } from '../../src/simulate/admin.js';
import { emulatedBmcs } from '../../src/simulate/bmcs.js';
import { directDhcp } from '../../src/simulate/dhcp.js';
import { VirtualLab } from '../../src/simulate/lab.js';
import type { Suite } from '../../src/suite.js';
import { startTestSuite, TEST_TOKEN } from '../helpers/suite.js';

const IMAGE = { name: 'e2e-dpu-os.img', bytes: 192 * 1024 };

let suite: Suite;
let api: AdminApi;
let bootstrapBase: string;
let lab: VirtualLab | undefined;
let bmcTls: { cert: string; key: string; caBundle: string };

beforeAll(async () => {
  ({ suite, apiBase: api, bootstrapBase } = await startTestSuite('ztp-e2e-conductor-', { image: IMAGE }).then((t) => ({ ...t, apiBase: { url: t.apiBase, token: TEST_TOKEN } })));
  // The BMC's own certificate, as a factory-fresh BMC has one: self-signed, for its address.
  const dir = mkdtempSync(join(tmpdir(), 'ztp-e2e-bmc-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=emulated-bmc', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  bmcTls = { cert, key: readFileSync(join(dir, 'key.pem'), 'utf8'), caBundle: cert };
});

afterAll(async () => {
  await lab?.stop();
  await suite?.stop();
});

async function adminGet<T>(path: string): Promise<T> {
  const res = await request(`${api.url}${path}`, { headers: { authorization: `Bearer ${api.token}` }, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const body = await res.body.json();
  if (res.statusCode !== 200) throw new Error(`GET ${path}: ${res.statusCode} ${JSON.stringify(body)}`);
  return body as T;
}

describe('one device end to end: conductor → Redfish client → BMC emulator (HTTPS) → simulated DPU → sZTP (mTLS)', () => {
  it('ends complete with the media ejected and the boot override cleared', async () => {
    lab = await VirtualLab.create({
      count: 1,
      profile: 'rfc8572',
      serialPrefix: 'E2E',
      macTag: 0x7d,
      bootImage: IMAGE.name,
      bootstrapUrl: bootstrapBase,
      serverCaPem: suite.ctx.pki.rootCaPem,
      masaCaPem: suite.ctx.pki.masa.certPem,
      issueIdevid: (serial) => issueDeviceIdentity(suite.ctx.pki, serial),
      dhcp: directDhcp(silentLogger),
      bmcs: emulatedBmcs({ log: silentLogger, https: bmcTls, mediaCa: suite.ctx.pki.rootCaPem }),
      rangeBytes: 64 * 1024,
      config: 'hostname e2e-dpu-1\n',
    });
    const [device] = lab.devices as [NonNullable<VirtualLab['devices'][number]>];
    const bmc = device.bmc!;
    expect(bmc.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/bmc\/bmc-0001$/);
    expect((await registerDevices(api, lab.deviceRecords())).created).toBe(1);

    const started = await request(`${api.url}/api/v1/onboarding`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ serials: [device.serial] }),
      headersTimeout: 10_000,
    });
    expect(started.statusCode).toBe(200);
    expect(((await started.body.json()) as { summary: { queued: number } }).summary.queued).toBe(1);

    type JobView = { status: string; step: string; path: string; reason: string | null };
    let job: JobView;
    const deadline = Date.now() + 30_000;
    for (;;) {
      job = (await adminGet<{ job: JobView }>(`/api/v1/onboarding/${device.serial}`)).job;
      if (!['queued', 'running'].includes(job.status)) break;
      if (Date.now() > deadline) throw new Error(`still ${job.status} at ${job.step} after 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(job, JSON.stringify(job)).toMatchObject({ status: 'complete', step: 'complete', path: 'virtual-media', reason: null });
    expect(suite.ctx.store.require(device.serial).state).toBe('onboarded');

    // The DPU was booted once, from the virtual CD, and its firmware read the whole image.
    expect(device.dpu.runs.map((r) => [r.booting.via, r.outcome])).toEqual([['virtual-media', 'complete']]);
    expect(device.dpu.runs[0]!.firmware).toMatchObject({ bytes: IMAGE.bytes, size: IMAGE.bytes });
    expect(device.dpu.runs[0]!.agent).toMatchObject({ outcome: 'complete', imageVerified: true });

    // Read back from the emulator, over Redfish: no media in any slot, no boot override.
    const dispatcher = new Agent({ connect: { ca: bmcTls.caBundle, timeout: 10_000 } });
    const auth = `Basic ${Buffer.from(`${bmc.username}:${bmc.password}`).toString('base64')}`;
    const get = async (path: string) => {
      const res = await request(new URL(path.startsWith('/bmc/') ? path : `${bmc.url}${path}`, bmc.url).toString(), { dispatcher, headers: { authorization: auth }, headersTimeout: 10_000 });
      expect(res.statusCode, path).toBe(200);
      return (await res.body.json()) as Record<string, unknown>;
    };
    const members = async (path: string) => ((await get(path)).Members as { '@odata.id': string }[]).map((m) => m['@odata.id']);
    const slots: Record<string, unknown>[] = [];
    for (const manager of await members('/redfish/v1/Managers')) {
      const vm = (await get(manager)).VirtualMedia as { '@odata.id': string } | undefined;
      if (vm) for (const slot of await members(vm['@odata.id'])) slots.push(await get(slot));
    }
    expect(slots.length).toBeGreaterThan(0);
    for (const s of slots) expect(s, String(s['@odata.id'])).toMatchObject({ Inserted: false, Image: null });
    const system = await get(`/redfish/v1/Systems/${bmc.systemId}`);
    expect(system.PowerState).toBe('On');
    // Override cleared: Disabled (DSP2046: the system boots normally; the client sends Enabled
    // alone, so the last Target may stay listed, as real BMCs show after a consumed Once).
    expect(system.Boot).toMatchObject({ BootSourceOverrideEnabled: 'Disabled' });
    await dispatcher.close();

    // The timeline, as `ztp status <serial>` shows it. The BMC's and the firmware's ranged reads are
    // coalesced into one download session, written once the reader has been idle (10 s).
    let entries: TimelineEntry[] = [];
    const until = Date.now() + 25_000;
    for (;;) {
      entries = (await adminGet<{ entries: TimelineEntry[] }>(`/api/v1/devices/${device.serial}/timeline`)).entries;
      if (entries.some((e) => e.source === 'images' && /in \d+ requests/.test(e.summary)) || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const lines = entries.map((e) => `${e.source}/${e.type}: ${e.summary}`);
    const bmcSteps = entries.filter((e) => e.source === 'redfish').map((e) => e.type);
    for (const step of ['login', 'inventory', 'insert', 'verify-inserted', 'boot-override', 'reset', 'wait-power', 'eject', 'clear-boot']) expect(bmcSteps, lines.join('\n')).toContain(step);
    expect(entries.filter((e) => e.source === 'redfish').every((e) => e.summary.includes(' ok'))).toBe(true);
    const progress = entries.filter((e) => e.source === 'bootstrap' && e.type === 'progress').map((e) => e.summary.split(':')[0]!.replace('sZTP progress ', ''));
    expect(progress).toEqual(['bootstrap-initiated', 'parsing-initiated', 'parsing-complete', 'boot-image-initiated', 'boot-image-complete', 'config-initiated', 'config-complete', 'bootstrap-complete']);
    expect(lines).toContain('bootstrap/request: sZTP get-bootstrapping-data → onboarding-information (signed)');
    // Image reads attributed to this device (by the MAC in the per-device URL): the agent's
    // whole download, and the BMC's mount plus the firmware's boot reads as one ranged session.
    const downloads = suite.ctx.store.history(device.serial, 0, 1000).filter((e) => e.source === 'images' && e.type === 'download');
    expect(downloads.find((e) => e.data.view === 'device' && e.data.range === undefined)?.data).toMatchObject({ image: IMAGE.name, bytes: IMAGE.bytes, completed: true, mac: device.macs[0] });
    const ranged = downloads.find((e) => e.data.view === 'bmc');
    expect(ranged?.data, lines.join('\n')).toMatchObject({ image: IMAGE.name, completed: true, mac: device.macs[0] });
    expect(Number(ranged!.data.requests)).toBeGreaterThan(2);
    // The job's transitions, in order, each with the step it ended.
    const steps = entries.filter((e) => e.source === 'onboarding' && e.type === 'transition').map((e) => e.summary);
    expect(steps.length).toBeGreaterThanOrEqual(10);
    expect(lines.join('\n')).toMatch(/media ejected, boot override cleared/);
  }, 60_000);
});
