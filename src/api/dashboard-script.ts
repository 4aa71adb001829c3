// The dashboard's script (GET /assets/dashboard.js), plain browser JavaScript. What it keeps
// current and how:
// - rollouts: from the event stream (`rollout` events carry the whole state), rendered as
//   cards: step timeline, weights over time (from history), analysis measurements (success
//   rates, latencies, requests per version), history with reasons, and the actions;
// - the fleet: `fleet` events carry counts only (GET /v1/fleet/summary), and the node list is
//   one page of GET /v1/fleet?limit=50, fetched again only when the counts change or the
//   filter does: nothing re-reads the whole fleet, whatever its size;
// - services: read at sign-in and when a rollout changes phase (a promotion changes stable).
// Nothing polls. (No template literals below: this file is itself one.)
export const DASHBOARD_SCRIPT = /* js */ `'use strict';
localStorage.removeItem('sluiceToken'); // older pages kept the token here
const PAGE = 50;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');
const pct = (v) => (v === null || v === undefined ? '–' : Math.round(v * 1000) / 10 + '%');
let me = null, events = null, ticker = null;
const rollouts = new Map();
const cards = new Map();
const nodesView = { offset: 0, filter: '', state: '', total: 0, timer: null };

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) { signedOut(); throw new Error('signed out: sign in again'); }
  const json = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(json && json.error ? json.error.message : res.statusText);
  return json;
}
const showError = (err) => { $('error').textContent = err ? String(err.message || err) : ''; };
const canAct = () => !!me && (me.role === 'operator' || me.role === 'admin');

// ---- sign-in -------------------------------------------------------------------------------
function signedIn(who) {
  me = who;
  $('signin-box').hidden = true;
  for (const s of document.querySelectorAll('.data')) s.hidden = false;
  $('who').textContent = who.via === 'open' ? 'no API tokens: open to this machine' : who.name + ' (' + who.role + ')';
  $('signout').hidden = who.via !== 'session';
  document.body.dataset.role = who.role;
  startLive();
}
function signedOut() {
  me = null;
  stopLive();
  $('signin-box').hidden = false;
  for (const s of document.querySelectorAll('.data')) s.hidden = true;
  $('who').textContent = '';
  $('signout').hidden = true;
  setLive('signed out', false);
}
async function start() {
  try {
    const res = await fetch('/v1/session');
    if (res.ok) signedIn(await res.json()); else if (res.status === 401) signedOut(); else throw new Error('HTTP ' + res.status);
  } catch (err) { showError(err); setTimeout(start, 5000); }
}
$('signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const res = await fetch('/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: $('token').value }) });
  const json = await res.json().catch(() => null);
  $('token').value = '';
  if (!res.ok) { showError(json && json.error ? json.error.message : 'sign-in failed'); return; }
  showError(null);
  signedIn(Object.assign({}, json, { via: 'session' }));
});
$('signout').addEventListener('click', async () => {
  await fetch('/v1/session', { method: 'DELETE' }).catch(() => undefined);
  signedOut();
});

// ---- live updates --------------------------------------------------------------------------
function setLive(text, on) { $('live').textContent = text; $('live').className = on ? 'on' : ''; }
function startLive() {
  stopLive();
  events = new EventSource('/v1/events'); // same origin: the session cookie goes along
  events.addEventListener('rollout', (e) => {
    const r = JSON.parse(e.data);
    const before = rollouts.get(r.service);
    rollouts.set(r.service, r);
    renderRollout(r);
    if (!before || before.phase !== r.phase) loadServices();
  });
  events.addEventListener('fleet', (e) => { renderFleet(JSON.parse(e.data)); loadNodes(); });
  events.onopen = () => setLive('live', true);
  events.onerror = () => {
    setLive('reconnecting…', false);
    // The browser retries by itself unless the server refused the stream (e.g. the session ended).
    if (events && events.readyState === EventSource.CLOSED) { stopLive(); setTimeout(start, 2000); }
  };
  loadServices();
  loadNodes();
  ticker = setInterval(() => { for (const r of rollouts.values()) if (r.pauseUntil) renderStatus(r); }, 1000);
}
function stopLive() {
  if (events) events.close();
  events = null;
  clearInterval(ticker);
}

// ---- rollouts ------------------------------------------------------------------------------
function stepLabel(s) {
  if (s.setWeight !== undefined) return s.setWeight + '%';
  if (s.pause) return s.pause.duration ? 'pause ' + s.pause.duration : 'pause (manual)';
  if (s.analysis) return 'analysis ×' + (s.analysis.count || 1) + ' every ' + s.analysis.interval;
  return '?';
}
function card(r) {
  let c = cards.get(r.service);
  if (c) return c;
  const el = document.createElement('div');
  el.className = 'rollout';
  el.dataset.service = r.service;
  el.innerHTML = '<div class="rollout-head"><span class="name"></span><span class="phase"></span><span class="versions muted"></span><div class="weights"></div><div class="actions"></div></div>'
    + '<ol class="steps"></ol><div class="status-line"></div>'
    + '<div class="charts"><div class="chart" data-chart="weights"></div><div class="chart" data-chart="success"></div><div class="chart" data-chart="latency"></div><div class="chart" data-chart="requests"></div></div>'
    + '<div class="analysis"></div><details class="history"><summary></summary><table><thead><tr><th>time</th><th>event</th><th>weights</th><th>by</th><th>reason</th></tr></thead><tbody></tbody></table></details>';
  const list = $('rollouts');
  if (!cards.size) list.innerHTML = '';
  const after = [...cards.keys()].sort().find((s) => s > r.service);
  list.insertBefore(el, after ? cards.get(after).el : null);
  c = { el, charts: {} };
  cards.set(r.service, c);
  return c;
}
function renderRollout(r) {
  const c = card(r), el = c.el, q = (s) => el.querySelector(s);
  q('.name').textContent = r.service;
  q('.phase').className = 'phase ' + r.phase;
  q('.phase').textContent = r.phase + (r.pausedBy ? ' (' + r.pausedBy + ')' : '');
  q('.versions').textContent = r.stable + ' → ' + r.canary;
  const cw = r.weights[r.canary] || 0, sw = r.phase === 'Promoted' ? 0 : 100 - cw;
  q('.weights').innerHTML = '<div class="bar" title="' + esc(r.stable + ' ' + sw + '% / ' + r.canary + ' ' + cw + '%') + '"><div class="stable" style="width:' + sw + '%"></div><div class="canary" style="width:' + cw + '%"></div></div>'
    + '<span class="muted">' + esc(r.stable) + ' ' + sw + '% · ' + esc(r.canary) + ' ' + cw + '%</span>';
  const active = r.phase === 'Progressing' || r.phase === 'Paused';
  q('.actions').innerHTML = active && canAct()
    ? ['promote', r.phase === 'Paused' ? 'resume' : 'pause'].map((a) => '<button data-action="' + a + '">' + a + '</button>').join('') + '<button data-action="rollback" class="danger">roll back…</button>'
    : '';
  q('.steps').innerHTML = r.spec.steps.map((s, i) => {
    const cls = r.phase === 'Promoted' || i < r.step ? 'done' : i === r.step && active ? 'current' : '';
    return '<li class="' + cls + '" title="step ' + i + '">' + esc(stepLabel(s)) + '</li>';
  }).join('');
  renderStatus(r);
  renderCharts(r, c);
  renderAnalysis(r, q('.analysis'));
  q('.history summary').textContent = 'History: ' + r.history.length + ' transitions' + (r.historyDropped ? ' (' + r.historyDropped + ' older dropped)' : '') + ', last: ' + (r.history.length ? r.history[r.history.length - 1].event : '–');
  q('.history tbody').innerHTML = r.history.slice().reverse().map((h) => '<tr><td class="muted">' + esc(time(h.at)) + '</td><td>' + esc(h.event) + '</td><td>' + esc(Object.entries(h.weights).map((e) => e[0] + ' ' + e[1] + '%').join(', ')) + '</td><td>' + esc(h.by) + '</td><td>' + esc(h.reason) + '</td></tr>').join('');
}
function renderStatus(r) {
  const el = cards.get(r.service).el.querySelector('.status-line');
  const parts = [];
  if (r.awaitingAck) parts.push('waiting for the service\\'s nodes to ACK ' + r.awaitingAck.canaryWeight + '% (since ' + time(r.awaitingAck.since) + ')');
  if (r.pauseUntil) parts.push('pause ends in ' + Math.max(0, Math.round((Date.parse(r.pauseUntil) - Date.now()) / 1000)) + ' s');
  if (r.phase === 'Paused' && r.pausedBy === 'step') parts.push('waiting for promote');
  if (r.lastAckAt) parts.push('ACKed by ' + (r.lastAckNodes === null || r.lastAckNodes === undefined ? '?' : r.lastAckNodes) + ' node(s) at ' + time(r.lastAckAt));
  parts.push('step ' + Math.min(r.step + 1, r.spec.steps.length) + ' of ' + r.spec.steps.length + ', updated ' + time(r.updatedAt));
  el.textContent = parts.join(' · ');
}
function renderAnalysis(r, el) {
  if (!r.analysis) { el.innerHTML = ''; return; }
  const runs = r.analysis.runs.map((x) => esc(x.run) + ': <span class="good">' + x.successful + ' ✓</span> <span class="bad">' + x.failed + ' ✗</span> <span class="Inconclusive">' + x.inconclusive + ' ?</span>, next ' + esc(time(x.nextAt))).join(' · ');
  const m = r.analysis.measurements[r.analysis.measurements.length - 1];
  const last = m ? m.metrics.map((x) => '<div class="' + x.phase + '">' + esc(x.name) + ': ' + esc(x.message) + '</div>').join('') : '<span class="muted">no measurement yet</span>';
  el.innerHTML = '<h3>Analysis</h3><div class="status-line">' + (runs || 'no run in progress') + '</div>' + last;
}

// ---- charts (uPlot) ------------------------------------------------------------------------
function chart(c, name, title, series, data, yFormat, range, emptyText) {
  const el = c.el.querySelector('[data-chart="' + name + '"]');
  const key = series.map((s) => s.label).join('|');
  const has = data[0].length > 0 && series.length > 0;
  let entry = c.charts[name];
  if (!has) {
    if (entry) { entry.plot.destroy(); delete c.charts[name]; }
    el.innerHTML = '<div class="title">' + esc(title) + '</div><div class="empty">' + esc(emptyText || 'no data yet') + '</div>';
    return;
  }
  if (entry && entry.key === key) { entry.plot.setData(data); return; }
  if (entry) entry.plot.destroy();
  el.innerHTML = '<div class="title">' + esc(title) + '</div>';
  const opts = {
    width: Math.max(280, el.clientWidth || 320), height: 150,
    legend: { live: false },
    scales: { x: { time: true }, y: range ? { range: range } : {} },
    axes: [{ stroke: '#6b7280', grid: { stroke: '#f1f5f9' } }, { stroke: '#6b7280', grid: { stroke: '#f1f5f9' }, size: 60, values: (u, vals) => vals.map(yFormat) }],
    series: [{}].concat(series),
  };
  c.charts[name] = { key: key, plot: new uPlot(opts, data, el) };
}
function renderCharts(r, c) {
  // Weights over time: each transition in history, and now (the current weights hold).
  const xs = [], stable = [], canary = [];
  for (const h of r.history) {
    const cw = h.weights[r.canary] || 0;
    xs.push(Date.parse(h.at) / 1000); canary.push(cw); stable.push(r.phase === 'Promoted' && cw === 100 ? 0 : 100 - cw);
  }
  const end = r.phase === 'Progressing' || r.phase === 'Paused' ? Date.now() / 1000 : Date.parse(r.updatedAt) / 1000;
  if (xs.length && end > xs[xs.length - 1]) { xs.push(end); stable.push(stable[stable.length - 1]); canary.push(canary[canary.length - 1]); }
  const stepped = uPlot.paths.stepped({ align: 1 });
  chart(c, 'weights', 'Weights (%)', [
    { label: r.stable + ' (stable)', stroke: '#3b82f6', width: 2, paths: stepped },
    { label: r.canary + ' (canary)', stroke: '#f59e0b', fill: '#f59e0b22', width: 2, paths: stepped },
  ], [xs, stable, canary], (v) => v + '%', [0, 100], 'no history yet');

  // Analysis: what each version showed per window (success rate, p99, requests) side by side;
  // the metrics' verdicts are in the analysis line and the history.
  const ms = (r.analysis && r.analysis.measurements) || [];
  const mx = ms.map((m) => Date.parse(m.to) / 1000);
  const versions = [r.stable, r.canary];
  const perVersion = (field) => versions.map((v) => ms.map((m) => {
    const seen = field === 'requests' ? m.requests[v] : m.versions && m.versions[v] && m.versions[v][field];
    return seen === undefined || seen === null ? null : seen;
  }));
  const series = () => versions.map((v) => ({
    label: v + (v === r.canary ? ' (canary)' : ' (stable)'), stroke: v === r.canary ? '#f59e0b' : '#3b82f6', width: 2, points: { show: true },
  }));
  const percent = (rows) => rows.map((row) => row.map((x) => (x === null ? null : Math.round(x * 1000) / 10)));
  chart(c, 'success', 'Success rate (%)', series(), [mx].concat(percent(perVersion('successRate'))), (v) => v + '%', null, 'no measurement yet');
  chart(c, 'latency', 'Latency p99 (ms)', series(), [mx].concat(perVersion('latencyP99Ms')), (v) => v + ' ms', null,
    'no measurement yet (latency comes from Envoy\\'s metrics service)');
  chart(c, 'requests', 'Requests per window', series(), [mx].concat(perVersion('requests')), (v) => String(v), null, 'no measurement yet');
}
window.addEventListener('resize', () => {
  for (const c of cards.values()) for (const name in c.charts) {
    const el = c.el.querySelector('[data-chart="' + name + '"]');
    c.charts[name].plot.setSize({ width: Math.max(280, el.clientWidth), height: 150 });
  }
});

// ---- actions -------------------------------------------------------------------------------
async function act(service, action, body) {
  try {
    const r = await api('POST', '/v1/rollouts/' + encodeURIComponent(service) + '/' + action, body);
    rollouts.set(r.service, r);
    renderRollout(r);
    showError(null);
  } catch (err) { showError(err); }
}
document.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-action]');
  if (!b) return;
  const service = b.closest('.rollout').dataset.service;
  if (b.dataset.action !== 'rollback') return act(service, b.dataset.action, {});
  const r = rollouts.get(service);
  $('rb-service').textContent = service;
  $('rb-stable').textContent = r ? r.stable : 'stable';
  $('rb-reason').value = '';
  const dialog = $('rollback-dialog');
  dialog.dataset.service = service;
  dialog.returnValue = '';
  dialog.showModal();
});
$('rollback-dialog').addEventListener('close', () => {
  const dialog = $('rollback-dialog');
  if (dialog.returnValue !== 'confirm') return;
  act(dialog.dataset.service, 'rollback', { reason: $('rb-reason').value.trim() || 'rolled back from the dashboard' });
});

// ---- services ------------------------------------------------------------------------------
let servicesTimer = null;
function loadServices() {
  clearTimeout(servicesTimer);
  servicesTimer = setTimeout(async () => {
    try {
      const { services } = await api('GET', '/v1/services');
      document.querySelector('#services tbody').innerHTML = services.map((s) => '<tr><td>' + esc(s.name) + '</td><td>' + esc(s.stable) + '</td><td>'
        + Object.entries(s.versions).map((e) => esc(e[0]) + ' <span class="muted">(' + e[1].endpoints.length + ' endpoints)</span>').join(', ') + '</td><td>'
        + (s.status.published ? '<span class="good">yes</span>' : '<span class="bad">' + esc(s.status.problem || 'no') + '</span>') + '</td></tr>').join('')
        || '<tr><td colspan="4" class="muted">no services: PUT /v1/services/{name} or sluice apply -f</td></tr>';
    } catch (err) { showError(err); }
  }, 100);
}

// ---- fleet ---------------------------------------------------------------------------------
function renderFleet(s) {
  const count = (n, label, cls) => '<div class="count"><b class="' + (cls || '') + '">' + n + '</b><span>' + label + '</span></div>';
  $('fleet-counts').innerHTML = count(s.nodes, 'nodes') + count(s.byState.synced, 'synced', 'good') + count(s.byState.stale, 'stale', s.byState.stale ? 'STALE' : '') + count(s.byState.nacked, 'NACKed', s.byState.nacked ? 'bad' : '') + count(s.streams, 'streams');
  document.querySelector('#fleet-types tbody').innerHTML = Object.entries(s.byType).map((e) => '<tr><td>' + e[0] + '</td><td class="good">' + e[1].synced + '</td><td>' + e[1].stale + '</td><td class="' + (e[1].nacked ? 'bad' : '') + '">' + e[1].nacked + '</td><td class="muted">' + e[1].notSent + '</td></tr>').join('');
  const agents = Object.entries(s.byUserAgent);
  $('fleet-at').textContent = agents.length ? 'agents: ' + agents.map((e) => e[0] + ' ' + e[1]).join(', ') : '';
}
const TYPES = [['LDS', 'Listener'], ['RDS', 'RouteConfiguration'], ['CDS', 'Cluster'], ['EDS', 'ClusterLoadAssignment']];
function syncState(n, type) {
  const url = Object.keys(n.types).find((u) => u.endsWith('.' + type));
  const t = url && n.types[url];
  if (!t) return '-';
  if (!t.sentVersion) return 'NOT SENT';
  if (t.ackedVersion === t.sentVersion) return 'SYNCED';
  if (t.lastNack && t.lastNack.version === t.sentVersion) return 'NACKED';
  return 'STALE';
}
function loadNodes() {
  clearTimeout(nodesView.timer);
  nodesView.timer = setTimeout(async () => {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(nodesView.offset) });
    if (nodesView.filter) q.set('filter', nodesView.filter);
    if (nodesView.state) q.set('state', nodesView.state);
    try {
      const page = await api('GET', '/v1/fleet?' + q);
      nodesView.total = page.total;
      if (page.nodes.length === 0 && nodesView.offset > 0 && page.total > 0) { nodesView.offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE); return loadNodes(); }
      $('nodes-total').textContent = page.total + (nodesView.filter || nodesView.state ? ' matching' : '');
      $('nodes-page').textContent = page.total ? (page.offset + 1) + '–' + (page.offset + page.nodes.length) + ' of ' + page.total : '';
      $('nodes-prev').disabled = page.offset === 0;
      $('nodes-next').disabled = page.offset + page.nodes.length >= page.total;
      document.querySelector('#nodes tbody').innerHTML = page.nodes.map((n) => {
        const nacks = TYPES.filter((t) => syncState(n, t[1]) === 'NACKED').map((t) => { const u = Object.keys(n.types).find((x) => x.endsWith('.' + t[1])); return t[0] + ': ' + n.types[u].lastNack.message; });
        return '<tr><td>' + esc(n.id) + '</td><td>' + esc(n.cluster || '–') + '</td><td class="muted">' + esc(n.userAgent) + '</td>'
          + TYPES.map((t) => { const s = syncState(n, t[1]); return '<td class="' + s.replace(' ', '') + '">' + s + '</td>'; }).join('')
          + '<td class="muted">' + esc(time(n.connectedSince)) + '</td><td class="bad">' + esc(nacks.join(' | ')) + '</td></tr>';
      }).join('') || '<tr><td colspan="9" class="muted">' + (nodesView.filter || nodesView.state ? 'no node matches' : 'no xDS nodes connected') + '</td></tr>';
    } catch (err) { showError(err); }
  }, 150);
}
$('node-filter').addEventListener('input', (e) => { nodesView.filter = e.target.value.trim(); nodesView.offset = 0; loadNodes(); });
$('node-state').addEventListener('change', (e) => { nodesView.state = e.target.value; nodesView.offset = 0; loadNodes(); });
$('nodes-prev').addEventListener('click', () => { nodesView.offset = Math.max(0, nodesView.offset - PAGE); loadNodes(); });
$('nodes-next').addEventListener('click', () => { nodesView.offset += PAGE; loadNodes(); });

start();
`;
