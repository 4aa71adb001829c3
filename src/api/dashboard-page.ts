// The web dashboard: one self-contained page (no build step) that reads the REST API and the
// server-sent events stream. Served at GET /. With tokens configured it asks for a token once,
// exchanges it for an HttpOnly session cookie (POST /v1/session) and forgets it: the page never
// stores a token, and the cookie also authenticates the event stream. Viewers get no buttons.
export const DASHBOARD_HTML = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2330; background: #f6f7f9; }
  body { margin: 0; }
  header { background: #1d2330; color: #fff; padding: 12px 24px; display: flex; gap: 16px; align-items: baseline; }
  header h1 { margin: 0; font-size: 20px; }
  header span { opacity: .7; font-size: 13px; }
  main { padding: 16px 24px; display: grid; gap: 16px; }
  section { background: #fff; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 2px #0001; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
  .bar { display: flex; height: 14px; width: 260px; border-radius: 3px; overflow: hidden; background: #e5e7eb; }
  .bar .stable { background: #60a5fa; } .bar .canary { background: #f59e0b; }
  .phase { font-weight: 600; } .Progressing { color: #2563eb; } .Paused { color: #b45309; }
  .Promoted { color: #15803d; } .RolledBack { color: #b91c1c; }
  .nack, .Failed { color: #b91c1c; } .ok, .Successful { color: #15803d; } .muted { color: #6b7280; } .Inconclusive { color: #b45309; }
  button { font-size: 12px; margin-right: 4px; }
  #error { color: #b91c1c; }
  #who { margin-left: auto; font-size: 13px; opacity: .8; }
  #signin { display: flex; gap: 8px; align-items: center; }
  #signin input { width: 28em; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<header><h1>Sluice</h1><span>gray releases for Envoy and proxyless gRPC</span><span id="live" class="muted">connecting…</span><span id="who"></span><button id="signout" hidden>sign out</button></header>
<main>
  <div id="error"></div>
  <section id="signin-box" hidden><h2>Sign in</h2><form id="signin"><label>API token <input id="token" type="password" autocomplete="current-password" required></label><button type="submit">sign in</button><span class="muted">kept as a session cookie for this browser (1 h idle, 12 h at most)</span></form></section>
  <section class="data"><h2>Rollouts</h2><table id="rollouts"><thead><tr><th>service</th><th>phase</th><th>step</th><th>weights</th><th>analysis</th><th>last event</th><th></th></tr></thead><tbody></tbody></table></section>
  <section class="data"><h2>Services</h2><table id="services"><thead><tr><th>service</th><th>stable</th><th>versions</th><th>domains</th></tr></thead><tbody></tbody></table></section>
  <section class="data"><h2>Fleet</h2><table id="fleet"><thead><tr><th>node</th><th>user agent</th><th>connected since</th><th>resources (ACKed / sent)</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
localStorage.removeItem('sluiceToken'); // older pages kept the token here
let me = null, events = null, timer = null;
const $ = (id) => document.getElementById(id);
async function api(method, path, body) {
  const res = await fetch(path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) { signedOut(); throw new Error('signed out: sign in again'); }
  const json = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(json && json.error ? json.error.message : res.statusText);
  return json;
}
const canAct = () => !!me && (me.role === 'operator' || me.role === 'admin');
function signedIn(who) {
  me = who;
  $('signin-box').hidden = true;
  for (const s of document.querySelectorAll('section.data')) s.hidden = false;
  $('who').textContent = who.via === 'open' ? 'no API tokens: open to this machine' : who.name + ' (' + who.role + ')';
  $('signout').hidden = who.via !== 'session';
  startLive();
}
function signedOut() {
  me = null;
  stopLive();
  $('signin-box').hidden = false;
  for (const s of document.querySelectorAll('section.data')) s.hidden = true;
  $('who').textContent = '';
  $('signout').hidden = true;
  $('live').textContent = 'signed out';
}
async function start() {
  try {
    const res = await fetch('/v1/session');
    if (res.ok) signedIn(await res.json()); else if (res.status === 401) signedOut(); else throw new Error('HTTP ' + res.status);
  } catch (err) { $('error').textContent = String(err.message || err); setTimeout(start, 5000); }
}
function startLive() {
  stopLive();
  events = new EventSource('/v1/events'); // same origin: the session cookie goes along
  events.addEventListener('rollout', (e) => { const r = JSON.parse(e.data); rollouts.set(r.service, r); renderRollouts(); });
  events.onopen = () => { $('live').textContent = 'live'; };
  events.onerror = () => {
    $('live').textContent = 'reconnecting…';
    // The browser retries by itself unless the server refused the stream (e.g. the session ended).
    if (events.readyState === EventSource.CLOSED) { stopLive(); setTimeout(start, 2000); }
  };
  refresh();
  timer = setInterval(refresh, 2000);
}
function stopLive() {
  if (events) events.close();
  events = null;
  clearInterval(timer);
}
$('signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const res = await fetch('/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: $('token').value }) });
  const json = await res.json().catch(() => null);
  $('token').value = '';
  if (!res.ok) { $('error').textContent = json && json.error ? json.error.message : 'sign-in failed'; return; }
  $('error').textContent = '';
  signedIn({ ...json, via: 'session' });
});
$('signout').addEventListener('click', async () => {
  await fetch('/v1/session', { method: 'DELETE' }).catch(() => undefined);
  signedOut();
});
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const rollouts = new Map();
function weightsBar(r) {
  const c = r.weights[r.canary] || 0, s = r.weights[r.stable] || 0;
  return '<div class="bar" title="' + esc(r.stable + ' ' + s + '% / ' + r.canary + ' ' + c + '%') + '"><div class="stable" style="width:' + s + '%"></div><div class="canary" style="width:' + c + '%"></div></div>'
    + '<span class="muted">' + esc(r.stable) + ' ' + s + '% · ' + esc(r.canary) + ' ' + c + '%</span>';
}
function lastMeasurement(r) {
  const m = r.analysis && r.analysis.measurements && r.analysis.measurements[r.analysis.measurements.length - 1];
  if (!m) return '<span class="muted">–</span>';
  return m.metrics.map((x) => '<div class="' + x.phase + '" title="' + esc(m.run + ', window to ' + m.to) + '">' + esc(x.name) + ': ' + esc(x.message) + '</div>').join('');
}
function renderRollouts() {
  const rows = [...rollouts.values()].sort((a, b) => a.service.localeCompare(b.service)).map((r) => {
    const last = r.history[r.history.length - 1] || {};
    const active = r.phase === 'Progressing' || r.phase === 'Paused';
    const buttons = active && canAct() ? ['promote', r.phase === 'Paused' ? 'resume' : 'pause', 'rollback'].map((a) => '<button data-service="' + esc(r.service) + '" data-action="' + a + '">' + a + '</button>').join('') : '';
    return '<tr><td>' + esc(r.service) + '</td><td class="phase ' + r.phase + '">' + r.phase + '</td><td>' + r.step + ' / ' + r.spec.steps.length + '</td><td>' + weightsBar(r) + '</td><td>' + lastMeasurement(r) + '</td><td>' + esc(last.event || '') + ' <span class="muted">by ' + esc(last.by || '') + ': ' + esc(last.reason || '') + '</span></td><td>' + buttons + '</td></tr>';
  });
  document.querySelector('#rollouts tbody').innerHTML = rows.join('') || '<tr><td colspan="7" class="muted">no rollouts yet — POST /v1/rollouts</td></tr>';
}
async function refresh() {
  try {
    const [{ services }, { nodes }, list] = await Promise.all([api('GET', '/v1/services'), api('GET', '/v1/fleet'), api('GET', '/v1/rollouts')]);
    for (const r of list.rollouts) rollouts.set(r.service, r);
    renderRollouts();
    document.querySelector('#services tbody').innerHTML = services.map((s) => '<tr><td>' + esc(s.name) + '</td><td>' + esc(s.stable) + '</td><td>' + Object.entries(s.versions).map(([v, d]) => esc(v) + ' <span class="muted">(' + d.endpoints.length + ' endpoints)</span>').join(', ') + '</td><td class="muted">' + esc((s.domains || [s.name]).join(', ')) + '</td></tr>').join('') || '<tr><td colspan="4" class="muted">no services — PUT /v1/services/{name}</td></tr>';
    document.querySelector('#fleet tbody').innerHTML = nodes.map((n) => '<tr><td>' + esc(n.id) + '</td><td>' + esc(n.userAgent) + '</td><td class="muted">' + esc(n.connectedSince) + '</td><td>' + Object.entries(n.types).map(([t, s]) => {
      const short = t.split('.').pop();
      if (s.lastNack && s.lastNack.version === s.sentVersion) return '<div class="nack">' + esc(short) + ': NACK ' + esc(s.lastNack.message) + '</div>';
      return '<div class="' + (s.ackedVersion === s.sentVersion ? 'ok' : 'muted') + '">' + esc(short) + ' ' + esc(s.ackedVersion || '–') + (s.ackedVersion === s.sentVersion ? '' : ' / ' + esc(s.sentVersion || '–')) + '</div>';
    }).join('') + '</td></tr>').join('') || '<tr><td colspan="4" class="muted">no xDS nodes connected</td></tr>';
    $('error').textContent = '';
  } catch (err) { $('error').textContent = String(err.message || err); }
}
document.addEventListener('click', async (e) => {
  const b = e.target.closest('button[data-action]');
  if (!b) return;
  try { rollouts.set(b.dataset.service, await api('POST', '/v1/rollouts/' + encodeURIComponent(b.dataset.service) + '/' + b.dataset.action, b.dataset.action === 'rollback' ? { reason: 'dashboard' } : {})); renderRollouts(); }
  catch (err) { document.getElementById('error').textContent = String(err.message || err); }
});
start();
</script>
</body>
</html>
`;
