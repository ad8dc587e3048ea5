// Issue 11, budget per client: GET /api/v1/devices serialised the whole fleet per call (1,000
// devices at 100 calls/s pushed the other services' p99 to 0.35–4 s), so it is paged: at most
// `limit` devices (default 100, at most 500) in serial order, `next` on a full page.
import { describe, expect, it } from 'vitest';
import { buildApiApp } from '../../src/api/app.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { silentLogger } from '../../src/log.js';

function setup(n: number) {
  const store = new DeviceStore(openDatabase({ file: ':memory:' }));
  for (let i = 0; i < n; i++) store.upsert({ serial: `SN-${String(i).padStart(4, '0')}` });
  const app = buildApiApp({ store, log: silentLogger, token: 'tok' });
  const get = async (query = '') => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/devices${query}`, headers: { authorization: 'Bearer tok' } });
    expect(res.statusCode).toBe(200);
    return res.json() as { devices: { serial: string; state: string }[]; next?: string };
  };
  return { store, get };
}

describe('GET /api/v1/devices is paged', () => {
  it('answers 100 devices by default with `next`; following `next` walks every device once, in order', async () => {
    const { get } = setup(250);
    const first = await get();
    expect(first.devices).toHaveLength(100);
    expect(first.devices[0]!.serial).toBe('SN-0000');
    expect(first.next).toBe('SN-0099');
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await get(`?limit=40${after ? `&after=${after}` : ''}`);
      seen.push(...page.devices.map((d) => d.serial));
      after = page.next;
    } while (after);
    expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => `SN-${String(i).padStart(4, '0')}`));
  });

  it('caps limit at 500; a page short of the limit has no `next`', async () => {
    const { get } = setup(620);
    const big = await get('?limit=100000');
    expect(big.devices).toHaveLength(500);
    expect(big.next).toBe('SN-0499');
    const rest = await get('?limit=500&after=SN-0499');
    expect(rest.devices).toHaveLength(120);
    expect(rest.next).toBeUndefined();
  });

  it('pages within a state filter', async () => {
    const { store, get } = setup(5);
    for (const serial of ['SN-0001', 'SN-0003', 'SN-0004']) store.record({ serial, source: 'dhcp', type: 'lease', data: {} });
    const page = await get('?state=dhcp-bound&limit=2');
    expect(page.devices.map((d) => d.serial)).toEqual(['SN-0001', 'SN-0003']);
    expect(page.next).toBe('SN-0003');
    expect((await get(`?state=dhcp-bound&limit=2&after=${page.next}`)).devices.map((d) => d.serial)).toEqual(['SN-0004']);
  });
});
