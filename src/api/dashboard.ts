// The live dashboard: a fleet table (each device's onboarding step, status and progress) updated
// from the conductor's event stream, and a device's timeline on click. Plain HTML, CSS and JS
// served by the admin API (no framework, no build step), under a strict Content-Security-Policy:
// nothing inline, nothing from elsewhere, connections only to this origin.
//
// The admin token comes from the URL fragment (#token=…, which browsers never send) or a prompt,
// and is kept in sessionStorage. Every request carries it as a bearer header: the event stream
// is read with fetch(), not EventSource, so the token is never in a URL the server could log.
import { STEPS } from '../onboarding/job.js';

/** For every dashboard response: only this origin's script, style and API. */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dpu-ztp</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head><body>
<header>
 <h1>dpu-ztp onboarding</h1>
 <div id="conn" class="muted">connecting…</div>
 <div id="counts"></div>
 <div id="overall"><progress id="overall-bar" max="100" value="0"></progress> <span id="overall-text"></span></div>
</header>
<main>
 <section id="fleet-section">
  <table id="fleet"><thead><tr>
   <th>Serial</th><th>Profile</th><th>Step</th><th>Status</th><th>Progress</th><th>Attempt</th><th>Last event</th><th>Reason</th><th></th>
  </tr></thead><tbody id="rows"></tbody></table>
  <p id="empty" class="muted" hidden>No devices registered (ztp device add, ztp device import or ztp simulate).</p>
 </section>
 <section id="timeline" hidden>
  <h2><span id="timeline-serial"></span> <button type="button" id="timeline-close" title="close">×</button></h2>
  <div id="timeline-job" class="muted"></div>
  <ol id="timeline-entries"></ol>
 </section>
</main>
<details id="log-box"><summary>Live events</summary><div id="log"></div></details>
</body></html>
`;

export const DASHBOARD_CSS = `body{font:14px system-ui,sans-serif;margin:1.2rem;color:#1b1f24;background:#fafbfc}
h1{font-size:1.3rem;margin:0 0 .3rem}h2{font-size:1.05rem;margin:.2rem 0 .4rem}
.muted{color:#667}
header{margin-bottom:.8rem}
#counts span{margin-right:1rem}
#overall progress{width:18rem;vertical-align:middle}
main{display:flex;gap:1rem;align-items:flex-start}
#fleet-section{flex:3;min-width:0}
#timeline{flex:2;background:#fff;border:1px solid #e3e6ea;padding:.6rem .8rem;max-height:80vh;overflow:auto}
#timeline ol{list-style:none;padding:0;margin:0;font:12px ui-monospace,monospace}
#timeline li{padding:.15rem 0;border-bottom:1px solid #f0f2f5;white-space:pre-wrap}
#timeline li.error{color:#a31515}
#timeline-close{float:right;border:0;background:none;font-size:1.1rem;cursor:pointer}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e6ea;vertical-align:middle}
th{background:#f0f2f5;font-weight:600}
tbody tr{cursor:pointer}tbody tr:hover{background:#f5f8ff}tbody tr.selected{background:#e8f0ff}
td progress{width:8rem;vertical-align:middle}td.progress{white-space:nowrap}
.status{padding:.1rem .45rem;border-radius:.6rem;font-size:12px;background:#e8eaed}
.status.complete{background:#d4f5dd}.status.failed,.status.aborted{background:#fbd5d5}.status.timed-out{background:#ffe0b8}
.status.running{background:#dbe9ff}.status.queued{background:#fff1c2}
td.reason{max-width:22rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
td.last{font-size:12px;color:#445}
button.action{font-size:12px}
#log{font:12px ui-monospace,monospace;white-space:pre-wrap;max-height:14rem;overflow:auto;background:#fff;border:1px solid #e3e6ea;padding:.5rem}
`;

export const DASHBOARD_JS = `'use strict';
const STEPS = ${JSON.stringify(STEPS)};
const TERMINAL = ['complete', 'failed', 'timed-out', 'aborted'];
const params = new URLSearchParams(location.hash.slice(1));
let token = params.get('token') || sessionStorage.getItem('ztp-token') || '';
if (!token) token = prompt('Admin token (printed by ztp serve)') || '';
sessionStorage.setItem('ztp-token', token);
if (location.hash) history.replaceState(null, '', location.pathname);

const devices = new Map();
const jobs = new Map();
const lastEvent = new Map();
let selected = null;
let lastId = 0;
let conductor = true;
const $ = (id) => document.getElementById(id);

function api(method, path, body) {
  const headers = { authorization: 'Bearer ' + token };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

function progressOf(job, hasBmc) {
  if (!job) return 0;
  if (job.status === 'complete') return 1;
  const idx = (s) => STEPS.indexOf(s);
  const first = idx(hasBmc ? 'bmc-check' : 'booting');
  const span = idx('complete') - first;
  let at = idx(job.step) - first;
  if (job.step === 'progress') at += Math.min(0.9, (job.progressCount || 0) / 9);
  return Math.max(0, Math.min(0.99, at / span));
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function describe(e) {
  const d = e.data || {};
  if (e.source === 'onboarding' && e.type === 'transition') return 'job ' + d.step + '/' + d.status + (d.note ? ' (' + d.note + ')' : '');
  if (e.source === 'bootstrap' && e.type === 'progress') return 'sZTP ' + d.progressType + (d.message ? ': ' + d.message : '');
  if (e.source === 'bootstrap' && e.type === 'request') return 'sZTP get-bootstrapping-data ' + (d.response || d.result || '');
  if (e.source === 'redfish') return 'BMC ' + e.type + ' ' + (d.outcome || '');
  if (e.source === 'images') return 'image read: ' + (d.bytes || 0) + ' bytes';
  return e.source + ' ' + e.type;
}

function actionFor(job) {
  if (!conductor) return null;
  if (!job) return ['onboard', 'Onboard'];
  if (job.status === 'queued' || job.status === 'running') return ['abort', 'Abort'];
  if (job.status === 'complete') return ['restart', 'Onboard again'];
  return ['retry', 'Retry'];
}

function renderRow(serial) {
  const d = devices.get(serial);
  if (!d) return;
  const job = jobs.get(serial);
  let tr = document.querySelector('tr[data-serial="' + CSS.escape(serial) + '"]');
  if (!tr) {
    tr = el('tr', { 'data-serial': serial });
    for (const c of ['serial', 'profile', 'step', 'state', 'progress', 'attempt', 'last', 'reason', 'actions']) tr.appendChild(el('td', { class: c }));
    tr.querySelector('.state').appendChild(el('span', { class: 'status' }));
    tr.querySelector('.progress').appendChild(el('progress', { max: '100', value: '0' }));
    tr.querySelector('.progress').appendChild(el('span', { class: 'pct' }));
    tr.addEventListener('click', (ev) => { if (!(ev.target instanceof HTMLButtonElement)) openTimeline(serial); });
    const rows = $('rows');
    const after = [...rows.children].find((r) => r.dataset.serial.localeCompare(serial) > 0);
    rows.insertBefore(tr, after || null);
  }
  const set = (cls, text) => { const c = tr.querySelector('.' + cls); if (c.textContent !== text) c.textContent = text; };
  set('serial', serial);
  set('profile', d.profile || '');
  set('step', job ? job.step : '-');
  const status = tr.querySelector('.status');
  const st = job ? job.status : 'none';
  if (status.textContent !== st) { status.textContent = st; status.className = 'status ' + st; }
  const p = Math.round(progressOf(job, !!d.bmc) * 100);
  tr.querySelector('progress').value = p;
  set('pct', ' ' + p + '%');
  set('attempt', job ? String(job.attempt) : '');
  set('last', lastEvent.get(serial) || '');
  set('reason', (job && job.reason) || '');
  tr.querySelector('.reason').title = (job && job.reason) || '';
  const cell = tr.querySelector('.actions');
  const a = actionFor(job);
  const key = a ? a[0] : '';
  if (cell.dataset.action !== key) {
    cell.dataset.action = key;
    cell.textContent = '';
    if (a) {
      const b = el('button', { type: 'button', class: 'action', 'data-action': a[0] }, a[1]);
      b.addEventListener('click', () => act(serial, a[0], b));
      cell.appendChild(b);
    }
  }
  tr.classList.toggle('selected', selected === serial);
}

function renderSummary() {
  const counts = {};
  let sum = 0;
  for (const d of devices.values()) {
    const j = jobs.get(d.serial);
    const s = j ? j.status : 'no job';
    counts[s] = (counts[s] || 0) + 1;
    sum += progressOf(j, !!d.bmc);
  }
  const box = $('counts');
  box.textContent = '';
  box.appendChild(el('span', {}, 'devices: ' + devices.size));
  for (const [s, n] of Object.entries(counts)) box.appendChild(el('span', { 'data-status': s }, s + ': ' + n));
  const pct = devices.size ? Math.round((sum / devices.size) * 100) : 0;
  $('overall-bar').value = pct;
  $('overall-text').textContent = pct + '% overall';
  $('empty').hidden = devices.size > 0;
}

function renderAll() {
  for (const serial of devices.keys()) renderRow(serial);
  for (const tr of [...$('rows').children]) if (!devices.has(tr.dataset.serial)) tr.remove();
  renderSummary();
}

async function act(serial, action, button) {
  button.disabled = true;
  let res;
  if (action === 'onboard' || action === 'restart') res = await api('POST', '/api/v1/onboarding', { serials: [serial], ...(action === 'restart' ? { restart: true } : {}) });
  else if (action === 'retry') res = await api('POST', '/api/v1/onboarding/' + encodeURIComponent(serial) + '/retry', { from: 'step' });
  else res = await api('POST', '/api/v1/onboarding/' + encodeURIComponent(serial) + '/abort');
  const body = await res.json().catch(() => ({}));
  if (!res.ok) { log(serial + ' ' + action + ' refused: ' + ((body.error && body.error.message) || res.status)); button.disabled = false; return; }
  const job = body.job || (body.results && body.results[0] && body.results[0].job);
  const result = body.results && body.results[0];
  if (result && result.outcome === 'refused') log(serial + ': ' + result.reason);
  // The stream may already have moved the job on: only a newer attempt replaces what it shows.
  const prev = jobs.get(serial);
  if (job && (!prev || job.attempt > prev.attempt)) { jobs.set(serial, job); renderRow(serial); renderSummary(); }
  button.disabled = false;
}

let timelineTimer = null;
async function openTimeline(serial) {
  selected = serial;
  for (const tr of $('rows').children) tr.classList.toggle('selected', tr.dataset.serial === serial);
  $('timeline').hidden = false;
  $('timeline-serial').textContent = serial;
  await loadTimeline(serial);
}
async function loadTimeline(serial) {
  const res = await api('GET', '/api/v1/devices/' + encodeURIComponent(serial) + '/timeline');
  if (selected !== serial) return;
  if (!res.ok) { $('timeline-job').textContent = 'timeline unavailable (' + res.status + ')'; return; }
  const t = await res.json();
  const j = t.job;
  $('timeline-job').textContent = j ? j.status + ' at ' + j.step + ', attempt ' + j.attempt + (j.reason ? ': ' + j.reason : '') : 'no onboarding job';
  const list = $('timeline-entries');
  list.textContent = '';
  for (const e of t.entries) {
    const li = el('li', { 'data-source': e.source, class: e.error ? 'error' : '' }, '+' + fmt(e.offsetMs).padEnd(8) + ' ' + e.source.padEnd(10) + ' ' + e.summary + (e.durationMs !== undefined && e.source !== 'onboarding' ? '  (' + fmt(e.durationMs) + ')' : ''));
    li.title = e.at;
    list.appendChild(li);
  }
}
function refreshTimeline(serial) {
  if (selected !== serial || timelineTimer) return;
  timelineTimer = setTimeout(() => { timelineTimer = null; loadTimeline(serial); }, 250);
}
$('timeline-close').addEventListener('click', () => { selected = null; $('timeline').hidden = true; renderAll(); });

function fmt(ms) {
  if (ms < 1000) return ms + 'ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + 's';
  return Math.floor(ms / 60000) + 'm' + String(Math.round((ms % 60000) / 1000)).padStart(2, '0') + 's';
}

function log(text) {
  const box = $('log');
  box.textContent = (text + '\\n' + box.textContent).slice(0, 20000);
}

let reloadTimer = null;
function reloadDevicesSoon() {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => { reloadTimer = null; loadDevices().then(renderAll); }, 200);
}

function apply(event, data, id) {
  if (id) lastId = Math.max(lastId, id);
  if (event === 'snapshot') {
    for (const j of data.jobs) jobs.set(j.serial, j);
    renderAll();
    return;
  }
  if (event !== 'history' || !data.serial) return;
  const e = data;
  log(e.at + ' ' + e.serial + ' ' + describe(e));
  lastEvent.set(e.serial, describe(e));
  if (!devices.has(e.serial) || e.source === 'admin') reloadDevicesSoon();
  const d = e.data || {};
  if (e.source === 'onboarding' && e.type === 'transition') {
    const prev = jobs.get(e.serial);
    if (!prev || d.attempt >= prev.attempt) {
      jobs.set(e.serial, { ...(prev || {}), serial: e.serial, attempt: d.attempt, step: d.step, status: d.status, reason: d.reason || null,
        progressCount: d.newAttempt ? 0 : (prev ? prev.progressCount : 0), path: d.path || (prev ? prev.path : null) });
    }
  } else if (e.source === 'bootstrap' && e.type === 'progress') {
    const j = jobs.get(e.serial);
    if (j) j.progressCount = (j.progressCount || 0) + 1;
  }
  renderRow(e.serial);
  renderSummary();
  refreshTimeline(e.serial);
}

async function follow() {
  for (let failures = 0; ; ) {
    try {
      const res = await fetch('/api/v1/onboarding/stream' + (lastId ? '?after=' + lastId : ''), { headers: { authorization: 'Bearer ' + token, accept: 'text/event-stream' } });
      if (res.status === 401) { $('conn').textContent = 'the admin API refused the token (401)'; return; }
      if (res.status === 503) { conductor = false; $('conn').textContent = 'onboarding is disabled on this server; device list only'; renderAll(); return; }
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      $('conn').textContent = 'live';
      failures = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf('\\n\\n'); end >= 0; end = buffer.indexOf('\\n\\n')) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message', id, data = '';
          for (const line of frame.split('\\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('id: ')) id = Number(line.slice(4));
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data) apply(event, JSON.parse(data), id);
        }
      }
    } catch (err) {
      failures++;
    }
    $('conn').textContent = 'reconnecting…';
    await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** Math.min(failures, 3))));
    await loadDevices().catch(() => false);
  }
}

async function loadDevices() {
  const res = await api('GET', '/api/v1/devices');
  if (!res.ok) { $('conn').textContent = 'the admin API refused the token (' + res.status + ')'; return false; }
  const list = (await res.json()).devices;
  devices.clear();
  for (const d of list) devices.set(d.serial, d);
  return true;
}

loadDevices().then((ok) => {
  if (!ok) return;
  renderAll();
  follow();
});
`;
