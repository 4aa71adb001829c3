import { describe, expect, it } from 'vitest';
import { judge, overall } from '../../src/analysis/evaluate.js';
import { AnalysisSchema, type AnalysisSpec, type MetricResult } from '../../src/model/rollout.js';
import type { WindowStats } from '../../src/telemetry/window.js';

const spec = (metrics: unknown[], extra: object = {}): AnalysisSpec => AnalysisSchema.parse({ interval: '10s', metrics, ...extra });
const win = (successful: number, errors: number, latency: [number, number][] = []): WindowStats => ({
  requests: successful + errors,
  successful,
  errors,
  latency: new Map(latency),
  nodes: 1,
});
const judged = (s: AnalysisSpec, canary: WindowStats, stable = win(1000, 0), queries = new Map()) => judge(s, { canary, stable, queries });
const one = (s: AnalysisSpec, canary: WindowStats, stable?: WindowStats): MetricResult => judged(s, canary, stable)[0]!;

describe('built-in metrics', () => {
  const success = spec([{ name: 'success', successRate: { min: 0.95 } }], { minRequests: 50 });

  it('successRate: the canary’s share of successful requests against the minimum', () => {
    expect(one(success, win(70, 30))).toEqual({ name: 'success', phase: 'Failed', value: 0.7, message: 'canary success rate 0.7000 < min 0.95 (100 canary requests)' });
    expect(one(success, win(95, 5))).toMatchObject({ phase: 'Successful', value: 0.95, message: 'canary success rate 0.9500 >= min 0.95 (100 canary requests)' });
  });

  it('a window with fewer than minRequests canary requests is inconclusive, never failed', () => {
    expect(one(success, win(0, 49))).toEqual({
      name: 'success',
      phase: 'Inconclusive',
      value: null,
      message: 'canary finished 49 requests in the window, fewer than minRequests 50',
    });
    expect(one(success, win(0, 0)).phase).toBe('Inconclusive');
    // The default minimum is 20.
    expect(one(spec([{ name: 's', successRate: { min: 0.5 } }]), win(19, 0)).phase).toBe('Inconclusive');
    expect(one(spec([{ name: 's', successRate: { min: 0.5 } }]), win(20, 0)).phase).toBe('Successful');
  });

  it('latencyP99 reads the merged histogram; without latency reports it is inconclusive', () => {
    const lat = spec([{ name: 'p99', latencyP99: { maxMs: 300 } }]);
    expect(one(lat, win(100, 0, [[100, 50], [250, 49], [500, 1]]))).toMatchObject({ phase: 'Successful', value: 250 });
    expect(one(lat, win(100, 0, [[100, 50], [1000, 50]]))).toMatchObject({ phase: 'Failed', value: 982, message: 'canary p99 latency 982.0ms > max 300ms' });
    expect(one(lat, win(100, 0))).toMatchObject({ phase: 'Inconclusive', message: expect.stringMatching(/no latency reports for the canary/) });
  });

  it('successRateDrop compares with stable in the same window, which needs traffic too', () => {
    const drop = spec([{ name: 'vs', successRateDrop: { max: 0.02 } }]);
    expect(one(drop, win(95, 5), win(990, 10))).toMatchObject({ phase: 'Failed', value: 0.04, message: 'canary success rate 0.9500 vs stable 0.9900: drop 0.0400 > max 0.02' });
    expect(one(drop, win(98, 2), win(990, 10))).toMatchObject({ phase: 'Successful', value: 0.01 });
    // Better than stable is a negative drop.
    expect(one(drop, win(100, 0), win(90, 10))).toMatchObject({ phase: 'Successful', value: -0.1 });
    expect(one(drop, win(100, 0), win(5, 0))).toMatchObject({ phase: 'Inconclusive', message: 'stable finished 5 requests in the window, fewer than minRequests 20' });
  });

  it('latencyRise compares p99s', () => {
    const rise = spec([{ name: 'rise', latencyRise: { maxMs: 50 } }]);
    const fast: [number, number][] = [[10, 100]];
    const slow: [number, number][] = [[100, 100]];
    expect(one(rise, win(100, 0, slow), win(100, 0, fast))).toMatchObject({ phase: 'Failed', value: 89.1 });
    expect(one(rise, win(100, 0, fast), win(100, 0, fast))).toMatchObject({ phase: 'Successful', value: 0 });
    expect(one(rise, win(100, 0, fast), win(100, 0))).toMatchObject({ phase: 'Inconclusive', message: expect.stringMatching(/for stable/) });
  });
});

describe('prometheus metrics', () => {
  const prom = spec([
    { name: 'lo', prometheus: { provider: 'main', query: 'q', min: 0.9 } },
    { name: 'hi', prometheus: { provider: 'main', query: 'q', max: 10 } },
    { name: 'both', prometheus: { provider: 'main', query: 'q', min: 1, max: 2 } },
  ]);
  const run = (values: [string, { value: number } | { error: string }][]) => judged(prom, win(0, 0), win(0, 0), new Map(values));

  it('compare the query value with min and max, whatever the traffic', () => {
    expect(run([['lo', { value: 0.95 }], ['hi', { value: 11 }], ['both', { value: 1.5 }]]).map((r) => [r.phase, r.message])).toEqual([
      ['Successful', '0.95 >= min 0.9'],
      ['Failed', '11 > max 10'],
      ['Successful', '1.5 >= min 1 and <= max 2'],
    ]);
    expect(run([['lo', { value: 0.5 }]])[0]).toMatchObject({ phase: 'Failed', value: 0.5, message: '0.5 < min 0.9' });
  });

  it('are inconclusive when the query failed, gave NaN, or was not run', () => {
    expect(run([['lo', { error: 'no series' }], ['hi', { value: NaN }]]).map((r) => [r.phase, r.message])).toEqual([
      ['Inconclusive', 'query failed: no series'],
      ['Inconclusive', 'query returned NaN'],
      ['Inconclusive', 'not queried: another metric had already failed'],
    ]);
  });
});

describe('overall', () => {
  const r = (phase: MetricResult['phase']): MetricResult => ({ name: 'x', phase, value: null, message: '' });
  it('fails if any metric failed, else is inconclusive if any was', () => {
    expect(overall([r('Successful'), r('Inconclusive'), r('Failed')])).toBe('Failed');
    expect(overall([r('Successful'), r('Inconclusive')])).toBe('Inconclusive');
    expect(overall([r('Successful'), r('Successful')])).toBe('Successful');
  });
});
