// `rollout status` as a person reads it: the last measurement names each version's requests and
// what they showed, and says nothing it does not know.
import { describe, expect, it } from 'vitest';
import { rolloutDetail } from '../../src/cli/rollout-view.js';
import { RolloutSpecSchema } from '../../src/model/rollout.js';
import type { Measurement } from '../../src/model/rollout.js';
import { createRollout } from '../../src/rollout/machine.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');

function withMeasurement(m: Partial<Measurement>) {
  const spec = RolloutSpecSchema.parse({
    service: 'echo',
    canary: 'v2',
    steps: [{ setWeight: 50 }, { pause: {} }],
    analysis: { interval: '10s', metrics: [{ name: 'success', successRate: { min: 0.9 } }] },
  });
  const r = createRollout('r', spec, 'v1', new Date(T0), 'test');
  const metrics = [{ name: 'success', phase: 'Successful' as const, value: 0.9897, message: 'canary success rate 0.9897 >= min 0.9 (291 canary requests)' }];
  r.analysis!.measurements.push({ run: 'background', from: new Date(T0).toISOString(), to: new Date(T0 + 10_000).toISOString(), phase: 'Successful', requests: {}, metrics, ...m });
  return rolloutDetail(r, { now: T0 + 12_000 });
}

describe('rollout status: the last measurement', () => {
  it("gives each version's requests, success rate and p99", () => {
    const out = withMeasurement({
      requests: { v2: 291, v1: 512 },
      versions: { v2: { successRate: 0.9897, latencyP99Ms: 62 }, v1: { successRate: 1, latencyP99Ms: 31 } },
    });
    expect(out).toContain('Last measurement (background, 2s ago): Successful, requests v2 291 (98.97% ok, p99 62.0ms), v1 512 (100.00% ok, p99 31.0ms)');
    expect(out).toContain('  success: canary success rate 0.9897 >= min 0.9 (291 canary requests)');
  });

  it('leaves out what was not measured: no latency from proxyless clients, nothing without requests or from older servers', () => {
    expect(withMeasurement({ requests: { v2: 40, v1: 0 }, versions: { v2: { successRate: 0.95, latencyP99Ms: null }, v1: { successRate: null, latencyP99Ms: null } } })).toContain(
      'requests v2 40 (95.00% ok), v1 0\n',
    );
    expect(withMeasurement({ requests: { v2: 40, v1: 7 } })).toContain('requests v2 40, v1 7\n');
  });
});
