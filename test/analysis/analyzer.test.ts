import { describe, expect, it } from 'vitest';
import { Analyzer } from '../../src/analysis/analyzer.js';
import { RolloutSpecSchema } from '../../src/model/rollout.js';
import { createRollout } from '../../src/rollout/machine.js';
import { WindowedStats } from '../../src/telemetry/window.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const S = 1000;

function setup() {
  let now = T0;
  const windows = new WindowedStats({ now: () => now, resolutionMs: 100 });
  const analyzer = new Analyzer({ windows, telemetrySince: T0, reportLagMs: 2 * S, clusterOf: (s, v) => `${s}-${v}` });
  const spec = RolloutSpecSchema.parse({
    service: 'echo',
    canary: 'v2',
    steps: [{ setWeight: 50 }, { pause: {} }],
    analysis: { interval: '10s', minRequests: 10, metrics: [{ name: 'success', successRate: { min: 0.9 } }, { name: 'drop', successRateDrop: { max: 0.05 } }] },
  });
  const state = createRollout('r', spec, 'v1', new Date(T0 + 5 * S), 'test');
  const report = (ms: number, cluster: string, ok: number, bad: number) => {
    now = T0 + ms;
    windows.add(cluster, 'n1', { successful: ok, errors: bad });
  };
  return { analyzer, spec, state, report };
}

describe('Analyzer', () => {
  it('opens a run’s first window one report interval after it started, and not before telemetry did', () => {
    const { analyzer, spec } = setup();
    expect(analyzer.earliestClose(spec.analysis!, new Date(T0 + 5 * S))).toEqual(new Date(T0 + 17 * S));
    expect(analyzer.earliestClose(spec.analysis!, new Date(T0 - 60 * S))).toEqual(new Date(T0 + 10 * S));
  });

  it('judges the window that closes at `to`, reading both versions’ clusters', async () => {
    const { analyzer, spec, state, report } = setup();
    report(6 * S, 'echo-v2', 0, 100); // before the first window opened: traffic at another weight
    report(8 * S, 'echo-v2', 95, 5);
    report(9 * S, 'echo-v1', 100, 0);
    report(17 * S, 'echo-v2', 1000, 0); // belongs to the next window
    const m = await analyzer.measure(state, 'background', spec.analysis!, new Date(T0 + 17 * S));
    expect(m).toMatchObject({
      run: 'background',
      from: new Date(T0 + 7 * S).toISOString(),
      to: new Date(T0 + 17 * S).toISOString(),
      phase: 'Successful',
      requests: { v2: 100, v1: 100 },
      // Proxyless clients report calls, not latency.
      versions: { v2: { successRate: 0.95, latencyP99Ms: null }, v1: { successRate: 1, latencyP99Ms: null } },
    });
    expect(m.metrics.map((r) => [r.name, r.value])).toEqual([
      ['success', 0.95],
      ['drop', 0.05],
    ]);
    const next = await analyzer.measure(state, 'background', spec.analysis!, new Date(T0 + 27 * S));
    expect(next).toMatchObject({ from: new Date(T0 + 17 * S).toISOString(), phase: 'Inconclusive', requests: { v2: 1000, v1: 0 } });
    expect(next.versions).toEqual({ v2: { successRate: 1, latencyP99Ms: null }, v1: { successRate: null, latencyP99Ms: null } });
    expect(next.metrics[1]!.message).toBe('stable finished 0 requests in the window, fewer than minRequests 10');
  });
});
