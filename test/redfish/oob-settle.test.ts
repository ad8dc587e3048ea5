// Two things a DPU onboarding needs from its BMC beyond the canonical ISO sequence, against the
// BMC emulator: (1) the next boot from the DPU's out-of-band network port (BlueField NET-OOB-…),
// through Boot.BootNext + UefiBootNext where offered, else Boot.BootOrder (restored by
// clearBoot); (2) a ComputerSystem.Reset or InsertMedia whose answer is lost with a keep-alive
// connection the BMC closed: settled by reading the BMC's state, sent again only when it did not
// take. The emulator's counters show how many resets reached its power state machine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isZtpError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { parseFaults, startBmcEmulator, ZERO_TIMING, type BootingEvent, type EmulatorTiming, type QuirkMode, type RunningBmcEmulator } from '../../src/redfish/emulator/index.js';
import { openBmcSession, type RedfishBmcSession } from '../../src/redfish/index.js';
import type { BmcSession, StepOutcome } from '../../src/redfish/api.js';
import { startImageServer, type ImageServer } from '../redfish-emulator/helpers.js';

const tuning = { headersTimeoutMs: 10_000, bodyTimeoutMs: 10_000, connectTimeoutMs: 5_000, retries: 3, backoffBaseMs: 10, backoffCapMs: 50, retryAfterCapMs: 200 };
const timeouts = { mediaMs: 3_000, powerMs: 5_000, taskMs: 5_000, bfbMs: 8_000, pollMs: 10, pollCapMs: 100 };

let images: ImageServer;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  images = await startImageServer();
});
afterAll(async () => {
  await images?.stop();
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

interface Lab {
  emu: RunningBmcEmulator;
  booting: BootingEvent[];
  open(): Promise<{ session: BmcSession & RedfishBmcSession; steps: StepOutcome[] }>;
  close(): Promise<void>;
}

async function lab(mode: QuirkMode, opts: { faults?: string; initialPower?: 'On' | 'Off'; timing?: Partial<EmulatorTiming> } = {}): Promise<Lab> {
  const emu = await startBmcEmulator({
    count: 1,
    quirks: mode,
    timing: { ...ZERO_TIMING, ...opts.timing },
    mediaCa: images.caPem,
    mediaTimeoutMs: 2_000,
    mediaChunkBytes: 16 * 1024,
    mediaReads: 3,
    ...(opts.initialPower ? { initialPower: opts.initialPower } : {}),
    ...(opts.faults ? { faults: parseFaults(opts.faults) } : {}),
  });
  const booting: BootingEvent[] = [];
  emu.emulator.events.on('booting', (e) => booting.push(e));
  const ep = emu.endpoints[0]!;
  let password = ep.password;
  const sessions: RedfishBmcSession[] = [];
  return {
    emu,
    booting,
    async open() {
      const steps: StepOutcome[] = [];
      const session = await openBmcSession(
        { url: ep.url, username: ep.username, password, newPassword: 'Fresh-Pass-7781' },
        { log: silentLogger, onStep: (s) => steps.push(s), onPasswordChange: (p) => void (password = p), tuning, timeouts },
      );
      sessions.push(session);
      return { session, steps };
    },
    async close() {
      for (const s of sessions) await s.close();
      expect(emu.emulator.bmcs[0]!.openSessions).toBe(0);
      await emu.close();
    },
  };
}

describe('boot from the out-of-band network (BlueField NET-OOB-…)', () => {
  it('BootNext + UefiBootNext once, on the Settings object: the next boot is the OOB entry, then the disk again', async () => {
    const l = await lab('bluefield');
    try {
      const { session } = await l.open();
      const inv = await session.inventory();
      expect(inv.bootOrder!.filter((b) => b.oobNetwork).map((b) => b.name)).toEqual(['NET-OOB-IPV4', 'NET-OOB-IPV4-HTTP']);
      const result = await session.bootFromOobNetwork!();
      expect(result.path).toBe('oob-network');
      expect(result.previousBootOrder).toBeUndefined();
      const set = result.steps.find((s) => s.step === 'boot-oob')!;
      expect(set).toMatchObject({ outcome: 'ok', via: 'boot-next+settings-object' });
      expect(set.detail).toContain('"BootNext":"Boot0002"');
      expect(result.steps.map((s) => s.step)).toEqual(['boot-oob', 'reset', 'wait-power', 'boot-requested']);
      // the firmware booted the OOB PXE entry and consumed BootNext (UEFI deletes it)
      expect(l.booting.at(-1)).toMatchObject({ via: 'pxe', target: 'UefiBootNext', bootOption: { reference: 'Boot0002', name: 'NET-OOB-IPV4' } });
      const dpu = l.emu.emulator.bmcs[0]!.dpu;
      expect(dpu.boot).toMatchObject({ BootNext: null, BootSourceOverrideEnabled: 'Disabled' });
      // the boot order itself was never touched
      expect(dpu.boot.BootOrder).toEqual(['Boot0000', 'Boot0001', 'Boot0002', 'Boot0003']);

      // prefer HTTP: the NET-OOB-…-HTTP entry (UEFI HTTP boot, the URL from DHCP); a restart this time
      const http = await session.bootFromOobNetwork!({ prefer: 'http' });
      expect(http.steps.find((s) => s.step === 'reset')).toMatchObject({ detail: 'ForceRestart' });
      expect(l.booting.at(-1)).toMatchObject({ via: 'uefi-http', imageUrl: null, bootOption: { reference: 'Boot0003' } });

      // the next plain restart boots the head of the boot order again: the eMMC
      await session.reset('ForceRestart');
      await session.waitForPower('On');
      expect(l.booting.at(-1)).toMatchObject({ via: 'disk', bootOption: { reference: 'Boot0000' } });
    } finally {
      await l.close();
    }
  });

  it('without UefiBootNext (older firmware) the OOB entry goes first in BootOrder; clearBoot puts the order back, also from another session', async () => {
    const l = await lab('bluefield', { faults: 'no-boot-next' });
    try {
      const { session, steps } = await l.open();
      const bmc = l.emu.emulator.bmcs[0]!;
      const result = await session.bootFromOobNetwork!({ prefer: 'pxe' });
      const set = result.steps.find((s) => s.step === 'boot-oob')!;
      expect(set).toMatchObject({ outcome: 'ok', via: 'boot-order+settings-object' });
      expect(result.previousBootOrder).toEqual(['Boot0000', 'Boot0001', 'Boot0002', 'Boot0003']);
      // pending on the Settings object, applied by the reset that followed
      expect(bmc.dpu.boot.BootOrder).toEqual(['Boot0002', 'Boot0000', 'Boot0001', 'Boot0003']);
      expect(l.booting.at(-1)).toMatchObject({ via: 'pxe', target: null, bootOption: { reference: 'Boot0002', name: 'NET-OOB-IPV4' } });
      // run again: already first, nothing sent
      const again = await session.bootFromOobNetwork!({ prefer: 'pxe', restart: false });
      expect(again.steps.map((s) => `${s.step}:${s.outcome}`)).toEqual(['boot-oob:skipped', 'boot-requested:ok']);

      await session.clearBoot();
      const clear = steps.filter((s) => s.step === 'clear-boot' || s.step === 'restore-boot-order');
      expect(clear.map((s) => `${s.step}:${s.outcome}`)).toEqual(['clear-boot:ok', 'restore-boot-order:ok']);
      // the detail says what was sent: only the switch, not a target
      expect(clear[0]!.detail).toBe('sent Boot {"BootSourceOverrideEnabled":"Disabled"}; BootSourceOverrideTarget left as the BMC has it');
      expect(clear[1]!.detail).toBe('BootOrder Boot0002,Boot0000,Boot0001,Boot0003 → Boot0000,Boot0001,Boot0002,Boot0003');
      expect(bmc.dpu.pendingBoot?.BootOrder).toEqual(['Boot0000', 'Boot0001', 'Boot0002', 'Boot0003']);
      await session.reset('ForceRestart');
      await session.waitForPower('On');
      expect(bmc.dpu.boot.BootOrder).toEqual(['Boot0000', 'Boot0001', 'Boot0002', 'Boot0003']);

      // a later session (the onboarding's clear step) is handed the order the boot step returned
      const first = await l.open();
      await first.session.bootFromOobNetwork!({ prefer: 'http', restart: false });
      const second = await l.open();
      await second.session.clearBoot();
      expect(second.steps.map((s) => s.step)).not.toContain('restore-boot-order');
      await second.session.clearBoot({ bootOrder: ['Boot0000', 'Boot0001', 'Boot0002', 'Boot0003'] });
      expect(second.steps.filter((s) => s.step === 'restore-boot-order').map((s) => s.outcome)).toEqual(['ok']);
      expect(bmc.dpu.pendingBoot?.BootOrder).toEqual(['Boot0000', 'Boot0001', 'Boot0002', 'Boot0003']);
    } finally {
      await l.close();
    }
  });

  it('a BMC with no boot order, or no OOB entry, is REDFISH_UNSUPPORTED and changes nothing', async () => {
    const l = await lab('generic');
    try {
      const { session, steps } = await l.open();
      const err = await session.bootFromOobNetwork!().catch((e: unknown) => e);
      expect(isZtpError(err, 'REDFISH_UNSUPPORTED'), String(err)).toBe(true);
      expect(steps.at(-1)).toMatchObject({ step: 'boot-oob', outcome: 'failed' });
      expect(l.emu.emulator.bmcs[0]!.stats).toMatchObject({ bootPatches: 0, resets: 0 });
    } finally {
      await l.close();
    }
  });
});

describe('a lost answer to a non-idempotent POST is settled, not failed and not blindly repeated', () => {
  const cases = [
    { name: 'On, connection closed before the BMC acted: sent again', faults: 'drop-connection=reset', power: 'Off', kind: 'On', via: 'settled-resent' },
    { name: 'On, BMC acted then the connection closed: not sent again', faults: 'drop-connection=reset:after', power: 'Off', kind: 'On', via: 'settled-took' },
    { name: 'ForceRestart finished before the answer was lost (LastResetTime tells)', faults: 'drop-connection=reset:after', power: 'On', kind: 'ForceRestart', via: 'settled-took' },
    { name: 'ForceRestart not acted on: sent again', faults: 'drop-connection=reset:before', power: 'On', kind: 'ForceRestart', via: 'settled-resent' },
  ] as const;
  for (const c of cases) {
    it(`reset ${c.name}`, async () => {
      const l = await lab('generic', { faults: c.faults, initialPower: c.power });
      try {
        const { session, steps } = await l.open();
        const r = await session.reset(c.kind);
        expect(r.outcome).toBe('reset');
        await session.waitForPower('On');
        const stats = l.emu.emulator.bmcs[0]!.stats;
        expect(stats.drops).toBe(1);
        expect(stats.resets).toBe(1);
        expect(l.booting).toHaveLength(1);
        const step = steps.find((s) => s.step === 'reset')!;
        expect(step.via).toBe(c.via);
        expect(step.detail).toMatch(/answer lost/);
      } finally {
        await l.close();
      }
    });
  }

  it('reset answered 202 by a task whose answer was lost: the running task is found and followed, not sent again', async () => {
    const l = await lab('generic', { faults: 'drop-connection=reset:after,async-actions', timing: { taskMs: 400 } });
    try {
      const { session, steps } = await l.open();
      await session.reset('On');
      const stats = l.emu.emulator.bmcs[0]!.stats;
      expect(stats).toMatchObject({ drops: 1, resets: 1 });
      expect(steps.find((s) => s.step === 'reset')).toMatchObject({ outcome: 'ok', via: 'settled-took' });
      expect(steps.find((s) => s.step === 'reset')!.detail).toMatch(/reset task \d+ running/);
    } finally {
      await l.close();
    }
  });

  for (const when of ['before', 'after'] as const) {
    it(`InsertMedia whose connection closed ${when} the BMC acted: one insert reaches the slot, the boot goes on`, async () => {
      const l = await lab('generic', { faults: `drop-connection=insert:${when}` });
      try {
        const { session, steps } = await l.open();
        const url = images.deviceImageUrl(true);
        const result = await session.bootFromIso(url);
        expect(result.steps.at(-1)).toMatchObject({ step: 'boot-requested', outcome: 'ok' });
        const stats = l.emu.emulator.bmcs[0]!.stats;
        expect(stats.drops).toBe(1);
        expect(stats.inserts).toBe(1);
        expect(stats.statuses[409]).toBeUndefined();
        const insert = steps.find((s) => s.step === 'insert')!;
        expect(insert.via).toBe(when === 'before' ? 'action+settled-resent' : 'action+settled-took');
        expect(l.booting.at(-1)).toMatchObject({ via: 'virtual-media', imageUrl: url });
      } finally {
        await l.close();
      }
    });
  }

  it('the same lost answer twice is not settled twice: the error surfaces, typed', async () => {
    const l = await lab('generic', { faults: 'drop-connection=reset:before:2', initialPower: 'Off' });
    try {
      const { session, steps } = await l.open();
      const err = await session.reset('On').catch((e: unknown) => e);
      expect(isZtpError(err, 'REDFISH_UNREACHABLE'), String(err)).toBe(true);
      expect(steps.at(-1)).toMatchObject({ step: 'reset', outcome: 'failed' });
      expect(l.emu.emulator.bmcs[0]!.stats).toMatchObject({ drops: 2, resets: 0 });
    } finally {
      await l.close();
    }
  });
});
