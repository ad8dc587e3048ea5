// The live dashboard: one static page that lists devices and their onboarding state and
// updates from the /api/v1/events stream. The admin token comes from the URL fragment
// (#token=…, never sent to the server in a URL it logs) or a prompt, kept in sessionStorage.
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dpu-ztp</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:1.5rem;color:#1b1f24;background:#fafbfc}
 h1{font-size:1.3rem;margin:0 0 .3rem} .muted{color:#667}
 table{border-collapse:collapse;width:100%;margin-top:1rem;background:#fff}
 th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
 th{background:#f0f2f5;font-weight:600}
 .state{padding:.1rem .45rem;border-radius:.6rem;font-size:12px;background:#e8eaed}
 .onboarded{background:#d4f5dd}.failed{background:#fbd5d5}.provisioning,.bootstrapping,.redirected{background:#fff1c2}
 .dhcp-bound,.bmc-booting,.image-fetched{background:#dbe9ff}
 #counts span{margin-right:1rem} #log{font:12px ui-monospace,monospace;white-space:pre-wrap;max-height:14rem;overflow:auto;background:#fff;border:1px solid #e3e6ea;padding:.5rem}
</style></head><body>
<h1>dpu-ztp onboarding</h1>
<div class="muted" id="conn">connecting…</div>
<div id="counts"></div>
<table><thead><tr><th>Serial</th><th>State</th><th>Profile</th><th>MACs</th><th>Image</th><th>Last event</th><th>Since</th></tr></thead><tbody id="rows"></tbody></table>
<h2 style="font-size:1rem;margin-top:1.5rem">Live events</h2><div id="log"></div>
<script>
const params = new URLSearchParams(location.hash.slice(1));
let token = params.get('token') || sessionStorage.getItem('ztp-token') || '';
if (!token) token = prompt('Admin token (printed by ztp serve)') || '';
sessionStorage.setItem('ztp-token', token);
history.replaceState(null, '', location.pathname);
const devices = new Map();
const last = new Map();
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function render() {
  const rows = [...devices.values()].sort((a, b) => a.serial.localeCompare(b.serial));
  document.getElementById('rows').innerHTML = rows.map((d) => '<tr><td>' + esc(d.serial) + '</td><td><span class="state ' + esc(d.state) + '">' + esc(d.state) +
    '</span></td><td>' + esc(d.profile) + '</td><td>' + esc(d.macs.join(', ')) + '</td><td>' + esc(d.bootImage || '') + '</td><td>' + esc(last.get(d.serial) || '') +
    '</td><td>' + esc(d.stateChangedAt) + '</td></tr>').join('');
  const counts = {};
  for (const d of rows) counts[d.state] = (counts[d.state] || 0) + 1;
  document.getElementById('counts').innerHTML = Object.entries(counts).map(([s, n]) => '<span>' + esc(s) + ': <b>' + n + '</b></span>').join('');
}
async function load() {
  const res = await fetch('/api/v1/devices', { headers: { authorization: 'Bearer ' + token } });
  if (!res.ok) { document.getElementById('conn').textContent = 'admin API refused the token (' + res.status + ')'; return false; }
  for (const d of (await res.json()).devices) devices.set(d.serial, d);
  render();
  return true;
}
function describe(e) { const d = e.data || {}; return e.source + ' ' + e.type + (d.progressType ? ' ' + d.progressType : '') + (d.response ? ' ' + d.response : '') + (d.message ? ': ' + d.message : ''); }
load().then((ok) => {
  if (!ok) return;
  const es = new EventSource('/api/v1/events?after=' + Date.now() * 0 + '&token=' + encodeURIComponent(token));
  es.onopen = () => { document.getElementById('conn').textContent = 'live'; };
  es.onerror = () => { document.getElementById('conn').textContent = 'reconnecting…'; };
  es.addEventListener('history', (m) => {
    const e = JSON.parse(m.data);
    const log = document.getElementById('log');
    log.textContent = e.at + ' ' + (e.serial || '-') + ' ' + describe(e) + '\\n' + log.textContent.slice(0, 20000);
    if (!e.serial) return;
    last.set(e.serial, describe(e));
    if (e.source === 'admin') { load(); return; }
    const d = devices.get(e.serial);
    if (d && e.stateChange) { d.state = e.stateChange.to; d.stateChangedAt = e.at; }
    render();
  });
});
</script></body></html>
`;
