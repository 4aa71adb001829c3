import { describe, expect, it } from 'vitest';
import { RolloutSpecSchema } from '../../src/model/rollout.js';

const analysis = {
  interval: '10s',
  count: 3,
  failureLimit: 1,
  inconclusiveLimit: 2,
  minRequests: 50,
  metrics: [
    { name: 'success', successRate: { min: 0.99 } },
    { name: 'latency', latencyP99: { maxMs: 300 } },
    { name: 'vs-stable', successRateDrop: { max: 0.01 } },
    { name: 'slower', latencyRise: { maxMs: 50 } },
    { name: 'custom', prometheus: { provider: 'main', query: 'sum(rate(x[1m]))', min: 0.9 } },
  ],
};
const valid = { service: 'echo', canary: 'v2', steps: [{ setWeight: 5 }, { analysis }], analysis };

function issues(change: (spec: any) => void): { path: (string | number)[]; message: string }[] {
  const spec = structuredClone(valid);
  change(spec);
  const r = RolloutSpecSchema.safeParse(spec);
  return r.success ? [] : r.error.issues.map((i) => ({ path: i.path as (string | number)[], message: i.message }));
}

describe('analysis in the rollout spec', () => {
  it('accepts the docs/api.md example as background analysis and as a step, and keeps it as written', () => {
    expect(RolloutSpecSchema.parse(valid)).toEqual(valid);
    expect(RolloutSpecSchema.parse({ ...valid, analysis: { interval: '1s', metrics: [{ name: 'a', successRate: { min: 1 } }] } }).analysis).toEqual({
      interval: '1s',
      metrics: [{ name: 'a', successRate: { min: 1 } }],
    });
  });

  it.each<[string, (s: any) => void, (string | number)[], RegExp?]>([
    ['two kinds in one metric', (s) => (s.analysis.metrics[0].latencyP99 = { maxMs: 1 }), ['analysis', 'metrics', 0], /exactly one of successRate, latencyP99/],
    ['no kind', (s) => (s.analysis.metrics[0] = { name: 'x' }), ['analysis', 'metrics', 0]],
    ['unknown field', (s) => (s.analysis.metric = []), ['analysis']],
    ['interval under a second', (s) => (s.analysis.interval = '500ms'), ['analysis', 'interval'], /at least 1s/],
    ['interval over 15 minutes', (s) => (s.analysis.interval = '16m'), ['analysis', 'interval']],
    ['success rate above 1', (s) => (s.steps[1].analysis.metrics[0].successRate.min = 1.5), ['steps', 1, 'analysis', 'metrics', 0, 'successRate', 'min']],
    ['prometheus without bounds', (s) => delete s.analysis.metrics[4].prometheus.min, ['analysis', 'metrics', 4, 'prometheus'], /min, max or both/],
    ['prometheus without a provider', (s) => delete s.analysis.metrics[4].prometheus.provider, ['analysis', 'metrics', 4, 'prometheus', 'provider']],
    ['prometheus provider not a name', (s) => (s.analysis.metrics[4].prometheus.provider = 'http://x'), ['analysis', 'metrics', 4, 'prometheus', 'provider']],
    // The server no longer fetches URLs an API caller chooses: the old form says what replaced it.
    ['prometheus address (the old form)', (s) => (s.analysis.metrics[4].prometheus = { address: 'http://prometheus:9090', query: 'up', max: 1 }), ['analysis', 'metrics', 4, 'prometheus', 'address'], /no longer accepted.*--prometheus NAME=URL.*"provider"/],
    ['duplicate metric names', (s) => (s.analysis.metrics[1].name = 'success'), ['analysis', 'metrics', 1, 'name'], /duplicate/],
    ['no metrics', (s) => (s.analysis.metrics = []), ['analysis', 'metrics']],
    ['negative failureLimit', (s) => (s.analysis.failureLimit = -1), ['analysis', 'failureLimit']],
    ['minRequests 0', (s) => (s.analysis.minRequests = 0), ['analysis', 'minRequests']],
    ['a step with analysis and a weight', (s) => (s.steps[1].setWeight = 5), ['steps', 1], /exactly one of setWeight, pause, analysis/],
  ])('%s → an issue at its path', (_, change, path, message) => {
    const found = issues(change);
    expect(found.map((i) => i.path)).toContainEqual(path);
    if (message) expect(found.map((i) => i.message).join('\n')).toMatch(message);
  });
});
