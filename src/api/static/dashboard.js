// The dpu-ztp dashboard: one live event stream (/api/v1/events) drives every view.
// - It starts with a snapshot of the fleet (devices, jobs) at an event id, then every history
//   event after it; a reconnect resumes with Last-Event-ID, so nothing is fetched again per event.
// - Events only mark what changed; the page re-renders at most once per animation frame, and
//   only the rows on screen (a page of the filtered, sorted fleet), so 5,000 devices stay fast.
// - The admin token lives in sessionStorage and travels only in the Authorization header.
'use strict';

const PAGE = 100;
const $ = (id) => document.getElementById(id);

const fleet = {
  devices: new Map(), // serial → device record (publicDevice form) with its current state
  jobs: new Map(), // serial → onboarding job (publicJob form)
  last: new Map(), // serial → { summary, error } of its newest event
  order: [], // serials, sorted
  counts: new Map(), // state → number of devices
  steps: [],
  states: [],
  onboarding: false,
  lastId: 0,
};
const view = { name: 'fleet', serial: null, page: 0, filtered: null, timelineMax: 0 };
const dirty = { rows: new Set(), filter: true, counts: true, device: false, images: false, options: true };
let token = sessionStorage.getItem('ztp-token') || '';
let stream = null;

// ---- helpers ---------------------------------------------------------------------------------
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
function api(method, path, body) {
  const headers = { authorization: 'Bearer ' + token };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}
function fmtMs(ms) {
  if (ms < 1000) return ms + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + ' s';
  return Math.floor(ms / 60000) + ' min ' + String(Math.round((ms % 60000) / 1000)).padStart(2, '0') + ' s';
}
function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + units[i];
}
let toastTimer = null;
function toast(text, bad) {
  const t = $('toast');
  t.textContent = text;
  t.className = 'toast' + (bad ? ' bad' : '');
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
}
function conn(state, text) {
  const c = $('conn');
  c.dataset.conn = state;
  setText(c, text);
}

// ---- rendering, batched per animation frame ---------------------------------------------------
let frameQueued = false;
function schedule() {
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => { frameQueued = false; render(); });
}
function render() {
  if (view.name === 'fleet') renderFleet();
  else if (view.name === 'device') renderDevice();
  else if (view.name === 'images' && dirty.images) loadImages();
}

function progressOf(serial) {
  const job = fleet.jobs.get(serial);
  const d = fleet.devices.get(serial);
  if (d && d.state === 'onboarded') return 1;
  if (!job) return 0;
  if (job.status === 'complete') return 1;
  const idx = (s) => fleet.steps.indexOf(s);
  const first = idx(d && d.bmc ? 'bmc-check' : 'booting');
  const span = idx('complete') - first;
  let at = idx(job.step) - first;
  if (job.step === 'progress') at += Math.min(0.9, (job.progressCount || 0) / 9);
  return span > 0 ? Math.max(0, Math.min(0.99, at / span)) : 0;
}

function actionsFor(serial) {
  if (!fleet.onboarding) return [];
  const job = fleet.jobs.get(serial);
  if (!job) return [['onboard', 'Onboard']];
  if (job.status === 'queued' || job.status === 'running') return [['abort', 'Abort']];
  if (job.status === 'complete') return [['restart', 'Onboard again']];
  return [['retry', 'Retry'], ['restart', 'Start over']];
}

function matches(d, text, state, profile) {
  if (state && d.state !== state) return false;
  if (profile && d.profile !== profile) return false;
  if (!text) return true;
  const last = fleet.last.get(d.serial);
  const job = fleet.jobs.get(d.serial);
  const hay = [d.serial, d.profile, d.state, d.bootImage, d.hwModel, ...(d.macs || []), d.bmc && d.bmc.address, last && last.summary, job && job.reason]
    .filter(Boolean).join(' ').toLowerCase();
  return hay.includes(text);
}

function renderFleet() {
  if (dirty.options) renderOptions();
  const text = $('filter-text').value.trim().toLowerCase();
  const state = $('filter-state').value;
  const profile = $('filter-profile').value;
  if (dirty.filter || !view.filtered) {
    view.filtered = fleet.order.filter((s) => matches(fleet.devices.get(s), text, state, profile));
    dirty.filter = false;
    dirty.rows.clear();
    dirty.rows.add('*');
  }
  if (dirty.counts) renderCounts(state);
  const pages = Math.max(1, Math.ceil(view.filtered.length / PAGE));
  if (view.page >= pages) { view.page = pages - 1; dirty.rows.add('*'); }
  const slice = view.filtered.slice(view.page * PAGE, view.page * PAGE + PAGE);
  const tbody = $('rows');
  if (dirty.rows.has('*')) {
    // Rows are reused: a page of at most PAGE <tr>, re-filled in place.
    while (tbody.children.length > slice.length) tbody.lastChild.remove();
    while (tbody.children.length < slice.length) tbody.appendChild(newRow());
    slice.forEach((serial, i) => fillRow(tbody.children[i], serial));
  } else {
    for (const serial of dirty.rows) {
      const i = slice.indexOf(serial);
      if (i >= 0) fillRow(tbody.children[i], serial);
    }
  }
  dirty.rows.clear();
  $('empty').hidden = fleet.devices.size > 0;
  setText($('shown'), view.filtered.length === fleet.devices.size ? fleet.devices.size + ' devices' : view.filtered.length + ' of ' + fleet.devices.size + ' devices');
  setText($('page-info'), 'page ' + (view.page + 1) + ' of ' + pages);
  $('page-prev').disabled = view.page === 0;
  $('page-next').disabled = view.page >= pages - 1;
}

function renderOptions() {
  dirty.options = false;
  const fill = (select, values) => {
    const have = [...select.options].slice(1).map((o) => o.value);
    if (have.join() === values.join()) return;
    const keep = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const v of values) select.appendChild(el('option', { value: v }, v));
    select.value = values.includes(keep) ? keep : '';
  };
  fill($('filter-state'), fleet.states);
  fill($('filter-profile'), [...new Set([...fleet.devices.values()].map((d) => d.profile))].sort());
}

function renderCounts(selected) {
  dirty.counts = false;
  const box = $('counts');
  box.textContent = '';
  const chip = (state, label, n) => {
    const c = el('div', { class: 'count' + (selected === state ? ' selected' : ''), 'data-state': state, title: state ? 'show only ' + state : 'show all' });
    c.appendChild(el('b', {}, String(n)));
    c.appendChild(el('span', {}, label));
    c.addEventListener('click', () => {
      $('filter-state').value = selected === state ? '' : state;
      view.page = 0;
      dirty.filter = dirty.counts = true;
      schedule();
    });
    box.appendChild(c);
  };
  chip('', 'devices', fleet.devices.size);
  for (const s of fleet.states) if (fleet.counts.get(s)) chip(s, s, fleet.counts.get(s));
}

function newRow() {
  const tr = el('tr');
  for (const c of ['serial', 'profile', 'state-cell', 'job', 'progress', 'last', 'actions']) tr.appendChild(el('td', { class: c }));
  tr.querySelector('.state-cell').appendChild(el('span', { class: 'state' }));
  tr.cells[0].appendChild(el('a')); // a link, so the device page is reachable by keyboard too
  const bar = el('span', { class: 'bar' });
  bar.appendChild(el('i'));
  tr.querySelector('.progress').append(bar, el('span', { class: 'pct' }));
  tr.addEventListener('click', (ev) => {
    if (ev.target instanceof HTMLButtonElement) return;
    location.hash = '#/device/' + encodeURIComponent(tr.dataset.serial);
  });
  return tr;
}

function fillRow(tr, serial) {
  const d = fleet.devices.get(serial);
  if (!d) return;
  const job = fleet.jobs.get(serial);
  const last = fleet.last.get(serial);
  tr.dataset.serial = serial;
  const link = tr.cells[0].firstChild;
  setText(link, serial);
  link.href = '#/device/' + encodeURIComponent(serial);
  setText(tr.cells[1], d.profile || '');
  const badge = tr.cells[2].firstChild;
  setText(badge, d.state);
  badge.dataset.state = d.state;
  setText(tr.cells[3], job ? job.step + ' · ' + job.status + (job.attempt > 1 ? ' · attempt ' + job.attempt : '') : '–');
  tr.cells[3].title = (job && job.reason) || '';
  const p = Math.round(progressOf(serial) * 100);
  const bar = tr.cells[4].firstChild;
  bar.firstChild.style.width = p + '%';
  bar.className = 'bar' + (p === 100 ? ' done' : d.state === 'failed' || d.state === 'timed-out' ? ' failed' : '');
  tr.cells[4].dataset.value = String(p);
  setText(tr.cells[4].lastChild, p + '%');
  setText(tr.cells[5], last ? last.summary : '');
  tr.cells[5].title = last ? last.summary : '';
  tr.cells[5].classList.toggle('error', !!(last && last.error));
  fillActions(tr.cells[6], serial);
}

function fillActions(cell, serial) {
  const actions = actionsFor(serial);
  const key = actions.map((a) => a[0]).join();
  if (cell.dataset.actions === key) return;
  cell.dataset.actions = key;
  cell.textContent = '';
  for (const [action, label] of actions) {
    const b = el('button', { type: 'button', 'data-action': action }, label);
    b.addEventListener('click', () => act(serial, action, b));
    cell.appendChild(b);
  }
}

async function act(serial, action, button) {
  button.disabled = true;
  try {
    let res;
    const s = encodeURIComponent(serial);
    if (action === 'onboard' || action === 'restart') res = await api('POST', '/api/v1/onboarding', { serials: [serial], ...(action === 'restart' ? { restart: true } : {}) });
    else if (action === 'retry') res = await api('POST', '/api/v1/onboarding/' + s + '/retry', { from: 'step' });
    else res = await api('POST', '/api/v1/onboarding/' + s + '/abort');
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { toast(serial + ': ' + action + ' refused: ' + ((body.error && body.error.message) || 'HTTP ' + res.status), true); return; }
    const result = body.results && body.results[0];
    if (result && result.outcome === 'refused') toast(serial + ': ' + result.reason, true);
    else toast(serial + ': ' + action + ' accepted');
    // The stream may already have moved the job on: only a newer attempt replaces what it shows.
    const job = body.job || (result && result.job);
    const prev = fleet.jobs.get(serial);
    if (job && (!prev || job.attempt > prev.attempt)) { fleet.jobs.set(serial, job); touch(serial); }
  } catch (err) {
    toast(serial + ': ' + action + ' failed: ' + err.message, true);
  } finally {
    button.disabled = false;
  }
}

// ---- the fleet model, changed by the snapshot and by events -----------------------------------
function touch(serial) {
  dirty.rows.add(serial);
  if (view.serial === serial) dirty.device = true;
  schedule();
}
function count(state, delta) {
  fleet.counts.set(state, (fleet.counts.get(state) || 0) + delta);
  dirty.counts = true;
}
function insertSorted(serial) {
  let lo = 0, hi = fleet.order.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (fleet.order[mid] < serial) lo = mid + 1; else hi = mid; }
  fleet.order.splice(lo, 0, serial);
}
function putDevice(d) {
  const old = fleet.devices.get(d.serial);
  if (old) count(old.state, -1);
  else insertSorted(d.serial);
  fleet.devices.set(d.serial, d);
  count(d.state, 1);
  if (!old || old.profile !== d.profile) dirty.options = true;
  dirty.filter = true;
}
function removeDevice(serial) {
  const old = fleet.devices.get(serial);
  if (!old) return;
  count(old.state, -1);
  fleet.devices.delete(serial);
  fleet.jobs.delete(serial);
  fleet.last.delete(serial);
  const i = fleet.order.indexOf(serial);
  if (i >= 0) fleet.order.splice(i, 1);
  dirty.filter = dirty.options = true;
}

function applySnapshot(s) {
  fleet.devices.clear(); fleet.jobs.clear(); fleet.last.clear(); fleet.counts.clear();
  fleet.order = [];
  fleet.steps = s.steps;
  fleet.states = s.states;
  fleet.onboarding = s.onboarding;
  for (const d of s.devices) { fleet.devices.set(d.serial, d); count(d.state, 1); }
  fleet.order = [...fleet.devices.keys()].sort();
  for (const j of s.jobs) fleet.jobs.set(j.serial, j);
  fleet.lastId = s.lastId;
  dirty.filter = dirty.options = dirty.counts = dirty.device = dirty.images = true;
  schedule();
}

function applyEvent(e) {
  fleet.lastId = Math.max(fleet.lastId, e.id);
  if (e.source === 'images') dirty.images = true;
  const serial = e.serial;
  if (!serial) return;
  if (e.source === 'admin' && e.type === 'device-removed') { removeDevice(serial); touch(serial); return; }
  if (e.device) putDevice(e.device);
  const d = fleet.devices.get(serial);
  if (!d) return;
  if (e.state && d.state !== e.state) {
    count(d.state, -1);
    d.state = e.state;
    count(d.state, 1);
    if ($('filter-state').value) dirty.filter = true;
  }
  const data = e.data || {};
  if (e.source === 'onboarding' && e.type === 'transition') {
    const prev = fleet.jobs.get(serial);
    if (!prev || data.attempt >= prev.attempt) {
      fleet.jobs.set(serial, { ...(prev || {}), serial, attempt: data.attempt, step: data.step, status: data.status, reason: data.reason || null,
        progressCount: data.newAttempt ? 0 : prev ? prev.progressCount : 0 });
    }
  } else if (e.source === 'bootstrap' && e.type === 'progress') {
    const j = fleet.jobs.get(serial);
    if (j) j.progressCount = (j.progressCount || 0) + 1;
  }
  fleet.last.set(serial, { summary: e.summary, error: !!e.error, at: e.at });
  if ($('filter-text').value) dirty.filter = true;
  if (view.serial === serial) appendTimeline(e);
  touch(serial);
}

// ---- the event stream -------------------------------------------------------------------------
async function follow() {
  const mine = {};
  stream = mine;
  for (let failures = 0; stream === mine; ) {
    const controller = new AbortController();
    mine.abort = () => controller.abort();
    try {
      const resume = fleet.lastId > 0 && fleet.steps.length > 0;
      const headers = { authorization: 'Bearer ' + token, accept: 'text/event-stream' };
      if (resume) headers['last-event-id'] = String(fleet.lastId);
      const res = await fetch('/api/v1/events' + (resume ? '' : '?snapshot=true'), { headers, signal: controller.signal });
      if (res.status === 401) { signOut('the admin API refused the token (401)'); return; }
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      conn('live', 'live');
      failures = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message', data = '';
          for (const line of frame.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (!data) continue;
          if (event === 'snapshot') applySnapshot(JSON.parse(data));
          else if (event === 'history') applyEvent(JSON.parse(data));
        }
      }
    } catch {
      if (stream !== mine) return;
      failures++;
    }
    if (stream !== mine) return;
    conn('down', 'reconnecting…');
    await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** Math.min(failures, 3))));
  }
}

// ---- device page ------------------------------------------------------------------------------
function recordRows(d) {
  const rows = [
    ['profile', d.profile], ['state', d.state + (d.stateChangedAt ? ' since ' + d.stateChangedAt : '')], ['MACs', (d.macs || []).join(', ')],
    ['boot image', d.bootImage || d.bootImageSha256], ['OS', [d.osName, d.osVersion].filter(Boolean).join(' ')], ['hardware', d.hwModel],
    ['signing', d.signing], ['password', d.hasPassword ? 'set' : 'none (client certificate only)'],
    ['BMC', d.bmc ? d.bmc.address + (d.bmc.username ? ' as ' + d.bmc.username : '') + (d.bmc.hasPassword ? ' (password set)' : '') : 'none'],
    ['redirect', d.redirect ? d.redirect.map((r) => r.address + (r.port ? ':' + r.port : '')).join(', ') : null],
    ['parent host', d.parentHost], ['revision', String(d.revision)], ['created', d.createdAt], ['updated', d.updatedAt],
  ];
  return rows.filter((r) => r[1]);
}

function renderDevice() {
  if (!dirty.device) return;
  dirty.device = false;
  const serial = view.serial;
  const d = fleet.devices.get(serial);
  setText($('device-serial'), serial);
  $('device-missing').hidden = !!d || fleet.steps.length === 0;
  const badge = $('device-state');
  setText(badge, d ? d.state : '');
  badge.dataset.state = d ? d.state : '';
  const job = fleet.jobs.get(serial);
  setText($('device-job'), job ? 'job: ' + job.step + ' · ' + job.status + ', attempt ' + job.attempt + (job.reason ? ' — ' + job.reason : '') : fleet.onboarding ? 'no onboarding job' : 'onboarding is disabled on this server');
  if (d) fillActions($('device-actions'), serial);
  else { $('device-actions').textContent = ''; $('device-actions').dataset.actions = ''; }
  const dl = $('record');
  dl.textContent = '';
  if (d) for (const [k, v] of recordRows(d)) dl.append(el('dt', {}, k), el('dd', {}, v));
}

function timelineItem(t, fresh) {
  const li = el('li', { 'data-source': t.source, 'data-id': String(t.id), class: (t.error ? 'error' : '') + (fresh ? ' fresh' : '') });
  li.title = t.at;
  li.append(el('span', { class: 'when' }, t.offset), el('span', { class: 'src' }, t.source), el('span', { class: 'what' }, t.summary + (t.durationMs !== undefined && t.source !== 'onboarding' ? ' (' + fmtMs(t.durationMs) + ')' : '')));
  return li;
}
let timelineStart = 0;
async function loadTimeline(serial) {
  const list = $('timeline');
  list.textContent = '';
  view.timelineMax = 0;
  const res = await api('GET', '/api/v1/devices/' + encodeURIComponent(serial) + '/timeline' + ($('timeline-all').checked ? '?all=true' : ''));
  if (view.serial !== serial) return;
  if (!res.ok) { list.appendChild(el('li', { class: 'error' }, 'timeline unavailable (HTTP ' + res.status + ')')); return; }
  const t = await res.json();
  timelineStart = t.entries.length ? Date.parse(t.entries[0].at) : 0;
  // Live events may have arrived while it loaded: keep them, after the loaded ones.
  const live = [...list.children];
  list.textContent = '';
  for (const e of t.entries) list.appendChild(timelineItem({ ...e, offset: '+' + fmtMs(e.offsetMs) }, false));
  view.timelineMax = t.entries.length ? t.entries[t.entries.length - 1].id : 0;
  for (const li of live) if (Number(li.dataset.id) > view.timelineMax) { list.appendChild(li); view.timelineMax = Number(li.dataset.id); }
}
function appendTimeline(e) {
  if (e.id <= view.timelineMax) return;
  view.timelineMax = e.id;
  if (!timelineStart) timelineStart = Date.parse(e.at);
  const list = $('timeline');
  list.appendChild(timelineItem({ ...e, offset: '+' + fmtMs(Date.parse(e.at) - timelineStart) }, true));
  list.scrollTop = list.scrollHeight;
}

// ---- images page ------------------------------------------------------------------------------
let imagesLoading = false;
async function loadImages() {
  if (imagesLoading) return;
  imagesLoading = true;
  dirty.images = false;
  try {
    const [cat, reads] = await Promise.all([api('GET', '/api/v1/images'), api('GET', '/api/v1/events/image-reads')]);
    if (!cat.ok || !reads.ok) { toast('images unavailable (HTTP ' + (cat.ok ? reads.status : cat.status) + ')', true); return; }
    const images = (await cat.json()).images;
    const byName = new Map((await reads.json()).images.map((r) => [r.image, r]));
    const tbody = $('image-rows');
    tbody.textContent = '';
    for (const img of images) {
      const users = fleet.order.filter((s) => { const d = fleet.devices.get(s); return d.bootImage === img.name || d.bootImageSha256 === img.sha256; });
      const r = byName.get(img.name);
      const tr = el('tr', { 'data-image': img.name });
      tr.appendChild(el('td', { class: 'name' }, img.name));
      tr.appendChild(el('td', {}, [img.osName, img.osVersion].filter(Boolean).join(' ') || '–'));
      tr.appendChild(el('td', { class: 'size', title: img.size + ' bytes' }, fmtBytes(img.size)));
      const dg = el('td', { class: 'digest', title: img.sha256 }, img.sha256.slice(0, 16) + '…');
      tr.appendChild(dg);
      const u = el('td', { class: 'users' });
      if (users.length === 0) u.textContent = 'no device';
      users.slice(0, 8).forEach((s, i) => {
        if (i) u.append(', ');
        u.appendChild(el('a', { href: '#/device/' + encodeURIComponent(s) }, s));
      });
      if (users.length > 8) u.append(' and ' + (users.length - 8) + ' more');
      tr.appendChild(u);
      tr.appendChild(el('td', { class: 'reads' }, r ? r.reads + ' by ' + r.devices + ' device' + (r.devices === 1 ? '' : 's') + ', ' + fmtBytes(r.bytes) : 'none'));
      const link = el('td');
      if (img.urls && img.urls.bmc) link.appendChild(el('a', { class: 'download', href: img.urls.bmc, download: img.name, rel: 'noreferrer' }, 'download'));
      tr.appendChild(link);
      tbody.appendChild(tr);
    }
    $('images-empty').hidden = images.length > 0;
  } finally {
    imagesLoading = false;
  }
}

// ---- navigation and sign-in -------------------------------------------------------------------
function route() {
  const hash = location.hash || '#/';
  const m = /^#\/device\/(.+)$/.exec(hash);
  view.name = m ? 'device' : hash === '#/images' ? 'images' : 'fleet';
  for (const v of ['fleet', 'device', 'images']) $('view-' + v).hidden = v !== view.name;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === (view.name === 'device' ? 'fleet' : view.name));
  const serial = m ? decodeURIComponent(m[1]) : null;
  if (serial !== view.serial) {
    view.serial = serial;
    if (serial) { dirty.device = true; loadTimeline(serial); }
  }
  if (view.name === 'fleet') dirty.rows.add('*');
  if (view.name === 'images') dirty.images = true;
  schedule();
}

function signOut(message) {
  if (stream && stream.abort) stream.abort();
  stream = null;
  token = '';
  sessionStorage.removeItem('ztp-token');
  $('app').hidden = true;
  $('signin').hidden = false;
  $('signin-error').hidden = !message;
  setText($('signin-error'), message || '');
  conn('down', message ? 'token refused' : 'signed out');
  $('signin-token').focus();
}

function start() {
  $('signin').hidden = true;
  $('app').hidden = false;
  conn('connecting', 'connecting…');
  route();
  follow();
}

$('signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('signin-token').value.trim();
  $('signin-token').value = '';
  if (!token) return;
  sessionStorage.setItem('ztp-token', token);
  start();
});
for (const id of ['filter-text', 'filter-state', 'filter-profile']) {
  $(id).addEventListener('input', () => { view.page = 0; dirty.filter = dirty.counts = true; schedule(); });
}
$('page-prev').addEventListener('click', () => { view.page = Math.max(0, view.page - 1); dirty.rows.add('*'); schedule(); });
$('page-next').addEventListener('click', () => { view.page++; dirty.rows.add('*'); schedule(); });
$('timeline-all').addEventListener('change', () => { if (view.serial) loadTimeline(view.serial); });
window.addEventListener('hashchange', route);

// A token must never sit in the address bar: anything after # other than a view is dropped.
if (location.hash && !/^#\/(images|device\/.+)?$/.test(location.hash)) history.replaceState(null, '', location.pathname);
if (token) start();
else signOut('');
