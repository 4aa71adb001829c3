// The dashboard in a real browser: Debian's Chromium driven by playwright-core (no browser
// download), against a real Sluice with real gRPC backends and proxyless gRPC clients that
// send traffic and load reports, and an Envoy edge (ADS + metrics service, envoy-edge.ts) that
// reports latency, so the page shows what an operator would see: a rollout in
// progress with its steps, weights and analysis charts, the fleet, and a rollback confirmed in a
// dialog that updates the page without a reload. A viewer gets no action at all.
// Without /usr/bin/chromium (scripts/install-test-deps.sh installs it) the suite is skipped
// with a message, except in CI (CI set), where a missing browser fails.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/model/rollout.js';
import type { Backend } from '../../src/demo/backend.js';
import { startBackend } from '../../src/demo/backend.js';
import type { XdsClient } from '../../src/demo/xds-client.js';
import { spawnXdsClient } from '../../src/demo/xds-client.js';
import { call, roleTokensFile, TOKENS } from '../api/access-fixtures.js';
import { startEnvoyEdge } from './envoy-edge.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';

const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium';
/** Flags for this machine: no sandbox as root, and no background connections to the outside. */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Where the screenshots go (docs/dashboard.png is one of them, committed by hand). */
const SHOTS = process.env.SLUICE_SCREENSHOT_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-dashboard-'));

const haveBrowser = fs.existsSync(CHROMIUM);
if (!haveBrowser && process.env.CI) throw new Error(`${CHROMIUM} is missing: scripts/install-test-deps.sh installs Debian's chromium, which CI needs for the dashboard tests`);
if (!haveBrowser) console.warn(`dashboard browser tests skipped: ${CHROMIUM} not found (scripts/install-test-deps.sh installs chromium)`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!haveBrowser)('dashboard in Chromium', () => {
  let sluice: TestSluice;
  let browser: Browser;
  let backends: Backend[] = [];
  let clients: XdsClient[] = [];
  let traffic = true;
  let loops: Promise<void>[] = [];
  let edge: { stop(): Promise<void> } | undefined;
  const as = (role: 'viewer' | 'operator' | 'admin') => ({ token: TOKENS[role] });
  const rollout = async (): Promise<RolloutState> => (await call(sluice.httpPort, 'GET', '/v1/rollouts/echo', as('viewer'))).body;

  beforeAll(async () => {
    sluice = await startTestSluice({ apiTokens: roleTokensFile(), lrsInterval: '1s' });
    backends = await Promise.all([startBackend({ version: 'v1', latencyMs: 2 }), startBackend({ version: 'v2', latencyMs: 6, errorRate: 0.01 })]);
    const put = await call(sluice.httpPort, 'PUT', '/v1/services/echo', { ...as('admin'), body: serviceOf({ v1: backends[0]!.port, v2: backends[1]!.port }) });
    expect(put.status).toBe(201);
    clients = await Promise.all(['checkout-7f9c', 'cart-2b1d', 'search-5e8a'].map((nodeId) => spawnXdsClient({ nodeId, xdsPort: sluice.xdsPort })));
    for (const c of clients) await eventually(async () => (await c.call('echo', 1)).versions.v1 === 1, 20_000, 100);
    const weightOf = (version: string) => () => {
      const r = sluice.state.state.rollouts.get('echo');
      return r ? (r.weights[version] ?? 0) : version === 'v1' ? 100 : 0;
    };
    edge = await startEnvoyEdge(sluice.xdsPort, 'edge-envoy-1', [
      { cluster: 'echo-v1', weight: weightOf('v1'), latencyMs: 12, errorRate: 0 },
      { cluster: 'echo-v2', weight: weightOf('v2'), latencyMs: 20, errorRate: 0.005 },
    ]);
    loops = clients.map(async (c) => {
      while (traffic) {
        await c.call('echo', 10).catch(() => undefined);
        await sleep(40);
      }
    });
    const created = await call(sluice.httpPort, 'POST', '/v1/rollouts', {
      ...as('operator'),
      body: {
        service: 'echo',
        canary: 'v2',
        steps: [{ setWeight: 10 }, { pause: { duration: '6s' } }, { setWeight: 30 }, { pause: { duration: '6s' } }, { setWeight: 50 }, { pause: {} }, { setWeight: 100 }],
        headerRoutes: [{ name: 'testers', match: [{ header: 'x-canary', exact: 'true' }] }],
        analysis: {
          interval: '2s',
          minRequests: 10,
          inconclusiveLimit: 20,
          failureLimit: 3,
          // Proxyless gRPC clients report calls and errors (LRS), not latency: Envoy does that.
          metrics: [
            { name: 'success', successRate: { min: 0.9 } },
            { name: 'drop', successRateDrop: { max: 0.05 } },
            { name: 'p99', latencyP99: { maxMs: 250 } },
            { name: 'p99-rise', latencyRise: { maxMs: 100 } },
          ],
        },
      },
    });
    expect(created.status).toBe(201);
    // A rollout well under way: at the manual pause at 50%, with measurements to chart.
    await eventually(async () => {
      const r = await rollout();
      return r.phase === 'Paused' && r.step === 5 && (r.analysis?.measurements.filter((m) => m.phase === 'Successful').length ?? 0) >= 2;
    }, 60_000, 250);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS }); // a fresh profile each launch
  }, 120_000);

  afterAll(async () => {
    traffic = false;
    await Promise.all(loops);
    await edge?.stop();
    await browser?.close();
    await Promise.all(clients.map((c) => c.stop()));
    await Promise.all(backends.map((b) => b.stop()));
    await sluice?.stop();
  });

  async function signIn(role: 'viewer' | 'operator'): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('requestfailed', (req) => {
      // The event stream is cut when the page closes; nothing else may fail (no CDN: no outside request at all).
      if (!req.url().endsWith('/v1/events')) errors.push(`${req.url()}: ${req.failure()?.errorText}`);
    });
    await page.goto(`http://127.0.0.1:${sluice.httpPort}/`);
    await page.locator('#token').fill(TOKENS[role]);
    await page.locator('#signin button[type=submit]').click();
    await page.locator('#who').getByText(`(${role})`).waitFor();
    Object.assign(page, { errors });
    return page;
  }
  const errorsOf = (page: Page) => (page as Page & { errors: string[] }).errors;

  it('shows a running rollout: steps with the current one marked, weight and analysis charts, history, the fleet', async () => {
    const page = await signIn('operator');
    const card = page.locator('.rollout[data-service="echo"]');
    await card.locator('.phase.Paused').waitFor();
    expect(await card.locator('.name').textContent()).toBe('echo');
    expect(await card.locator('.steps li').allTextContents()).toEqual(['10%', 'pause 6s', '30%', 'pause 6s', '50%', 'pause (manual)', '100%']);
    expect(await card.locator('.steps li.done').count()).toBe(5);
    expect(await card.locator('.steps li.current').textContent()).toBe('pause (manual)');
    expect(await card.locator('.weights').textContent()).toContain('v1 50% · v2 50%');
    // uPlot draws into a canvas per chart; the legends name the series.
    for (const chart of ['weights', 'success', 'latency', 'requests']) await card.locator(`[data-chart="${chart}"] canvas`).first().waitFor();
    expect(await card.locator('[data-chart="weights"] .u-legend').textContent()).toContain('v2 (canary)');
    // Success rate, p99 and requests per window: each version beside the other.
    for (const chart of ['success', 'latency', 'requests']) expect(await card.locator(`[data-chart="${chart}"] .u-legend`).textContent()).toMatch(/v1 \(stable\).*v2 \(canary\)/);
    // What the charts draw: the edge Envoy answers v1 in 12 ms and v2 in 20 ms, and its metrics service says so.
    const measured = (await rollout()).analysis!.measurements.filter((m) => m.versions?.v1?.latencyP99Ms != null && m.versions?.v2?.latencyP99Ms != null);
    expect(measured.length).toBeGreaterThan(0);
    for (const m of measured) {
      expect(m.versions!.v2!.latencyP99Ms!).toBeGreaterThan(m.versions!.v1!.latencyP99Ms!);
      for (const v of ['v1', 'v2']) expect(m.versions![v]!.successRate).toBeGreaterThan(0.9);
    }
    expect(await card.locator('.analysis').textContent()).toMatch(/background: \d+ ✓/);
    expect(await card.locator('.history tbody tr').count()).toBeGreaterThan(8);
    // The fleet: counts from the summary, one page of nodes.
    await page.locator('#fleet-counts').getByText('nodes').waitFor();
    await eventually(async () => (await page.locator('#nodes tbody tr').count()) === 4);
    expect(await page.locator('#nodes tbody').textContent()).toContain('checkout-7f9c');
    expect(await page.locator('#nodes tbody').textContent()).toContain('edge-envoy-1');
    expect(await page.locator('#fleet-at').textContent()).toContain('envoy 1');
    await page.locator('#node-filter').fill('cart');
    await eventually(async () => (await page.locator('#nodes tbody tr').count()) === 1);
    expect(await page.locator('#nodes-total').textContent()).toBe('1 matching');
    await page.locator('#node-filter').fill('');
    await eventually(async () => (await page.locator('#nodes tbody tr').count()) === 4);
    const shot = path.join(SHOTS, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`dashboard screenshot: ${shot}`);
    expect(errorsOf(page)).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('rolls back after a confirmation with a reason, and the page follows without a reload', async () => {
    const page = await signIn('operator');
    const card = page.locator('.rollout[data-service="echo"]');
    await card.locator('.phase.Paused').waitFor();
    await page.evaluate(() => Object.assign(window, { sameDocument: true }));
    // Cancelling changes nothing.
    await card.locator('button[data-action="rollback"]').click();
    await page.locator('#rollback-dialog').waitFor({ state: 'visible' });
    expect(await page.locator('#rb-stable').textContent()).toBe('v1');
    await page.locator('#rollback-dialog button[value="cancel"]').click();
    await page.locator('#rollback-dialog').waitFor({ state: 'hidden' });
    expect((await rollout()).phase).toBe('Paused');
    // Confirming rolls back, with the reason in history.
    await card.locator('button[data-action="rollback"]').click();
    await page.locator('#rb-reason').fill('p99 up on checkout');
    await page.locator('#rb-confirm').click();
    await card.locator('.phase.RolledBack').waitFor();
    expect(await card.locator('.weights').textContent()).toContain('v1 100% · v2 0%');
    expect(await card.locator('.history tbody tr').first().textContent()).toContain('p99 up on checkout');
    expect(await card.locator('button[data-action]').count()).toBe(0); // nothing left to do
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
    const r = await rollout();
    expect(r.phase).toBe('RolledBack');
    expect(r.history.at(-1)).toMatchObject({ event: 'RolledBack', by: 'otto', reason: 'p99 up on checkout' });
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-rolled-back.png'), fullPage: true });
    expect(errorsOf(page)).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('gives a viewer no action, and the server refuses one anyway', async () => {
    // A new rollout, so there would be something to act on.
    await call(sluice.httpPort, 'DELETE', '/v1/rollouts/echo', as('operator'));
    const created = await call(sluice.httpPort, 'POST', '/v1/rollouts', { ...as('operator'), body: { service: 'echo', canary: 'v2', steps: [{ setWeight: 20 }, { pause: {} }] } });
    expect(created.status).toBe(201);
    const page = await signIn('viewer');
    const card = page.locator('.rollout[data-service="echo"]');
    await card.locator('.phase.Paused').waitFor();
    expect(await page.locator('button[data-action]').count()).toBe(0);
    const status = await page.evaluate(async () => {
      const res = await fetch('/v1/rollouts/echo/rollback', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reason":"viewer"}' });
      return res.status;
    });
    expect(status).toBe(403);
    expect((await rollout()).phase).toBe('Paused');
    await page.context().close();
  }, 60_000);
});
