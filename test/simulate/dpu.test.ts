// The simulated DPU (src/simulate/dpu.ts) driven by BootingEvents emitted here (as the BMC
// emulator does when a system powers on with media inserted or an HTTP boot URI), against the
// suite over real sockets: the firmware reads the image from the image server (HEAD + ranges),
// DHCP goes through the real responder in a network namespace (root) or the direct path, and
// the agent bootstraps.
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { ImageCatalogue, imagesDirOf } from '../../src/images/catalogue.js';
import { imageUrl } from '../../src/images/urls.js';
import { silentLogger } from '../../src/log.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import type { BootingEvent } from '../../src/redfish/emulator/hooks.js';
import { directDhcp, NetnsDhcp, sztpUrlsFromOption, type DhcpPath } from '../../src/simulate/dhcp.js';
import { SimulatedDpu, faultsFromNames, type DpuFaults } from '../../src/simulate/dpu.js';
import type { Suite } from '../../src/suite.js';
import { isRoot } from '../helpers/shared.js';
import { startTestSuite } from '../helpers/suite.js';

const IMAGE_BYTES = 300 * 1024 + 17;

async function lab(extra: Record<string, unknown> = {}): Promise<{ suite: Suite; config: Config; catalogue: ImageCatalogue }> {
  const { suite, dataDir } = await startTestSuite('ztp-sim-dpu-', { image: { name: 'sim-os.iso', bytes: IMAGE_BYTES }, config: extra });
  return { suite, config: suite.ctx.config, catalogue: new ImageCatalogue(suite.ctx.db, imagesDirOf(dataDir)) };
}

let seq = 0;
async function dpuFor(env: { suite: Suite; config: Config }, profile: 'opi' | 'rfc8572', dhcp: DhcpPath, faults: DpuFaults = {}) {
  const serial = `DPU-${profile}-${++seq}`;
  const mac = `02:5b:00:00:01:${seq.toString(16).padStart(2, '0')}`;
  env.suite.ctx.store.upsert({ serial, profile, macs: [mac], bootImage: 'sim-os.iso' });
  const idevid = await issueDeviceIdentity(env.suite.ctx.pki, serial);
  const dpu = new SimulatedDpu({
    serial,
    macs: [mac],
    profile,
    identity: { serial, idevid, serverCaPem: env.suite.ctx.pki.rootCaPem, masaCaPem: env.suite.ctx.pki.masa.certPem },
    bootstrapUrl: `https://localhost:${env.config.bootstrap.port}`,
    dhcp,
    faults,
    rangeBytes: 64 * 1024,
    agent: { requestTimeoutMs: 5_000 },
  });
  return { serial, mac, dpu };
}

function booting(bmcId: string, imageUrl: string | null, via: BootingEvent['via'] = 'virtual-media'): BootingEvent {
  return { bmcId, systemId: 'DPU', serial: null, via, imageUrl, target: via === 'virtual-media' ? 'Cd' : 'UefiHttp', at: new Date() };
}

describe('simulated DPU, direct DHCP path', () => {
  let env: Awaited<ReturnType<typeof lab>>;
  let dhcp: DhcpPath;
  beforeAll(async () => {
    env = await lab();
    dhcp = directDhcp(silentLogger);
  });
  afterAll(async () => {
    await dhcp?.close();
    await env?.suite.stop();
  });

  const bmcUrl = (mac: string) => imageUrl(env.config, 'localhost', env.catalogue.get('sim-os.iso')!, 'bmc', mac);

  it('on booting from virtual media: firmware HEAD + Range reads of the whole image, then the agent onboards', async () => {
    const { serial, mac, dpu } = await dpuFor(env, 'rfc8572', dhcp);
    const events = new EventEmitter();
    const unbind = dpu.bind(events, { bmcId: 'bmc-1', systemId: 'DPU' });
    const ran = new Promise((resolve) => dpu.once('run', resolve));
    events.emit('booting', booting('bmc-other', bmcUrl(mac))); // not ours: ignored
    events.emit('booting', booting('bmc-1', bmcUrl(mac)));
    await ran;
    unbind();
    const run = dpu.runs[0]!;
    expect(dpu.runs).toHaveLength(1);
    expect(run.outcome).toBe('complete');
    expect(run.firmware).toMatchObject({ size: IMAGE_BYTES, bytes: IMAGE_BYTES, requests: 1 + Math.ceil(IMAGE_BYTES / (64 * 1024)) });
    expect(run.firmware!.url).toContain(`/by-mac/${mac}/`);
    expect(run.dhcp).toMatchObject({ via: 'direct' });
    expect(env.suite.ctx.store.require(serial).state).toBe('onboarded');
  });

  it('UEFI HTTP boot of an opi device reads its image and onboards', async () => {
    const { serial, mac, dpu } = await dpuFor(env, 'opi', dhcp);
    const run = await dpu.boot(booting('bmc-2', imageUrl(env.config, 'localhost', env.catalogue.get('sim-os.iso')!, 'device', mac), 'uefi-http'));
    expect(run.outcome).toBe('complete');
    expect(run.firmware!.url.startsWith('http://')).toBe(true);
    expect(env.suite.ctx.store.require(serial).state).toBe('onboarded');
  });

  it('never-boots: power-on leaves no trace on any server', async () => {
    const { serial, mac, dpu } = await dpuFor(env, 'rfc8572', dhcp, faultsFromNames(['never-boots']));
    const run = await dpu.boot(booting('bmc-3', bmcUrl(mac)));
    expect(run).toMatchObject({ outcome: 'dark' });
    expect(run.firmware).toBeUndefined();
    expect(env.suite.ctx.store.history(serial, 0, 100).filter((e) => e.source === 'bootstrap')).toEqual([]);
  });

  it('bad-image-hash, agent-crash and wrong-password end where the agent stops', async () => {
    const cases = [
      { faults: ['bad-image-hash'], outcome: 'failed', stage: 'boot-image', state: 'failed' },
      { faults: ['agent-crash'], outcome: 'crashed', stage: 'boot-image', state: 'provisioning' },
      { faults: ['wrong-password'], outcome: 'failed', stage: 'get-bootstrapping-data', state: 'registered' },
    ];
    for (const c of cases) {
      const { serial, mac, dpu } = await dpuFor(env, 'rfc8572', dhcp, faultsFromNames(c.faults));
      if (c.faults[0] === 'wrong-password') dpu.config.identity.password = 'right';
      const run = await dpu.boot(booting('bmc-4', bmcUrl(mac)));
      expect({ outcome: run.outcome, stage: run.stage, state: env.suite.ctx.store.require(serial).state }, c.faults[0]).toEqual({ outcome: c.outcome, stage: c.stage, state: c.state });
    }
  });

  it('an image the server does not have fails at firmware, before DHCP and sZTP', async () => {
    const { dpu } = await dpuFor(env, 'rfc8572', dhcp);
    const run = await dpu.boot(booting('bmc-5', `https://localhost:${env.config.images.tlsPort}/images/no-such.iso`));
    expect(run).toMatchObject({ outcome: 'failed', stage: 'firmware' });
    expect(run.error).toContain('404');
  });

  it('a second booting during a run is a reset: the first run is aborted, the second completes', async () => {
    const { mac, dpu } = await dpuFor(env, 'opi', dhcp);
    const first = dpu.boot(booting('bmc-6', bmcUrl(mac)));
    const second = dpu.boot(booting('bmc-6', bmcUrl(mac)));
    const [a, b] = await Promise.all([first, second]);
    expect(a.outcome).toBe('aborted');
    expect(b.outcome).toBe('complete');
  });

  it('refuses unknown fault names with a typed error', () => {
    expect(() => faultsFromNames(['melts'])).toThrow(/unknown DPU fault "melts"/);
  });
});

describe('option 143 as udhcpc exports it', () => {
  it('decodes the rfc8572 list and the opi text form to base URLs', () => {
    const uri = 'https://ztp.lab:8443';
    const list = Buffer.concat([Buffer.from([0, uri.length]), Buffer.from(uri)]).toString('hex');
    expect(sztpUrlsFromOption(list)).toEqual([uri]);
    expect(sztpUrlsFromOption(Buffer.from(`${uri}/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data`).toString('hex'))).toEqual([uri]);
  });
});

describe.skipIf(!isRoot)('simulated DPU, netns DHCP path (udhcpc against the suite responder)', () => {
  let env: Awaited<ReturnType<typeof lab>>;
  let dhcp: NetnsDhcp;
  beforeAll(async () => {
    dhcp = await NetnsDhcp.create({ log: silentLogger, hostAddress: '10.231.7.1/24', attempts: 3 });
    env = await lab({
      dhcp: { interface: dhcp.hostInterface, port: 67, subnets: [{ subnet: '10.231.7.0/24', pools: [{ start: '10.231.7.100', end: '10.231.7.150' }] }] },
    });
  }, 60_000);
  afterAll(async () => {
    await env?.suite.stop();
    await dhcp?.close();
  });

  it('both profiles: a real lease with option 143 in the profile encoding, the URL used to onboard, the lease in the history', async () => {
    for (const profile of ['rfc8572', 'opi'] as const) {
      const { serial, mac, dpu } = await dpuFor(env, profile, dhcp);
      dpu.config.bootstrapUrl = 'https://unused.invalid:1'; // only DHCP can tell it where to go
      const run = await dpu.boot(booting('bmc-n', imageUrl(env.config, 'localhost', env.catalogue.get('sim-os.iso')!, 'bmc', mac)));
      expect(run.dhcp, profile).toMatchObject({ via: 'netns', sztpUrls: [`https://localhost:${env.config.bootstrap.port}`] });
      expect(run.dhcp!.address).toMatch(/^10\.231\.7\.(1[0-4][0-9]|150)$/);
      expect(run.outcome, `${profile}: ${run.error}`).toBe('complete');
      const leases = env.suite.ctx.store.history(serial, 0, 100).filter((e) => e.source === 'dhcp');
      expect(leases.length, profile).toBeGreaterThan(0);
      expect(JSON.stringify(leases)).toContain(mac);
    }
  }, 60_000);
});
