// The dashboard in a real browser (headless Chromium through playwright-core) against a real
// suite (`startSuite`, as `ztp serve` runs it) and a virtual lab: simulated DPUs behind emulated
// BMCs. Started from the dashboard's own button, a device's row moves through its steps and its
// progress bar fills from the event stream, without a reload; a click opens its timeline, which
// also follows live. The page runs under its strict CSP with no violation and no script error.
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_CSP } from '../../src/api/dashboard.js';
import { silentLogger } from '../../src/log.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import { ensureImage, registerDevices, type AdminApi } from '../../src/simulate/admin.js';
import { emulatedBmcs } from '../../src/simulate/bmcs.js';
import { directDhcp } from '../../src/simulate/dhcp.js';
import { VirtualLab } from '../../src/simulate/lab.js';
import type { Suite } from '../../src/suite.js';
import { startTestSuite, TEST_TOKEN } from '../helpers/suite.js';

const CHROMIUM = process.env.ZTP_CHROMIUM ?? '/usr/bin/chromium';
const missing = existsSync(CHROMIUM) ? '' : `${CHROMIUM} is not installed (.ci/run installs chromium); skipping the dashboard browser test`;
if (missing) console.warn(missing);

const TOKEN = TEST_TOKEN;
let dir: string;
let suite: Suite;
let lab: VirtualLab;
let browser: Browser | undefined;
let base: string;

beforeAll(async () => {
  if (missing) return;
  const t = await startTestSuite('ztp-dashboard-');
  ({ suite, dataDir: dir, apiBase: base } = t);
  const api: AdminApi = { url: base, token: TOKEN };
  const image = await ensureImage(api, 'dash-os.img', randomBytes(64 * 1024));
  lab = await VirtualLab.create({
    count: 2,
    profile: 'rfc8572',
    serialPrefix: 'DASH',
    bootImage: image.name,
    bootstrapUrl: t.bootstrapBase,
    serverCaPem: suite.ctx.pki.rootCaPem,
    masaCaPem: suite.ctx.pki.masa.certPem,
    issueIdevid: (serial) => issueDeviceIdentity(suite.ctx.pki, serial),
    dhcp: directDhcp(silentLogger),
    // a visible power-on, so the row is seen waiting at it
    bmcs: emulatedBmcs({ log: silentLogger, mediaCa: suite.ctx.pki.rootCaPem, timing: { powerOnMs: 600 } }),
    rangeBytes: 16 * 1024,
  });
  await registerDevices(api, lab.deviceRecords());
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await lab?.stop();
  await suite?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A page with its console errors, page errors and CSP reports collected. */
async function open(fragment: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser!.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(`${base}/${fragment}`);
  await page.evaluate(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective}`)));
  return { page, problems };
}

const row = (serial: string) => `tr[data-serial="${serial}"]`;

describe.skipIf(missing)('dashboard in headless Chromium', () => {
  it('is served with a strict CSP and no inline script', async () => {
    const res = await fetch(`${base}/`);
    expect(res.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toMatch(/script-src 'self';/);
    const html = await res.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)|\son[a-z]+=|style=/i);
    for (const asset of ['/dashboard.js', '/dashboard.css']) expect((await fetch(base + asset)).headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
  });

  it('a device started from the dashboard updates live, step by step, without a reload; its timeline opens on click', async () => {
    const { page, problems } = await open(`#token=${TOKEN}`);
    await page.waitForSelector(`${row('DASH-0001')} .status:text("none")`);
    await page.waitForSelector(`${row('DASH-0002')} .status:text("none")`);
    expect(await page.textContent('#conn')).toBe('live');
    // The token left the address bar.
    expect(page.url()).toBe(`${base}/`);
    // Record every step and status the row shows, and mark this document (a reload would lose the mark).
    await page.evaluate((sel) => {
      const w = window as unknown as { seen: string[]; mark: number };
      w.mark = 42;
      w.seen = [];
      const tr = document.querySelector(sel)!;
      const note = () => {
        const text = `${tr.querySelector('.step')!.textContent}/${tr.querySelector('.status')!.textContent}/${(tr.querySelector('progress') as HTMLProgressElement).value}`;
        if (w.seen.at(-1) !== text) w.seen.push(text);
      };
      new MutationObserver(note).observe(tr, { subtree: true, childList: true, characterData: true, attributes: true });
      note();
    }, row('DASH-0001'));

    await page.click(`${row('DASH-0001')} button[data-action="onboard"]`);
    await page.waitForSelector(`${row('DASH-0001')} .status:text("complete")`, { timeout: 30_000 });
    const seen = await page.evaluate(() => (window as unknown as { seen: string[]; mark: number }).seen);
    const mark = await page.evaluate(() => (window as unknown as { mark: number }).mark);
    expect(mark).toBe(42);
    const steps = [...new Set(seen.map((s) => s.split('/')[0]))];
    // live, in order: it was seen waiting at power-on and in between, then complete at 100 %
    expect(steps[0]).toBe('-');
    expect(steps).toContain('power-on');
    expect(steps.length, seen.join(' ')).toBeGreaterThanOrEqual(4);
    expect(steps.at(-1)).toBe('complete');
    const values = seen.map((s) => Number(s.split('/')[2]));
    expect(values.every((v, i) => i === 0 || v >= values[i - 1]!), seen.join(' ')).toBe(true);
    expect(seen.at(-1)).toBe('complete/complete/100');
    expect(suite.conductor!.job('DASH-0001')!.status).toBe('complete');
    // The other device was left alone.
    expect(await page.textContent(`${row('DASH-0002')} .status`)).toBe('none');
    expect(await page.textContent('#counts')).toMatch(/complete: 1/);

    // Its timeline, on click.
    await page.click(`${row('DASH-0001')} td.serial`);
    await page.waitForSelector('#timeline:not([hidden])');
    await page.waitForSelector('#timeline-entries li:has-text("sZTP progress bootstrap-complete")');
    expect(await page.textContent('#timeline-serial')).toBe('DASH-0001');
    expect(await page.textContent('#timeline-job')).toMatch(/^complete at complete, attempt 1/);
    expect(await page.locator('#timeline-entries li[data-source="redfish"]').count()).toBeGreaterThan(0);
    expect(await page.locator('#timeline-entries li:has-text("job complete at complete")').count()).toBe(1);

    // An open timeline follows its device live: open DASH-0002's (no job yet), start it.
    await page.click(`${row('DASH-0002')} td.serial`);
    await page.waitForSelector('#timeline-job:text("no onboarding job")');
    await page.click(`${row('DASH-0002')} button[data-action="onboard"]`);
    await page.waitForSelector('#timeline-entries li:has-text("sZTP progress bootstrap-complete")', { timeout: 30_000 });
    await page.waitForSelector('#timeline-job:text-matches("^complete at complete")', { timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { mark: number }).mark)).toBe(42);
    // The completed device now offers to onboard again; both rows are full.
    await page.waitForSelector(`${row('DASH-0002')} button[data-action="restart"]`);
    expect(await page.locator('tbody progress[value="100"]').count()).toBe(2);
    expect(await page.textContent('#overall-text')).toBe('100% overall');
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  it('on a server with onboarding disabled: the device list, no actions, and why', async () => {
    const t = await startTestSuite('ztp-dashboard-off-', { config: { onboarding: { enabled: false } } });
    try {
      t.suite.ctx.store.upsert({ serial: 'OFF-1', profile: 'opi', macs: ['02:00:00:00:0f:01'] });
      const page = await browser!.newPage();
      await page.goto(`${t.apiBase}/#token=${TEST_TOKEN}`);
      await page.waitForSelector('#conn:text("onboarding is disabled on this server; device list only")');
      expect(await page.textContent(`${row('OFF-1')} .profile`)).toBe('opi');
      expect(await page.textContent(`${row('OFF-1')} .status`)).toBe('none');
      expect(await page.locator(`${row('OFF-1')} button`).count()).toBe(0);
      await page.close();
    } finally {
      await t.suite.stop();
      rmSync(t.dataDir, { recursive: true, force: true });
    }
  });

  it('a wrong token is shown, not thrown', async () => {
    const { page } = await open('#token=wrong');
    await page.waitForSelector('#conn:text-matches("refused the token")');
    expect(await page.locator('tbody tr').count()).toBe(0);
    await page.close();
  });
});
