// Analysis end to end: real Sluice, real gRPC backends, real @grpc/grpc-js-xds client processes
// that report their load (LRS) to Sluice. A canary that starts failing is rolled back by
// itself, a healthy one is promoted, a quiet one pauses for a human; webhooks tell about it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/demo/backend.js';
import { startBackend } from '../../src/demo/backend.js';
import type { XdsClient } from '../../src/demo/xds-client.js';
import { spawnPythonXdsClient, spawnXdsClient } from '../../src/demo/xds-client.js';
import type { HistoryEntry, Measurement, RolloutState } from '../../src/model/rollout.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice, serviceOf } from '../support/sluice.js';
import { hasPythonGrpc } from '../support/python.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('analysis with grpc-js-xds clients reporting load', () => {
  let sluice: TestSluice;
  let v1: Backend;
  let v2: Backend;
  let hooks: http.Server;
  const received: { type: string; by: string; reason: string }[] = [];
  const clients: XdsClient[] = [];
  let traffic = true;
  let loops: Promise<void>[] = [];

  const rollout = async () => (await sluice.api<RolloutState>('GET', '/v1/rollouts/echo')).body;
  const last = (r: RolloutState, event: string) => r.history.filter((h) => h.event === event).at(-1) as HistoryEntry | undefined;

  beforeAll(async () => {
    hooks = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.end();
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook`;
    sluice = await startTestSluice({ lrsInterval: '1s', webhookUrl: hookUrl });
    [v1, v2] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);
    expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: v1.port, v2: v2.port }))).status).toBe(201);
    clients.push(...(await Promise.all(['a-1', 'a-2'].map((nodeId) => spawnXdsClient({ nodeId, xdsPort: sluice.xdsPort })))));
    for (const c of clients) await eventually(async () => (await c.call('echo', 1)).versions.v1 === 1, 15_000, 100);
    // Steady traffic from every client for the whole suite: a few hundred calls a second.
    loops = clients.map(async (c) => {
      while (traffic) {
        await c.call('echo', 20);
        await sleep(25);
      }
    });
  });

  afterAll(async () => {
    traffic = false;
    await Promise.all(loops);
    await Promise.all(clients.map((c) => c.stop()));
    await Promise.all([v1?.stop(), v2?.stop()]);
    await sluice?.stop();
    await new Promise((r) => hooks?.close(r));
  });

  it('clients report their load to Sluice', async () => {
    const windows = sluice.telemetry.windows;
    const seen = await eventually(() => {
      const w = windows.query('echo-v1', Date.now() - 3000, Date.now());
      return w.requests > 100 && w.nodes === 2 ? w : undefined;
    }, 10_000, 200);
    expect(seen.errors).toBe(0);
  });

  it('a quiet canary is inconclusive, and the rollout pauses for a human', async () => {
    const created = await sluice.api('POST', '/v1/rollouts', {
      service: 'echo',
      canary: 'v2',
      steps: [{ setWeight: 1 }, { pause: { duration: '1h' } }],
      analysis: { interval: '1s', minRequests: 200, inconclusiveLimit: 1, metrics: [{ name: 'success', successRate: { min: 0.95 } }] },
    });
    expect(created.status).toBe(201);
    const paused = await eventually(async () => {
      const r = await rollout();
      return r.phase === 'Paused' ? r : undefined;
    }, 15_000, 100);
    expect(paused.pausedBy).toBe('analysis');
    expect(paused.pauseRemainingMs).toBeGreaterThan(0); // the timed pause is frozen, not lost
    expect(last(paused, 'PausedByAnalysis')).toMatchObject({ by: 'analysis' });
    const inconclusive = paused.analysis!.measurements.filter((m) => m.phase === 'Inconclusive');
    expect(inconclusive.length).toBeGreaterThanOrEqual(2);
    expect(inconclusive[0]!.metrics[0]!.message).toMatch(/fewer than minRequests 200/);
    console.log(`quiet canary: paused after ${inconclusive.length} inconclusive windows; ${inconclusive[0]!.metrics[0]!.message}`);
    expect((await sluice.api('POST', '/v1/rollouts/echo/rollback', { reason: 'too quiet to judge' })).status).toBe(200);
  });

  it('a canary that starts failing 30% of calls is rolled back by analysis within two intervals', async () => {
    const intervalMs = 2000;
    const created = await sluice.api('POST', '/v1/rollouts', {
      service: 'echo',
      canary: 'v2',
      steps: [{ setWeight: 50 }, { pause: {} }],
      analysis: { interval: '2s', minRequests: 50, inconclusiveLimit: 5, metrics: [{ name: 'success', successRate: { min: 0.95 } }] },
    });
    expect(created.status).toBe(201);
    // Healthy first: at least one successful window with the canary at 50%.
    await eventually(async () => (await rollout()).analysis?.measurements.some((m) => m.phase === 'Successful'), 15_000, 100);

    v2.configure({ errorRate: 0.3 });
    const failingSince = Date.now();
    const rolledBack = await eventually(async () => {
      const r = await rollout();
      return r.phase === 'RolledBack' ? r : undefined;
    }, 15_000, 20);
    const detectedMs = Date.parse(last(rolledBack, 'RolledBack')!.at) - failingSince;
    // Every client routes all calls to stable again.
    await Promise.all(clients.map((c) => eventually(async () => (await c.call('echo', 10)).versions.v1 === 10, 5000, 10)));
    const stableMs = Date.now() - failingSince;
    console.log(
      `failing canary: rolled back ${detectedMs} ms after it started failing (analysis interval ${intervalMs} ms, load reports every 1000 ms); ` +
        `fleet back on stable after ${stableMs} ms`,
    );
    expect(detectedMs).toBeLessThanOrEqual(2 * intervalMs);

    const entry = last(rolledBack, 'RolledBack')!;
    expect(entry.by).toBe('analysis');
    expect(entry.reason).toMatch(/canary success rate 0\.\d{4} < min 0\.95 \(\d+ canary requests\)/);
    const failed = rolledBack.analysis!.measurements.filter((m: Measurement) => m.phase === 'Failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.metrics[0]!.value).toBeLessThan(0.95);
    expect(rolledBack.weights).toEqual({ v1: 100, v2: 0 });
    // The webhook told about it (fire and forget, so it may land a moment later).
    await eventually(() => received.some((e) => e.type === 'RolledBack' && e.by === 'analysis'), 5000);
    // Reports count when they arrive and cover the interval before: let the last failing
    // report come in before the next rollout's windows open.
    v2.configure({ errorRate: 0 });
    await eventually(() => sluice.telemetry.windows.query('echo-v2', Date.now() - 1500, Date.now()).requests === 0, 5000, 100);
  });

  it('a healthy canary passes its analysis step and is promoted', async () => {
    const created = await sluice.api('POST', '/v1/rollouts', {
      service: 'echo',
      canary: 'v2',
      steps: [
        { setWeight: 50 },
        {
          analysis: {
            interval: '1s',
            count: 2,
            minRequests: 50,
            // Quiet windows are not what this test is about: on a loaded machine a 1 s window can
            // hold fewer than 50 canary calls, and one inconclusive window would pause for a human.
            inconclusiveLimit: 5,
            metrics: [
              { name: 'success', successRate: { min: 0.99 } },
              { name: 'vs-stable', successRateDrop: { max: 0.01 } },
            ],
          },
        },
      ],
    });
    expect(created.status).toBe(201);
    const promoted = await eventually(async () => {
      const r = await rollout();
      return r.phase !== 'Progressing' ? r : undefined;
    }, 20_000, 100);
    expect(promoted.phase, JSON.stringify(promoted.history.at(-1))).toBe('Promoted');
    const passed = promoted.analysis!.measurements.filter((m) => m.run === 'step 1' && m.phase === 'Successful');
    expect(passed.length).toBeGreaterThanOrEqual(2);
    expect(passed[0]!.metrics.map((m) => [m.name, m.value])).toEqual([
      ['success', 1],
      ['vs-stable', 0],
    ]);
    expect(passed[0]!.requests.v2).toBeGreaterThanOrEqual(50);
    expect(last(promoted, 'StepCompleted')?.reason).toMatch(/analysis passed/);
    await eventually(() => received.some((e) => e.type === 'Promoted'), 5000);
  });

  it('exposes fleet, push and rollout metrics at /metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${sluice.httpPort}/metrics`);
    const text = await res.text();
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    expect(text).toMatch(/^sluice_xds_connected_nodes 2$/m);
    expect(text).toMatch(/^sluice_xds_acks_total\{type="RouteConfiguration"\} \d+/m);
    expect(text).toMatch(/^sluice_xds_push_ack_seconds_count\{type="RouteConfiguration"\} [1-9]\d*$/m);
    expect(text).toMatch(/^sluice_telemetry_reports_total\{source="lrs"\} [1-9]\d*$/m);
    expect(text).toMatch(/^sluice_telemetry_clusters 2$/m);
    expect(text).toMatch(/^sluice_rollout_phase\{service="echo",phase="Promoted"\} 1$/m);
    expect(text).toMatch(/^sluice_analysis_success_ratio\{service="echo",metric="success"\} 1$/m);
  });
});

describe.runIf(hasPythonGrpc())('load reports from gRPC C-core (python3-grpcio) clients', () => {
  it('count successes and errors per cluster the same way', async () => {
    const sluice = await startTestSluice({ lrsInterval: '1s' });
    const v1 = await startBackend({ version: 'v1' });
    const client = await spawnPythonXdsClient({ nodeId: 'py-1', xdsPort: sluice.xdsPort });
    try {
      await sluice.api('PUT', '/v1/services/echo', { versions: { v1: { endpoints: [{ address: '127.0.0.1', port: v1.port }] } }, stable: 'v1' });
      const since = Date.now();
      const seen = () => sluice.telemetry.windows.query('echo-v1', since, Date.now() + 1000);
      await eventually(async () => (await client.call('echo', 1)).versions.v1 === 1, 15_000, 100);
      // The warm-up calls that reached the cluster have been reported once a report came in after them.
      const before = (await eventually(() => seen().requests > 0 && seen(), 5000, 100)).requests;
      v1.configure({ errorRate: 0.3 });
      const sent = await client.call('echo', 300);
      const errors = Object.values(sent.errors).reduce((a, b) => a + b, 0);
      const w = await eventually(() => (seen().requests >= before + 300 ? seen() : undefined), 10_000, 200);
      expect(w).toMatchObject({ requests: before + 300, errors, nodes: 1 });
      expect(errors / 300).toBeGreaterThan(0.15);
    } finally {
      await client.stop();
      await v1.stop();
      await sluice.stop();
    }
  });
});
