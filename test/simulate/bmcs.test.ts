// The lab's BMCs (src/simulate/bmcs.ts) share one emulator listener, each under its own path
// prefix /bmc/<id>/redfish/v1. The Redfish client serialises requests per BMC: here, a BMC that
// never answers must not hold up its neighbour behind the same listener (the cause of a 50-BMC
// lab fleet crawling into media-insert time-outs, when the client queued per origin), and a
// factory account that demands a password change is commissioned before the suite sees it.
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { openBmcSession } from '../../src/redfish/index.js';
import { emulatedBmcs } from '../../src/simulate/bmcs.js';
import type { BmcLab } from '../../src/simulate/lab.js';

let lab: BmcLab | undefined;
afterAll(async () => {
  await lab?.close();
});

describe('lab BMCs behind one listener', () => {
  it('a hung BMC does not stall its neighbour; BlueField factory accounts are commissioned', async () => {
    const factory = emulatedBmcs({ log: silentLogger, quirks: (i) => (i === 2 ? 'bluefield' : 'generic') });
    lab = await factory([
      { index: 0, serial: 'Q-0001', macs: ['02:7b:00:00:01:00'], faults: ['timeout=any'] },
      { index: 1, serial: 'Q-0002', macs: ['02:7b:00:00:02:00'], faults: [] },
      { index: 2, serial: 'Q-0003', macs: ['02:7b:00:00:03:00'], faults: [] },
    ]);
    const [hung, healthy, bluefield] = lab.endpoints as [BmcLab['endpoints'][number], BmcLab['endpoints'][number], BmcLab['endpoints'][number]];
    expect(new URL(hung.url).origin).toBe(new URL(healthy.url).origin);

    const abort = new AbortController();
    let hungSettled = false;
    const stuck = openBmcSession({ url: hung.url, username: hung.username, password: hung.password }, { log: silentLogger, signal: abort.signal }).then(
      async (s) => {
        hungSettled = true;
        await s.close();
      },
      () => {
        hungSettled = true;
      },
    );
    // The neighbour's whole boot preparation goes through while the first BMC has not answered.
    const session = await openBmcSession({ url: healthy.url, username: healthy.username, password: healthy.password, systemId: healthy.systemId }, { log: silentLogger });
    const inventory = await session.inventory();
    expect(inventory.serial).toBe('Q-0002');
    await session.setOneTimeBoot('Pxe');
    await session.reset('On');
    await session.waitForPower('On', { timeoutMs: 10_000 });
    expect(await session.powerState()).toBe('On');
    await session.close();
    expect(hungSettled).toBe(false);
    abort.abort();
    await stuck;

    // The BlueField account demanded a password change: the lab changed it, the suite logs in with the new one.
    expect(bluefield.password).not.toBe('0penBmc');
    const bf = await openBmcSession({ url: bluefield.url, username: bluefield.username, password: bluefield.password, systemId: bluefield.systemId }, { log: silentLogger });
    expect((await bf.inventory()).allowedBootTargets).toContain('UefiHttp');
    await bf.close();
  }, 30_000);
});
