// Every entry of the quirk table (src/redfish/quirks.ts), one test per behaviour it lists: a BMC
// built from miniTree plus the vendor's fixture (test/redfish/fixtures/<id>/: its service root,
// manager and the answers it gives) does what that vendor does, and the client
//   - with the table as shipped takes the fallback the entry describes, and
//   - with that one member of the entry taken out fails (or visibly does the wrong thing),
// so no entry stays in the table without a reason. Waits (media settle, slow media views) run on
// a virtual clock: the client's sleeps advance it, the fixture BMC reads it.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isZtpError, type ZtpError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { QUIRKS, type Quirk } from '../../src/redfish/quirks.js';
import { openBmcSession, type BmcSession, type RedfishBmcSession, type RedfishClock, type StepOutcome } from '../../src/redfish/index.js';
import { TestBmc, type Recorded, type Reply } from './server.js';
import { basicActions, fixtureReply, loadFixture, miniTree, paths, type TreeOptions } from './tree.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const creds = { username: 'root', password: 'quirk-test-pw' };
const IMAGE = 'https://images.lab/by-mac/02:00:00:00:00:01/installer.iso';

/** Time that moves only when the client sleeps (its polls and back-offs). */
class VirtualClock implements RedfishClock {
  t = Date.now();
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    this.t += Math.max(0, ms);
    await new Promise((r) => setImmediate(r));
  }
}

/** The vendor tree ids, as that BMC names its system and manager. */
const TREES: Record<string, TreeOptions> = {
  idrac: { systemId: 'System.Embedded.1', managerId: 'iDRAC.Embedded.1', mediaOnSystem: true },
  ilo: { systemId: '1', managerId: '1' },
  supermicro: { systemId: '1', managerId: '1', bootTargets: ['None', 'Pxe', 'UsbCd', 'Hdd'] },
  xcc: { systemId: '1', managerId: '1', actions: false },
  openbmc: { systemId: 'system', managerId: 'bmc' },
  ami: { systemId: 'Self', managerId: 'Self' },
  bluefield: { systemId: 'Bluefield', managerId: 'Bluefield_BMC' },
  ipu: { systemId: '1', managerId: '1', mediaOnSystem: true, bootTargets: ['Cd', 'None'], resetTypes: ['GracefulShutdown', 'GracefulRestart'] },
};

/** The shipped table with one member of one entry removed (or the whole entry). */
function tableWithout(id: string, member?: keyof Quirk): Quirk[] {
  if (!QUIRKS.some((q) => q.id === id)) throw new Error(`no quirk ${id}`);
  if (!member) return QUIRKS.filter((q) => q.id !== id);
  return QUIRKS.map((q) => {
    if (q.id !== id) return q;
    if (q[member] === undefined) throw new Error(`quirk ${id} has no ${member}`);
    const copy = { ...q };
    delete copy[member];
    return copy;
  });
}

type Handler = (r: Recorded, bmc: TestBmc, clock: VirtualClock) => Reply | undefined;

interface Outcome<T> {
  result?: T;
  error?: ZtpError;
  bmc: TestBmc;
  quirkIds: string[];
  steps: StepOutcome[];
}

const started: TestBmc[] = [];
afterEach(async () => {
  for (const b of started.splice(0)) await b.close();
});

/** A fixture BMC for quirk `id` answering through `handler` (then miniTree's basic actions), driven by `fn`. */
async function drive<T>(
  id: string,
  table: readonly Quirk[],
  fn: (s: BmcSession & RedfishBmcSession) => Promise<T>,
  o: { handler?: Handler; etags?: 'strong'; prepare?: (bmc: TestBmc) => void } = {},
): Promise<Outcome<T>> {
  const clock = new VirtualClock();
  const treeOptions = TREES[id]!;
  const actions = basicActions(treeOptions);
  const bmc = await TestBmc.start({
    tree: { ...miniTree(treeOptions), ...loadFixture(join(FIXTURES, id)) },
    sessions: creds,
    acceptPatch: true,
    ...(o.etags ? { etags: o.etags } : {}),
    handler: (r, b) => o.handler?.(r, b, clock) ?? actions(r, b),
  });
  started.push(bmc);
  o.prepare?.(bmc);
  const steps: StepOutcome[] = [];
  const out: Outcome<T> = { bmc, quirkIds: [], steps };
  try {
    const session = await openBmcSession({ url: bmc.url, ...creds }, {
      log: silentLogger,
      clock,
      quirkTable: table,
      onStep: (s) => steps.push(s),
      tuning: { retries: 3, backoffBaseMs: 10, backoffCapMs: 50, headersTimeoutMs: 5_000, bodyTimeoutMs: 5_000 },
      timeouts: { pollMs: 50, pollCapMs: 2_000 },
    });
    out.quirkIds = session.quirkIds;
    try {
      out.result = await fn(session);
    } finally {
      await session.close();
    }
  } catch (err) {
    if (!isZtpError(err)) throw err;
    out.error = err;
  }
  expect(bmc.liveSessions.size).toBe(0);
  return out;
}

const reply = (id: string, name: string, status: number): Reply => ({ status, body: fixtureReply(join(FIXTURES, id), name) });

/**
 * A slot that keeps reporting Inserted for `lingerMs` after EjectMedia, refusing an insert
 * meanwhile with `refusal` (iDRAC, Supermicro). It starts with a stale image in it.
 */
function lingeringEject(id: string, lingerMs: number, refusal: Reply): { handler: Handler; prepare: (bmc: TestBmc) => void } {
  const p = paths(TREES[id]);
  let ejectedAt: number | null = null;
  return {
    prepare: (bmc) => Object.assign(bmc.resource(p.slot)!, { Image: 'https://images.lab/old.iso', Inserted: true }),
    handler: (r, bmc, clock) => {
      const slot = bmc.resource(p.slot)!;
      if (ejectedAt !== null && clock.now() - ejectedAt >= lingerMs) {
        slot.Inserted = false;
        ejectedAt = null;
      }
      if (r.method === 'POST' && r.path === p.eject) {
        ejectedAt = clock.now();
        slot.Image = null; // Inserted stays true for a while
        return { status: 204 };
      }
      if (r.method === 'POST' && r.path === p.insert && slot.Inserted === true) return refusal;
      return undefined;
    },
  };
}

describe('the quirk table', () => {
  it('every entry has a fixture, and each fixture BMC is recognised by its entry (and only through it)', async () => {
    expect(QUIRKS.map((q) => q.id).sort()).toEqual(Object.keys(TREES).sort());
    for (const id of Object.keys(TREES)) {
      const full = await drive(id, QUIRKS, async () => undefined);
      expect(full.quirkIds, id).toContain(id);
      const without = await drive(id, tableWithout(id), async () => undefined);
      expect(without.quirkIds, id).not.toContain(id);
    }
    // A BMC that says nothing about its vendor gets no quirk.
    const bmc = await TestBmc.start({ tree: miniTree(), sessions: creds });
    started.push(bmc);
    const session = await openBmcSession({ url: bmc.url, ...creds }, { log: silentLogger });
    expect(session.quirkIds).toEqual([]);
    await session.close();
  });
});

describe('Dell iDRAC', () => {
  const p = paths(TREES.idrac);

  it('SYS518 "iDRAC not ready" on InsertMedia is retried (transientMessages)', async () => {
    let refusals = 0;
    const handler: Handler = (r) => (r.method === 'POST' && r.path === p.insert && refusals++ === 0 ? reply('idrac', 'error-not-ready.json', 400) : undefined);
    const ok = await drive('idrac', QUIRKS, (s) => s.insertMedia(IMAGE), { handler });
    expect(ok.error).toBeUndefined();
    expect(ok.bmc.requestsOf('POST', p.insert)).toHaveLength(2);
    refusals = 0;
    const broken = await drive('idrac', tableWithout('idrac', 'transientMessages'), (s) => s.insertMedia(IMAGE), { handler });
    expect(broken.error?.details?.messageId).toBe('IDRAC.2.8.SYS518');
  });

  it('Inserted lingers ~8 s after EjectMedia and an insert meanwhile is a 500: the eject waits it out (mediaSettleMs)', async () => {
    const linger = () => lingeringEject('idrac', 8_000, reply('idrac', 'error-still-ejecting.json', 500));
    const ok = await drive('idrac', QUIRKS, (s) => s.insertMedia(IMAGE), linger());
    expect(ok.error).toBeUndefined();
    expect(ok.bmc.resource(p.slot)).toMatchObject({ Image: IMAGE, Inserted: true });
    const broken = await drive('idrac', tableWithout('idrac', 'mediaSettleMs'), (s) => s.insertMedia(IMAGE), linger());
    expect(broken.error?.details?.httpStatus).toBe(500);
    expect(broken.steps.find((s) => s.step === 'eject')?.detail).toMatch(/still reports Inserted/);
  });

  it('a 409 on On just after a power-off is transient: the reset is tried again (resetConflictRetries)', async () => {
    let conflicts = 0;
    const handler: Handler = (r) => (r.method === 'POST' && r.path === p.reset && (r.body as { ResetType: string }).ResetType === 'On' && conflicts++ < 2 ? reply('idrac', 'error-in-transition.json', 409) : undefined);
    const ok = await drive('idrac', QUIRKS, (s) => s.reset('On'), { handler });
    expect(ok.result).toMatchObject({ outcome: 'reset', resetType: 'On' });
    expect(ok.bmc.resource(p.sys)!.PowerState).toBe('On');
    conflicts = 0;
    const broken = await drive('idrac', tableWithout('idrac', 'resetConflictRetries'), (s) => s.reset('On'), { handler });
    expect(broken.error?.details?.httpStatus).toBe(409);
  });
});

describe('HPE iLO', () => {
  const p = paths(TREES.ilo);

  it('EjectMedia is sent with the body {} at once (ejectBodyFirst)', async () => {
    const handler: Handler = (r) => (r.method === 'POST' && r.path === p.eject && r.body === undefined ? reply('ilo', 'error-eject-no-body.json', 400) : undefined);
    const prepare = (bmc: TestBmc) => Object.assign(bmc.resource(p.slot)!, { Image: 'https://images.lab/old.iso', Inserted: true });
    const ok = await drive('ilo', QUIRKS, (s) => s.ejectMedia(), { handler, prepare });
    expect(ok.error).toBeUndefined();
    expect(ok.bmc.requestsOf('POST', p.eject).map((r) => r.body)).toEqual([{}]);
    const broken = await drive('ilo', tableWithout('ilo', 'ejectBodyFirst'), (s) => s.ejectMedia(), { handler, prepare });
    expect(broken.bmc.requestsOf('POST', p.eject).map((r) => r.body)).toEqual([undefined, {}]);
  });

  it('UnableToModifyDuringSystemPOST on the boot override is retried until POST ends (transientMessages)', async () => {
    let refusals = 0;
    const handler: Handler = (r) => (r.method === 'PATCH' && r.path === p.sys && refusals++ < 2 ? reply('ilo', 'error-during-post.json', 400) : undefined);
    const ok = await drive('ilo', QUIRKS, (s) => s.setOneTimeBoot('Cd'), { handler });
    expect(ok.error).toBeUndefined();
    expect(ok.bmc.resource(p.sys)!.Boot).toMatchObject({ BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' });
    refusals = 0;
    const broken = await drive('ilo', tableWithout('ilo', 'transientMessages'), (s) => s.setOneTimeBoot('Cd'), { handler });
    expect(broken.error?.details?.messageId).toBe('iLO.2.14.UnableToModifyDuringSystemPOST');
  });
});

describe('Supermicro', () => {
  const p = paths(TREES.supermicro);

  it('OemLicenseNotPassed is final: REDFISH_UNSUPPORTED, no retry (unsupportedMessages)', async () => {
    const handler: Handler = (r) => (r.method === 'POST' && r.path === p.insert ? reply('supermicro', 'error-license.json', 400) : undefined);
    const ok = await drive('supermicro', QUIRKS, (s) => s.insertMedia(IMAGE), { handler });
    expect(ok.error?.code).toBe('REDFISH_UNSUPPORTED');
    expect(ok.error?.details?.messageId).toBe('SMC.1.0.OemLicenseNotPassed');
    expect(ok.bmc.requestsOf('POST', p.insert)).toHaveLength(1);
    const broken = await drive('supermicro', tableWithout('supermicro', 'unsupportedMessages'), (s) => s.insertMedia(IMAGE), { handler });
    expect(broken.error?.code).toBe('REDFISH_ACTION_FAILED');
  });

  it('a stale mount takes ~7 s to clear after EjectMedia; an insert meanwhile is refused (mediaSettleMs)', async () => {
    const linger = () => lingeringEject('supermicro', 7_000, reply('supermicro', 'error-stale-image.json', 400));
    const ok = await drive('supermicro', QUIRKS, (s) => s.insertMedia(IMAGE), linger());
    expect(ok.error).toBeUndefined();
    expect(ok.bmc.resource(p.slot)).toMatchObject({ Image: IMAGE, Inserted: true });
    const broken = await drive('supermicro', tableWithout('supermicro', 'mediaSettleMs'), (s) => s.insertMedia(IMAGE), linger());
    expect(broken.error?.details?.messageId).toBe('Base.1.4.ResourceInUse');
  });
});

describe('Lenovo XCC', () => {
  const rdoc = '/redfish/v1/Managers/1/VirtualMedia/RDOC1';
  const ext = '/redfish/v1/Managers/1/VirtualMedia/EXT1';

  it('no media actions (PATCH, probed); the EXT slots take URLs, the RDOC upload slots are not tried (preferSlots)', async () => {
    const handler: Handler = (r) => (r.method === 'PATCH' && r.path === rdoc && (r.body as { Image?: unknown }).Image ? reply('xcc', 'error-upload-slot.json', 400) : undefined);
    const ok = await drive('xcc', QUIRKS, (s) => s.insertMedia(IMAGE), { handler });
    expect(ok.result).toEqual({ outcome: 'inserted', slot: 'EXT1' });
    expect(ok.bmc.resource(ext)).toMatchObject({ Image: IMAGE, Inserted: true });
    expect(ok.bmc.requestsOf('PATCH', rdoc)).toEqual([]);
    expect(ok.steps.find((s) => s.step === 'insert')?.via).toMatch(/^patch/);
    const broken = await drive('xcc', tableWithout('xcc', 'preferSlots'), (s) => s.insertMedia(IMAGE), { handler });
    expect(broken.result).toEqual({ outcome: 'inserted', slot: 'EXT1' });
    expect(broken.bmc.requestsOf('PATCH', rdoc).length).toBeGreaterThan(0); // refused first
    expect(broken.steps.filter((s) => s.step === 'insert').map((s) => s.outcome)).toEqual(['failed', 'ok']);
  });
});

describe('OpenBMC', () => {
  const p = paths(TREES.openbmc);

  it('an http:// image is refused before any call: the BMC fetches only https/smb (imageSchemes)', async () => {
    const handler: Handler = (r) => (r.method === 'POST' && r.path === p.insert && /^http:/.test(String((r.body as { Image?: unknown }).Image)) ? reply('openbmc', 'error-scheme.json', 400) : undefined);
    const plain = IMAGE.replace(/^https:/, 'http:');
    const ok = await drive('openbmc', QUIRKS, (s) => s.insertMedia(plain), { handler });
    expect(ok.error?.code).toBe('REDFISH_UNSUPPORTED');
    expect(ok.error?.message).toMatch(/https/);
    expect(ok.bmc.requestsOf('POST', p.insert)).toEqual([]);
    const broken = await drive('openbmc', tableWithout('openbmc', 'imageSchemes'), (s) => s.insertMedia(plain), { handler });
    expect(broken.error?.details?.messageId).toBe('Base.1.16.0.ActionParameterNotSupported');
    expect(broken.bmc.requestsOf('POST', p.insert)).toHaveLength(1);
    // https goes through.
    expect((await drive('openbmc', QUIRKS, (s) => s.insertMedia(IMAGE), { handler })).result).toMatchObject({ outcome: 'inserted' });
  });

  it('If-Match is never sent on PATCH: bmcweb answers 412 to valid tags (noIfMatch)', async () => {
    const handler: Handler = (r) => (r.method === 'PATCH' && r.headers['if-match'] !== undefined ? reply('openbmc', 'error-if-match.json', 412) : undefined);
    const ok = await drive('openbmc', QUIRKS, (s) => s.setOneTimeBoot('Cd'), { handler, etags: 'strong' });
    expect(ok.error).toBeUndefined();
    expect(ok.bmc.requestsOf('PATCH', p.sys).map((r) => r.headers['if-match'])).toEqual([undefined]);
    expect(ok.bmc.resource(p.sys)!.Boot).toMatchObject({ BootSourceOverrideTarget: 'Cd' });
    const broken = await drive('openbmc', tableWithout('openbmc', 'noIfMatch'), (s) => s.setOneTimeBoot('Cd'), { handler, etags: 'strong' });
    const tags = broken.bmc.requestsOf('PATCH', p.sys).map((r) => r.headers['if-match']);
    expect(tags[0]).toMatch(/^"/); // refused with 412 first
    expect(tags.at(-1)).toBeUndefined();
  });
});

describe('AMI MegaRAC', () => {
  const p = paths(TREES.ami);
  const sd = '/redfish/v1/Systems/Self/SD';

  it('the boot override goes to the future-state object Systems/Self/SD (bootSettingsPath)', async () => {
    // The system accepts the PATCH and ignores it, as that firmware does.
    const handler: Handler = (r) => (r.method === 'PATCH' && r.path === p.sys ? { status: 204 } : undefined);
    const ok = await drive('ami', QUIRKS, (s) => s.setOneTimeBoot('Cd'), { handler });
    expect(ok.error).toBeUndefined();
    expect(ok.bmc.resource(sd)!.Boot).toMatchObject({ BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once', BootSourceOverrideMode: 'UEFI' });
    expect(ok.steps.find((s) => s.step === 'boot-override')?.via).toBe('settings-object');
    const broken = await drive('ami', tableWithout('ami', 'bootSettingsPath'), (s) => s.setOneTimeBoot('Cd'), { handler });
    expect(broken.error).toBeUndefined(); // the BMC said yes ...
    expect(broken.bmc.resource(sd)!.Boot).toMatchObject({ BootSourceOverrideTarget: 'None' }); // ... and will not boot from CD
  });
});

describe('NVIDIA BlueField', () => {
  const p = paths(TREES.bluefield);
  const settings = '/redfish/v1/Systems/Bluefield/Settings';
  const oem = '/redfish/v1/Managers/Bluefield_BMC/Oem/Nvidia';
  const simpleUpdate = '/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate';
  const task = '/redfish/v1/TaskService/Tasks/0';

  it('boot settings go to Systems/Bluefield/Settings, which the system does not advertise (bootSettingsPath)', async () => {
    const handler: Handler = (r) => (r.method === 'PATCH' && r.path === p.sys ? reply('bluefield', 'error-boot-on-system.json', 400) : undefined);
    const boot = (s: BmcSession) => s.setOneTimeBoot('UefiHttp', { httpBootUri: 'http://images.lab/dpu.efi' });
    const ok = await drive('bluefield', QUIRKS, boot, { handler });
    expect(ok.error).toBeUndefined();
    expect(ok.bmc.resource(settings)!.Boot).toMatchObject({ BootSourceOverrideTarget: 'UefiHttp', HttpBootUri: 'http://images.lab/dpu.efi' });
    const broken = await drive('bluefield', tableWithout('bluefield', 'bootSettingsPath'), boot, { handler });
    expect(broken.error?.details?.messageId).toBe('Base.1.15.0.PropertyNotWritable');
  });

  it('a BFB goes through SimpleUpdate to the DPU_OS target after RShim is enabled, its task followed to the end (bfb)', async () => {
    const handler: Handler = (r, bmc) => {
      if (r.method === 'POST' && r.path === simpleUpdate) {
        const rshim = (bmc.resource(oem)!.BmcRShim as { BmcRShimEnabled: boolean }).BmcRShimEnabled;
        const targets = (r.body as { Targets?: string[] }).Targets;
        // Without RShim the push cannot reach the DPU; without Targets the BMC would flash itself.
        bmc.set(task, fixtureReply(join(FIXTURES, 'bluefield'), rshim && targets?.includes('/redfish/v1/UpdateService/FirmwareInventory/DPU_OS') ? 'reply-task-completed.json' : 'reply-task-rshim-disabled.json'));
        return { status: 202, headers: { location: task } };
      }
      return undefined;
    };
    const ok = await drive('bluefield', QUIRKS, (s) => s.installBfb('http://images.lab/dpu.bfb'), { handler });
    expect(ok.error).toBeUndefined();
    expect(ok.bmc.resource(oem)!.BmcRShim).toEqual({ BmcRShimEnabled: true });
    expect(ok.bmc.requestsOf('POST', simpleUpdate)[0]!.body).toEqual({ ImageURI: 'http://images.lab/dpu.bfb', TransferProtocol: 'HTTP', Targets: ['/redfish/v1/UpdateService/FirmwareInventory/DPU_OS'] });
    expect(ok.result!.steps.map((s) => `${s.step}:${s.outcome}`)).toEqual(['rshim:ok', 'bfb-update:ok', 'boot-requested:ok']);
    const broken = await drive('bluefield', tableWithout('bluefield', 'bfb'), (s) => s.installBfb('http://images.lab/dpu.bfb'), { handler });
    expect(broken.error?.code).toBe('REDFISH_TASK_FAILED');
    expect(broken.bmc.requestsOf('PATCH', oem)).toEqual([]);
  });
});

describe('probed, not tabled: the DPU boot order', () => {
  it('inventory lists the boot order by name and marks the out-of-band network entries', async () => {
    const sys = paths(TREES.bluefield).sys;
    const prepare = (bmc: TestBmc) => {
      const system = bmc.resource(sys)!;
      system.BootOptions = { '@odata.id': `${sys}/BootOptions` };
      (system.Boot as Record<string, unknown>).BootOrder = ['Boot0003', 'Boot0001', 'Boot0002', 'Boot0000', 'Boot0009'];
    };
    const r = await drive('bluefield', QUIRKS, (s) => s.inventory(), { prepare });
    expect(r.result!.bootOrder).toEqual([
      { reference: 'Boot0003', name: 'UEFI eMMC Device', oobNetwork: false },
      { reference: 'Boot0001', name: 'NET-OOB-IPV4', oobNetwork: true },
      { reference: 'Boot0002', name: 'NET-OOB-IPV4-HTTP', oobNetwork: true },
      { reference: 'Boot0000', name: 'NET-NIC_P0-IPV4', oobNetwork: false },
      { reference: 'Boot0009', name: null, oobNetwork: false },
    ]);
    // Without Boot.BootOrder there is no order to report (not an empty one).
    expect((await drive('ilo', QUIRKS, (s) => s.inventory())).result!.bootOrder).toBeUndefined();
  });

  it('boot from the OOB network: BootNext where UefiBootNext is allowed, else BootOrder; both PATCHed to Systems/Bluefield/Settings', async () => {
    const sys = paths(TREES.bluefield).sys;
    const settings = '/redfish/v1/Systems/Bluefield/Settings';
    const prepare = (bootNext: boolean) => (bmc: TestBmc) => {
      const system = bmc.resource(sys)!;
      system.BootOptions = { '@odata.id': `${sys}/BootOptions` };
      const boot = system.Boot as Record<string, unknown>;
      boot.BootOrder = ['Boot0003', 'Boot0000', 'Boot0001', 'Boot0002'];
      if (bootNext) boot['BootSourceOverrideTarget@Redfish.AllowableValues'] = [...(boot['BootSourceOverrideTarget@Redfish.AllowableValues'] as string[]), 'UefiBootNext'];
    };
    // the recorded BlueField answer to a Boot PATCH on the System itself
    const handler: Handler = (r) => (r.method === 'PATCH' && r.path === sys ? reply('bluefield', 'error-boot-on-system.json', 400) : undefined);
    const next = await drive('bluefield', QUIRKS, (s) => s.bootFromOobNetwork!({ restart: false }), { handler, prepare: prepare(true) });
    expect(next.error).toBeUndefined();
    expect(next.bmc.requestsOf('PATCH', settings).map((r) => r.body)).toEqual([
      { Boot: { BootNext: 'Boot0001', BootSourceOverrideTarget: 'UefiBootNext', BootSourceOverrideEnabled: 'Once', BootSourceOverrideMode: 'UEFI' } },
    ]);
    expect(next.bmc.requestsOf('PATCH', sys).filter((r) => r.path === sys)).toEqual([]);

    const order = await drive('bluefield', QUIRKS, (s) => s.bootFromOobNetwork!({ prefer: 'http', restart: false }), { handler, prepare: prepare(false) });
    expect(order.error).toBeUndefined();
    expect(order.bmc.requestsOf('PATCH', settings).map((r) => r.body)).toEqual([{ Boot: { BootOrder: ['Boot0002', 'Boot0003', 'Boot0000', 'Boot0001'] } }]);
    expect(order.result!.previousBootOrder).toEqual(['Boot0003', 'Boot0000', 'Boot0001', 'Boot0002']);
    // without the quirk's settings path the System is tried first: its recorded refusal, then nothing else to try
    const broken = await drive('bluefield', tableWithout('bluefield', 'bootSettingsPath'), (s) => s.bootFromOobNetwork!({ restart: false }), { handler, prepare: prepare(true) });
    expect(broken.error?.details?.messageId).toBe('Base.1.15.0.PropertyNotWritable');
  });
});

describe('Intel IPU', () => {
  const p = paths(TREES.ipu);

  /** The IPU: InsertMedia wants TransferMethod Upload; the slot shows the image ~2 minutes later. */
  function ipu(): Handler {
    let pending: { image: string; at: number } | null = null;
    return (r, bmc, clock) => {
      const slot = bmc.resource(p.slot)!;
      if (pending && clock.now() - pending.at >= 120_000) {
        Object.assign(slot, { Image: pending.image, Inserted: true });
        pending = null;
      }
      if (r.method === 'POST' && r.path === p.insert) {
        const body = r.body as { Image: string; TransferMethod?: string };
        if (body.TransferMethod !== 'Upload') return reply('ipu', 'error-stream.json', 400);
        pending = { image: body.Image, at: clock.now() };
        return { status: 204 };
      }
      return undefined;
    };
  }

  it('InsertMedia carries TransferMethod "Upload" from the first call; its error would not say so (insertDefaults)', async () => {
    const ok = await drive('ipu', QUIRKS, (s) => s.insertMedia(IMAGE), { handler: ipu() });
    expect(ok.error).toBeUndefined();
    expect(ok.bmc.requestsOf('POST', p.insert).map((r) => r.body)).toEqual([{ Image: IMAGE, TransferMethod: 'Upload' }]);
    const broken = await drive('ipu', tableWithout('ipu', 'insertDefaults'), (s) => s.insertMedia(IMAGE), { handler: ipu() });
    expect(broken.error?.code).toBe('REDFISH_ACTION_FAILED');
    expect(broken.bmc.requestsOf('POST', p.insert)).toHaveLength(1);
  });

  it('the media view shows the image ~2 minutes after the insert: verify-inserted waits that long (mediaSettleMs)', async () => {
    const ok = await drive('ipu', QUIRKS, (s) => s.insertMedia(IMAGE), { handler: ipu() });
    expect(ok.error).toBeUndefined();
    expect(ok.steps.find((s) => s.step === 'verify-inserted')).toMatchObject({ outcome: 'ok' });
    const broken = await drive('ipu', tableWithout('ipu', 'mediaSettleMs'), (s) => s.insertMedia(IMAGE), { handler: ipu() });
    expect(broken.error).toMatchObject({ code: 'REDFISH_TIMEOUT' });
    expect(broken.error?.details?.step).toBe('verify-inserted');
  });

  it('probed, not tabled: no EjectMedia action (a new insert replaces the image) and Graceful* resets only', async () => {
    const prepare = (bmc: TestBmc) => {
      Object.assign(bmc.resource(p.slot)!, { Image: 'https://images.lab/old.iso', Inserted: true });
    };
    const r = await drive('ipu', tableWithout('ipu'), async (s) => {
      await s.ejectMedia();
      return s.reset('On');
    }, { prepare });
    expect(r.error).toBeUndefined();
    expect(r.steps.find((s) => s.step === 'eject')).toMatchObject({ outcome: 'skipped' });
    expect(r.result).toMatchObject({ outcome: 'reset', resetType: 'GracefulRestart' });
  });
});
