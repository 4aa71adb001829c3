// The web dashboard: one page (no build step) that reads the REST API and the server-sent events
// stream; its script is dashboard-script.ts and its charts are uPlot, both served by Sluice
// (GET /assets/...): no CDN, it works offline. With tokens configured it asks for a token once,
// exchanges it for an HttpOnly session cookie (POST /v1/session) and forgets it: the page never
// stores a token, and the cookie also authenticates the event stream. Viewers get no buttons.
export const DASHBOARD_HTML = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice</title>
<link rel="stylesheet" href="/assets/uPlot.min.css">
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2330; background: #f3f4f7; --stable: #3b82f6; --canary: #f59e0b; --bad: #b91c1c; --good: #15803d; --warn: #b45309; --muted: #6b7280; }
  body { margin: 0; }
  header { background: #1d2330; color: #fff; padding: 10px 24px; display: flex; gap: 16px; align-items: center; }
  header h1 { margin: 0; font-size: 20px; letter-spacing: .5px; }
  header .tag { opacity: .7; font-size: 13px; }
  #live { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #374151; }
  #live.on { background: #166534; }
  #who { margin-left: auto; font-size: 13px; opacity: .85; }
  main { padding: 16px 24px; display: grid; gap: 16px; max-width: 1400px; margin: 0 auto; }
  section.panel { background: #fff; border-radius: 8px; padding: 14px 18px; box-shadow: 0 1px 2px #0002; }
  h2 { font-size: 15px; margin: 0 0 10px; display: flex; gap: 8px; align-items: baseline; }
  h2 .muted { font-weight: normal; }
  h3 { font-size: 13px; margin: 12px 0 6px; color: #374151; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
  th { font-weight: 600; color: #374151; }
  .muted { color: var(--muted); }
  .bad, .Failed, .NACKED { color: var(--bad); } .good, .Successful, .SYNCED { color: var(--good); } .Inconclusive, .STALE { color: var(--warn); }
  .phase { font-weight: 600; padding: 1px 8px; border-radius: 10px; font-size: 12px; }
  .phase.Progressing { background: #dbeafe; color: #1e40af; } .phase.Paused { background: #fef3c7; color: #92400e; }
  .phase.Promoted { background: #dcfce7; color: #166534; } .phase.RolledBack { background: #fee2e2; color: #991b1b; }
  .rollout { border: 1px solid #e5e7eb; border-radius: 8px; padding: 12px 14px; margin-bottom: 12px; }
  .rollout-head { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
  .rollout-head .name { font-size: 16px; font-weight: 600; }
  .actions { margin-left: auto; display: flex; gap: 6px; }
  button { font-size: 12px; padding: 4px 10px; border-radius: 5px; border: 1px solid #cbd5e1; background: #fff; cursor: pointer; }
  button:hover { background: #f1f5f9; }
  button.danger { border-color: #fca5a5; color: var(--bad); }
  button.danger.solid { background: var(--bad); color: #fff; border-color: var(--bad); }
  .bar { display: flex; height: 14px; width: 240px; border-radius: 3px; overflow: hidden; background: #e5e7eb; }
  .bar .stable { background: var(--stable); } .bar .canary { background: var(--canary); }
  .steps { display: flex; gap: 4px; flex-wrap: wrap; margin: 10px 0 4px; padding: 0; list-style: none; }
  .steps li { font-size: 12px; padding: 3px 9px; border-radius: 12px; background: #f1f5f9; color: var(--muted); border: 1px solid transparent; }
  .steps li.done { background: #e0f2fe; color: #075985; }
  .steps li.done::before { content: "✓ "; }
  .steps li.current { background: #fff7ed; color: #9a3412; border-color: var(--canary); font-weight: 600; }
  .steps li.current::before { content: "▶ "; }
  .status-line { font-size: 12px; color: #374151; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 10px; margin-top: 8px; }
  .chart { min-height: 150px; } .chart .title { font-size: 12px; font-weight: 600; color: #374151; }
  .chart .empty { font-size: 12px; color: var(--muted); padding: 30px 0; text-align: center; border: 1px dashed #e5e7eb; border-radius: 6px; }
  .cols { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
  details summary { cursor: pointer; font-size: 13px; color: #374151; margin-top: 8px; }
  .counts { display: flex; gap: 10px; flex-wrap: wrap; margin-bottom: 10px; }
  .count { border: 1px solid #e5e7eb; border-radius: 6px; padding: 6px 12px; min-width: 90px; }
  .count b { display: block; font-size: 20px; } .count span { font-size: 12px; color: var(--muted); }
  .toolbar { display: flex; gap: 8px; align-items: center; margin: 8px 0; font-size: 13px; }
  #error { color: var(--bad); } #error:empty { display: none; }
  .u-legend { font-size: 12px; } .analysis { font-size: 13px; }
  #signin { display: flex; gap: 8px; align-items: center; } #signin input { width: 28em; }
  dialog { border: none; border-radius: 8px; box-shadow: 0 10px 30px #0004; padding: 18px 20px; width: 420px; }
  dialog textarea { width: 100%; box-sizing: border-box; font: inherit; min-height: 60px; }
  dialog .row { display: flex; gap: 8px; justify-content: flex-end; margin-top: 12px; }
  [hidden] { display: none !important; }
  @media (max-width: 900px) { .cols { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header><h1>Sluice</h1><span class="tag">gray releases for Envoy and proxyless gRPC</span><span id="live">connecting…</span><span id="who"></span><button id="signout" hidden>sign out</button></header>
<main>
  <div id="error" role="alert"></div>
  <section class="panel" id="signin-box" hidden><h2>Sign in</h2><form id="signin"><label>API token <input id="token" type="password" autocomplete="current-password" required></label><button type="submit">sign in</button><span class="muted">kept as a session cookie for this browser (1 h idle, 12 h at most)</span></form></section>
  <section class="panel data" id="rollouts-panel"><h2>Rollouts</h2><div id="rollouts"><p class="muted">no rollouts yet: POST /v1/rollouts, or sluice apply -f</p></div></section>
  <div class="cols">
    <section class="panel data"><h2>Services</h2><table id="services"><thead><tr><th>service</th><th>stable</th><th>versions</th><th>published</th></tr></thead><tbody></tbody></table></section>
    <section class="panel data" id="fleet-panel"><h2>Fleet <span class="muted" id="fleet-at"></span></h2>
      <div class="counts" id="fleet-counts"></div>
      <table id="fleet-types"><thead><tr><th>type</th><th>synced</th><th>stale</th><th>NACKed</th><th>not sent</th></tr></thead><tbody></tbody></table>
    </section>
  </div>
  <section class="panel data" id="nodes-panel"><h2>Nodes <span class="muted" id="nodes-total"></span></h2>
    <div class="toolbar"><input id="node-filter" type="search" placeholder="filter: node id, cluster or agent" size="32"><select id="node-state"><option value="">any state</option><option value="nacked">NACKed</option><option value="stale">stale</option><option value="synced">synced</option></select><button id="nodes-prev">‹ prev</button><span id="nodes-page" class="muted"></span><button id="nodes-next">next ›</button></div>
    <table id="nodes"><thead><tr><th>node</th><th>cluster</th><th>agent</th><th>LDS</th><th>RDS</th><th>CDS</th><th>EDS</th><th>connected since</th><th>NACK</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<dialog id="rollback-dialog"><form method="dialog" id="rollback-form">
  <h2>Roll back <span id="rb-service"></span>?</h2>
  <p>All traffic goes to <b id="rb-stable"></b> at once, header routes are dropped, and the rollout ends. This cannot be undone (start a new rollout to try again).</p>
  <label>Reason (recorded in history, sent to webhooks)<textarea id="rb-reason" required maxlength="1000" placeholder="e.g. p99 up after 20%"></textarea></label>
  <div class="row"><button value="cancel" formnovalidate>cancel</button><button value="confirm" class="danger solid" id="rb-confirm">roll back</button></div>
</form></dialog>
<script src="/assets/uPlot.iife.min.js"></script>
<script src="/assets/dashboard.js"></script>
</body>
</html>
`;
