// Analysis of shadow traffic. Envoy counts a mirrored request in the upstream stats of the
// cluster it was copied to, like any other request (RouteAction.RequestMirrorPolicy: "All
// normal statistics are collected for the shadow cluster"), so while a mirror is in force the
// canary's cluster is judged on the copies by the usual metrics. Pure judging first; then a real
// Sluice with an Envoy-flavoured ADS node that applies and ACKs its routes, and that node's
// metrics service stream reporting what it routed and mirrored: a failing shadow is rolled back
// before any user reached the canary, a healthy one passes and the weighted rollout follows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judge } from '../../src/analysis/evaluate.js';
import type { HistoryEntry, RolloutState } from '../../src/model/rollout.js';
import { AnalysisSchema } from '../../src/model/rollout.js';
import type { WindowStats } from '../../src/telemetry/window.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { envoyNode, FakeEnvoy } from '../support/envoy-client.js';
import { EnvoyCluster, envoyMetricsStream } from '../support/envoy-metrics.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice } from '../support/sluice.js';
import type { Json } from '../support/strict-decode.js';

type Obj = { [key: string]: Json };
const list = (v: Json | undefined): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

describe('judging a window while a mirror is in force', () => {
  const win = (successful: number, errors: number): WindowStats => ({ requests: successful + errors, successful, errors, latency: new Map(), nodes: 1 });
  const spec = AnalysisSchema.parse({ interval: '10s', minRequests: 50, metrics: [{ name: 'success', successRate: { min: 0.95 } }] });

  it('uses the same metrics and says the canary’s requests include mirrored copies', () => {
    const [r] = judge(spec, { canary: win(70, 30), stable: win(100, 0), queries: new Map(), mirrorPercent: 100 });
    expect(r).toEqual({ name: 'success', phase: 'Failed', value: 0.7, message: 'canary success rate 0.7000 < min 0.95 (100 canary requests, mirroring 100%)' });
    const [plain] = judge(spec, { canary: win(70, 30), stable: win(100, 0), queries: new Map() });
    expect(plain!.message).toBe('canary success rate 0.7000 < min 0.95 (100 canary requests)');
  });

  it('a quiet shadow is inconclusive, with the reason it often has: no Envoy mirrors', () => {
    const [r] = judge(spec, { canary: win(0, 0), stable: win(1000, 0), queries: new Map(), mirrorPercent: 12.5 });
    expect(r).toMatchObject({
      phase: 'Inconclusive',
      message: 'canary finished 0 requests in the window, fewer than minRequests 50 (mirroring 12.5%: only Envoy nodes mirror)',
    });
  });
});

describe('a shadow phase judged from Envoy’s metrics service', () => {
  const NODE = 'edge-1';
  let sluice: TestSluice;
  let envoy: FakeEnvoy;
  let metrics: ReturnType<typeof envoyMetricsStream>;
  let running = true;
  let acking: Promise<void>;
  let flusher: NodeJS.Timeout;
  const stable = new EnvoyCluster('echo-v1');
  const canary = new EnvoyCluster('echo-v2');
  /** How the canary backend behaves. */
  const v2 = { errorRate: 0, latencyMs: 9 };
  /** User requests answered by each version (what users saw). */
  const answered = { v1: 0, v2: 0 };

  const rollout = async () => (await sluice.api<RolloutState>('GET', '/v1/rollouts/echo')).body;
  const events = (r: RolloutState) => r.history.map((h: HistoryEntry) => h.event);

  /** The default route of echo as the Envoy node holds it now. */
  function heldRoute(): Obj {
    const rc = envoy.held(TypeUrl.RouteConfiguration).get('sluice_http');
    const vh = list(rc?.virtual_hosts).find((v) => v.name === 'echo');
    return (list(vh?.routes).at(-1)?.route ?? {}) as Obj;
  }

  /**
   * 200 ms of the node's traffic: 100 user requests split by the weights its routes hold, plus
   * the copies its mirror policy sends (fire and forget: users never see those answers).
   */
  function serve(): void {
    const route = heldRoute();
    const weighted = list((route.weighted_clusters as Obj | undefined)?.clusters);
    const toCanary = weighted.length ? Number(weighted.find((c) => c.name === 'echo-v2')?.weight ?? 0) : route.cluster === 'echo-v2' ? 100 : 0;
    const policy = list(route.request_mirror_policies)[0];
    const fraction = (policy?.runtime_fraction as Obj | undefined)?.default_value as Obj | undefined;
    const mirrored = policy ? Math.round((100 * Number(fraction?.numerator ?? 100)) / (fraction?.denominator === 'TEN_THOUSAND' ? 10_000 : 100)) : 0;
    const canaryRequests = toCanary + mirrored;
    stable.serve(100 - toCanary, 8);
    canary.serve(canaryRequests, v2.latencyMs, Math.round(canaryRequests * v2.errorRate));
    answered.v1 += 100 - toCanary;
    answered.v2 += toCanary;
    metrics.flush([stable, canary]);
  }

  beforeAll(async () => {
    sluice = await startTestSluice({ lrsInterval: '1s' });
    const service = {
      versions: { v1: { endpoints: [{ address: '10.0.0.11', port: 8000 }] }, v2: { endpoints: [{ address: '10.0.0.12', port: 8000 }] } },
      stable: 'v1',
    };
    expect((await sluice.api('PUT', '/v1/services/echo', service)).status).toBe(201);
    // Changes reach the cache after a short debounce: sync the published service, not an earlier state.
    await sluice.reconciler.whenPublished(sluice.state.state.revision);
    envoy = new FakeEnvoy(sluice.xdsPort, envoyNode(NODE));
    await envoy.syncLikeEnvoy();
    await eventually(() => heldRoute().cluster === 'echo-v1');
    // Like Envoy: apply and ACK every new route configuration, for the whole suite.
    acking = (async () => {
      while (running) await envoy.awaitPush(TypeUrl.RouteConfiguration, 200).catch(() => undefined);
    })();
    metrics = envoyMetricsStream(sluice.xdsPort, NODE);
    metrics.flush([stable, canary]); // the node's baseline
    flusher = setInterval(serve, 200);
  });

  afterAll(async () => {
    running = false;
    clearInterval(flusher);
    await acking;
    await metrics?.end();
    envoy?.close();
    await sluice?.stop();
  });

  const shadowThenWeights = {
    service: 'echo',
    canary: 'v2',
    steps: [
      { setMirror: { percent: 100 } },
      {
        analysis: {
          interval: '1s',
          count: 3,
          minRequests: 50,
          inconclusiveLimit: 5, // a window starved by a busy machine pauses nothing here
          metrics: [
            { name: 'success', successRate: { min: 0.95 } },
            { name: 'vs-stable', successRateDrop: { max: 0.02 } },
            { name: 'slower', latencyRise: { maxMs: 50 } },
          ],
        },
      },
      { setMirror: { percent: 0 } },
      { setWeight: 20 },
      { pause: {} },
    ],
  };

  it('a failing shadow is rolled back by analysis before any user reached the canary, and the mirror disappears', async () => {
    v2.errorRate = 0.3;
    expect((await sluice.api('POST', '/v1/rollouts', shadowThenWeights)).status).toBe(201);
    const rolledBack = await eventually(async () => {
      const r = await rollout();
      return r.phase === 'RolledBack' ? r : undefined;
    }, 15_000, 100);
    expect(events(rolledBack).filter((e) => e !== 'AnalysisInconclusive')).toEqual([
      'Created',
      'MirrorSet',
      'MirrorAcked',
      'StepCompleted',
      'AnalysisStarted',
      'AnalysisFailed',
      'MirrorStopped',
      'RolledBack',
    ]);
    const acked = rolledBack.history.find((h) => h.event === 'MirrorAcked')!;
    const created = rolledBack.history[0]!;
    console.log(
      `failing shadow: mirror acknowledged ${Date.parse(acked.at) - Date.parse(created.at)} ms after the rollout was created, ` +
        `rolled back ${Date.parse(rolledBack.history.at(-1)!.at) - Date.parse(acked.at)} ms after that (analysis interval 1000 ms, report lag 1000 ms, metrics flushes every 200 ms)`,
    );
    expect(acked.reason).toBe("1 node of the service acknowledged mirroring 100% of traffic to v2 (Envoy nodes only; 1 of the service's 1 node is an Envoy)");
    const entry = rolledBack.history.at(-1)!;
    expect(entry).toMatchObject({ by: 'analysis', weights: { v1: 100, v2: 0 } });
    expect(entry.reason).toMatch(/success: canary success rate 0\.7\d{3} < min 0\.95 \(\d+ canary requests, mirroring 100%\)/);
    expect(entry.reason).toMatch(/vs-stable: canary success rate 0\.7\d{3} vs stable 1\.0000: drop 0\.\d{4} > max 0\.02/);
    // No user was exposed: the canary took 0% of user traffic in every state of the rollout.
    expect(rolledBack.history.every((h) => h.weights.v2 === 0)).toBe(true);
    expect(answered.v2).toBe(0);
    const failed = rolledBack.analysis!.measurements.find((m) => m.phase === 'Failed');
    expect(failed).toMatchObject({ run: 'step 1', phase: 'Failed', mirrorPercent: 100 });
    expect(failed!.requests.v2).toBeGreaterThanOrEqual(50); // the copies are what was judged
    expect(rolledBack).toMatchObject({ mirrorPercent: 0, canaryWeight: 0 });
    // The node got the routes without the mirror policy and ACKed them.
    await eventually(() => heldRoute().request_mirror_policies === undefined && heldRoute().cluster === 'echo-v1', 5000);
    const node = await eventually(async () => {
      const { body } = await sluice.api('GET', '/v1/fleet');
      const n = (body.nodes as Obj[]).find((x) => x.id === NODE)!;
      const rds = (n.types as Record<string, Obj>)[TypeUrl.RouteConfiguration]!;
      return rds.ackedVersion === rds.sentVersion ? rds : undefined;
    });
    expect(node.lastNack).toBeNull();
    // Let the failing copies' last reports arrive before the next rollout's windows open.
    v2.errorRate = 0;
    await eventually(() => sluice.telemetry.windows.query('echo-v2', Date.now() - 1500, Date.now()).requests === 0, 5000, 100);
  });

  it('a healthy shadow passes its analysis step; mirroring stops and the weighted rollout goes on', async () => {
    expect((await sluice.api('POST', '/v1/rollouts', shadowThenWeights)).status).toBe(201);
    const paused = await eventually(async () => {
      const r = await rollout();
      return r.phase !== 'Progressing' ? r : undefined;
    }, 20_000, 100);
    expect(paused).toMatchObject({ phase: 'Paused', pausedBy: 'step', step: 4, canaryWeight: 20, weights: { v1: 80, v2: 20 }, mirrorPercent: 0 });
    const passed = paused.analysis!.measurements.filter((m) => m.run === 'step 1' && m.phase === 'Successful');
    expect(passed).toHaveLength(3);
    expect(paused.analysis!.measurements.filter((m) => m.phase === 'Failed')).toEqual([]);
    for (const m of passed) {
      expect(m.mirrorPercent).toBe(100);
      expect(m.requests.v2).toBeGreaterThanOrEqual(50);
      expect(m.metrics.map((x) => x.name)).toEqual(['success', 'vs-stable', 'slower']);
      expect(m.metrics[0]!.message).toMatch(/^canary success rate 1\.0000 >= min 0\.95 \(\d+ canary requests, mirroring 100%\)$/);
      expect(m.metrics[2]!.message).toMatch(/^canary p99 \d+\.\dms vs stable \d+\.\dms: rise 0\.0ms <= max 50ms$/); // both in Envoy's (5, 10] ms bucket
    }
    expect(events(paused).slice(-8)).toEqual(['StepCompleted', 'MirrorSet', 'MirrorAcked', 'StepCompleted', 'WeightSet', 'WeightAcked', 'StepCompleted', 'Paused']);
    // The node holds the weighted split, without a mirror.
    await eventually(() => heldRoute().weighted_clusters !== undefined, 5000);
    expect(heldRoute()).toEqual({
      weighted_clusters: {
        clusters: [
          { name: 'echo-v2', weight: 20 },
          { name: 'echo-v1', weight: 80 },
        ],
      },
    });
    expect((await sluice.api('POST', '/v1/rollouts/echo/rollback', { reason: 'end of test' })).status).toBe(200);
  });
});
