// The dashboard in a real browser (headless Chromium through playwright-core) against a real
// suite (`startSuite`, as `ztp serve` runs it) and a virtual lab: simulated DPUs behind emulated
// BMCs. Started from the dashboard's own button, a device's row moves through its states from the
// event stream, without a reload; a failed sZTP request (401) shows red with its reason; a device
// added by the `ztp` CLI (another process) appears; retry restarts an aborted job; a 5,000-device
// fleet is filtered and paged without a device-list fetch per event. The page runs under its
// strict CSP with no violation and no script error. Screenshots go to test-results/.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_CSP } from '../../src/api/dashboard.js';
import { silentLogger } from '../../src/log.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import { ensureImage, registerDevices, type AdminApi } from '../../src/simulate/admin.js';
import { emulatedBmcs } from '../../src/simulate/bmcs.js';
import { directDhcp } from '../../src/simulate/dhcp.js';
import { VirtualLab } from '../../src/simulate/lab.js';
import type { Suite } from '../../src/suite.js';
import { startTestSuite, TEST_TOKEN, type TestSuite } from '../helpers/suite.js';
import { buildCli, startZtp } from '../helpers/ztp-process.js';

const CHROMIUM = process.env.ZTP_CHROMIUM ?? '/usr/bin/chromium';
const missing = existsSync(CHROMIUM) ? '' : `${CHROMIUM} is not installed (.ci/run installs chromium); skipping the dashboard browser test`;
if (missing) console.warn(missing);
const SHOTS = resolve(import.meta.dirname, '../../test-results');

let t: TestSuite;
let suite: Suite;
let lab: VirtualLab;
let browser: Browser | undefined;
let base: string;

beforeAll(async () => {
  if (missing) return;
  buildCli(); // the CLI, as another process, writes the same database
  t = await startTestSuite('ztp-dashboard-');
  ({ suite, apiBase: base } = t);
  const api: AdminApi = { url: base, token: TEST_TOKEN };
  const image = await ensureImage(api, 'dash-os.img', randomBytes(64 * 1024));
  lab = await VirtualLab.create({
    count: 3,
    profile: 'rfc8572',
    serialPrefix: 'DASH',
    bootImage: image.name,
    bootstrapUrl: t.bootstrapBase,
    serverCaPem: suite.ctx.pki.rootCaPem,
    masaCaPem: suite.ctx.pki.masa.certPem,
    issueIdevid: (serial) => issueDeviceIdentity(suite.ctx.pki, serial),
    dhcp: directDhcp(silentLogger),
    // a visible power-on, so the row is seen waiting at it (and an abort finds the job running)
    bmcs: emulatedBmcs({ log: silentLogger, mediaCa: suite.ctx.pki.rootCaPem, timing: { powerOnMs: 1500 } }),
    rangeBytes: 16 * 1024,
  });
  await registerDevices(api, lab.deviceRecords());
  mkdirSync(SHOTS, { recursive: true });
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await lab?.stop();
  await suite?.stop();
  if (t) rmSync(t.dataDir, { recursive: true, force: true });
});

/** A signed-in page with its console errors, page errors, CSP reports and API requests collected. */
async function open(at = base, token = TEST_TOKEN): Promise<{ page: Page; problems: string[]; requests: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1360, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('request', (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}${new URL(r.url()).search}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective}`)));
  await page.goto(`${at}/`);
  await page.waitForSelector('#signin-form');
  await page.fill('#signin-token', token);
  await page.click('#signin-form button[type="submit"]');
  return { page, problems, requests };
}

async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  const path = join(SHOTS, `dashboard-${name}.png`);
  await page.screenshot({ path, fullPage });
  console.log(`screenshot: ${path}`);
}

const row = (serial: string) => `tr[data-serial="${serial}"]`;

/** A get-bootstrapping-data with the wrong password: the bootstrap server answers 401. */
async function wrongPassword(serial: string): Promise<number> {
  const dispatcher = new Agent({ connect: { ca: suite.ctx.pki.rootCaPem } });
  try {
    const res = await undiciFetch(`${t.bootstrapBase}/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${serial}:not-the-password`).toString('base64')}`, accept: 'application/yang-data+json' },
      dispatcher,
    });
    await res.arrayBuffer();
    return res.status;
  } finally {
    await dispatcher.close();
  }
}

describe.skipIf(missing)('dashboard in headless Chromium', () => {
  it('is static files under a strict CSP, with no inline script or style', async () => {
    const res = await fetch(`${base}/`);
    expect(res.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toMatch(/script-src 'self';/);
    const html = await res.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)|\son[a-z]+=|style=/i);
    for (const asset of ['/dashboard.js', '/dashboard.css']) {
      const r = await fetch(base + asset);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    }
    expect((await fetch(`${base}/../package.json`)).status).toBe(404);
  });

  it('live: a device moves through its states; a failed request shows red; a CLI change appears; retry restarts an aborted job', async () => {
    const { page, problems, requests } = await open();
    await page.waitForSelector(`${row('DASH-0001')} .state:text("registered")`);
    await page.waitForSelector('#conn[data-conn="live"]');
    // The token is nowhere in the address bar.
    expect(page.url()).toBe(`${base}/`);
    // Record every state the row shows, and mark this document (a reload would lose the mark).
    await page.evaluate((sel) => {
      const w = window as unknown as { seen: string[]; mark: number };
      w.mark = 42;
      w.seen = [];
      const note = () => {
        const tr = document.querySelector(sel);
        if (!tr) return;
        const text = `${tr.querySelector('span.state')!.textContent}/${(tr.querySelector('td.progress') as HTMLElement).dataset.value}`;
        if (w.seen.at(-1) !== text) w.seen.push(text);
      };
      new MutationObserver(note).observe(document.getElementById('rows')!, { subtree: true, childList: true, characterData: true, attributes: true });
      note();
    }, row('DASH-0001'));

    await page.click(`${row('DASH-0001')} button[data-action="onboard"]`);
    await page.waitForSelector(`${row('DASH-0001')} .state:text("onboarded")`, { timeout: 60_000 });
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    const states = [...new Set(seen.map((s) => s.split('/')[0]))];
    expect(states[0]).toBe('registered');
    expect(states, seen.join(' ')).toContain('bmc-booting');
    expect(states.length, seen.join(' ')).toBeGreaterThanOrEqual(4);
    expect(states.at(-1)).toBe('onboarded');
    const values = seen.map((s) => Number(s.split('/')[1]));
    expect(values.every((v, i) => i === 0 || v >= values[i - 1]!), seen.join(' ')).toBe(true);
    expect(values.at(-1)).toBe(100);
    expect(await page.textContent('.count[data-state="onboarded"] b')).toBe('1');
    expect(await page.evaluate(() => (window as unknown as { mark: number }).mark)).toBe(42);

    // A request refused with 401: red, with its status and reason, on the row and the timeline.
    expect(await wrongPassword('DASH-0002')).toBe(401);
    await page.waitForSelector(`${row('DASH-0002')} td.last.error:text-matches("failed 401 SZTP_ACCESS_DENIED: ")`);
    await shot(page, 'fleet');

    // A device added by the CLI, a separate process writing the same database.
    const cli = startZtp(['--data-dir', t.dataDir, 'device', 'add', 'CLI-0001', '--profile', 'opi', '--mac', '02:00:00:00:cc:01']);
    expect(await cli.exited, cli.tail()).toBe(0);
    await page.waitForSelector(`${row('CLI-0001')} .state:text("registered")`, { timeout: 10_000 });
    expect(await page.textContent(`${row('CLI-0001')} td.profile`)).toBe('opi');
    expect(await page.textContent(`${row('CLI-0001')} td.last`)).toMatch(/admin device-added by cli/);

    // Device page of DASH-0002: its record, its failed request in red; start it, abort it, retry it.
    await page.click(`${row('DASH-0002')} td.serial`);
    await page.waitForSelector('#view-device:not([hidden])');
    expect(page.url()).toBe(`${base}/#/device/DASH-0002`);
    await page.waitForSelector('#timeline li.error:has-text("failed 401 SZTP_ACCESS_DENIED: ")');
    expect(await page.textContent('#record')).toContain('simulated-dpu');
    await shot(page, 'device-failed-request');
    await page.click('#device-actions button[data-action="onboard"]');
    await page.waitForSelector('#device-actions button[data-action="abort"]');
    await page.click('#device-actions button[data-action="abort"]');
    await page.waitForSelector('#device-job:text-matches("aborted")', { timeout: 15_000 });
    await page.waitForSelector('#timeline li:has-text("job aborted")');
    await page.click('#device-actions button[data-action="retry"]');
    await page.waitForSelector('#device-state:text("onboarded")', { timeout: 60_000 });
    await page.waitForSelector('#timeline li:has-text("sZTP progress bootstrap-complete")');
    expect(await page.textContent('#device-job')).toMatch(/complete · complete, attempt 2/);
    await shot(page, 'device');

    // Images page: the catalogue with size, digest, its users and its downloads.
    await page.click('nav a[data-view="images"]');
    await page.waitForSelector('tr[data-image="dash-os.img"] td.reads:text-matches("by 2 devices")', { timeout: 10_000 });
    expect(await page.textContent('tr[data-image="dash-os.img"] td.size')).toBe('64 KiB');
    expect(await page.textContent('tr[data-image="dash-os.img"] td.users')).toBe('DASH-0001, DASH-0002, DASH-0003');
    await shot(page, 'images');

    // Everything came from one stream: no device list fetched, ever.
    expect(requests.filter((r) => r.startsWith('GET /api/v1/devices?') || r === 'GET /api/v1/devices')).toEqual([]);
    expect(requests.filter((r) => r.startsWith('GET /api/v1/events') && !r.startsWith('GET /api/v1/events/image-reads'))).toEqual(['GET /api/v1/events?snapshot=true']);
    expect(problems).toEqual([]);
    await page.close();
  }, 180_000);

  it('5,000 devices: counts, text, state and profile filters and paging, updated from events only', async () => {
    const { page, problems, requests } = await open();
    await page.waitForSelector('#conn[data-conn="live"]');
    await page.waitForSelector(`${row('DASH-0001')}`);
    const before = Number(await page.textContent('.count[data-state=""] b'));
    const registered = Number((await page.textContent('.count[data-state="registered"] b').catch(() => '0')) ?? 0);
    const total = String(before + 5_000);
    // One import of 5,000 devices: 5,000 device-added events on the open stream.
    const csv = ['serial,profile,macs', ...Array.from({ length: 5_000 }, (_, i) => `BULK-${String(i).padStart(5, '0')},${i % 5 === 0 ? 'opi' : 'rfc8572'},02:10:${[i >> 16, (i >> 8) & 255, i & 255, 0].map((b) => b.toString(16).padStart(2, '0')).join(':')}`)].join('\n');
    const res = await fetch(`${base}/api/v1/devices/import`, { method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'text/csv' }, body: csv });
    expect(res.status, await res.clone().text()).toBe(200);
    await page.waitForSelector(`.count[data-state=""] b:text("${total}")`, { timeout: 30_000 });
    expect(await page.textContent('.count[data-state="registered"] b')).toBe(String(registered + 5_000));
    // One page of rows in the DOM, whatever the fleet's size.
    expect(await page.locator('#rows tr').count()).toBe(100);
    await shot(page, 'fleet-5000', false);

    await page.fill('#filter-text', 'bulk-04321');
    await page.waitForSelector(`#shown:text("1 of ${total} devices")`);
    expect(await page.locator('#rows tr').count()).toBe(1);
    expect(await page.textContent(`${row('BULK-04321')} td.profile`)).toBe('rfc8572');
    await page.fill('#filter-text', '');
    await page.selectOption('#filter-profile', 'opi');
    await page.waitForSelector(`#shown:text-matches("^100[01] of ${total} devices$")`); // 1,000 BULK (+ CLI-0001)
    await page.selectOption('#filter-profile', '');
    await page.click('.count[data-state="registered"]');
    await page.waitForSelector(`#shown:text("${registered + 5_000} of ${total} devices")`);
    await page.click('.count[data-state="registered"]');
    await page.waitForSelector(`#shown:text("${total} devices")`);
    await page.click('#page-next');
    await page.waitForSelector(`#page-info:text("page 2 of ${Math.ceil(Number(total) / 100)}")`);

    // A state change of one of the 5,000 reaches its row while it is shown.
    await page.fill('#filter-text', 'BULK-00007');
    await page.waitForSelector(`${row('BULK-00007')} .state:text("registered")`);
    suite.ctx.store.record({ serial: 'BULK-00007', source: 'dhcp', type: 'lease', data: { ip: '192.0.2.7' } });
    await page.waitForSelector(`${row('BULK-00007')} .state:text("dhcp-bound")`);
    expect(requests.filter((r) => r.includes('/api/v1/devices'))).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);

  it('a wrong token is shown on the sign-in form, not thrown', async () => {
    const { page, problems } = await open(base, 'wrong');
    await page.waitForSelector('#signin-error:text("the admin API refused the token (401)")');
    expect(await page.isHidden('#app')).toBe(true);
    // the browser's own line for the refused request aside
    expect(problems.filter((p) => !p.startsWith('HTTP 401') && !p.includes('status of 401'))).toEqual([]);
    await page.close();
  });

  it('on a server with onboarding disabled: the fleet, no actions, and why', async () => {
    const off = await startTestSuite('ztp-dashboard-off-', { config: { onboarding: { enabled: false } } });
    try {
      off.suite.ctx.store.upsert({ serial: 'OFF-1', profile: 'opi', macs: ['02:00:00:00:0f:01'] });
      const { page } = await open(off.apiBase);
      await page.waitForSelector(`${row('OFF-1')} td.profile:text("opi")`);
      expect(await page.locator(`${row('OFF-1')} button`).count()).toBe(0);
      await page.click(`${row('OFF-1')} td.serial`);
      await page.waitForSelector('#device-job:text("onboarding is disabled on this server")');
      await page.close();
    } finally {
      await off.suite.stop();
      rmSync(off.dataDir, { recursive: true, force: true });
    }
  });
});
