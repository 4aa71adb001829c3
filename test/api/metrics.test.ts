// GET /metrics follows Prometheus naming: base units (seconds, ratios 0-1), one metric per
// meaning, standard process metric names. The registry is Sluice's own (selfMetrics) over a real
// xDS server and cache; the rollout it reports is a stored state as the state machine writes it.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/model/rollout.js';
import { selfMetrics } from '../../src/telemetry/self-metrics.js';
import { WindowedStats } from '../../src/telemetry/window.js';
import { ResourceCache } from '../../src/xds/cache.js';
import { XdsServer } from '../../src/xds/server.js';

const at = '2026-03-01T10:00:00.000Z';
const measured = (run: string, metrics: [string, number | null][]) => ({
  run,
  from: at,
  to: at,
  phase: 'Successful' as const,
  requests: { v1: 100, v2: 100 },
  metrics: metrics.map(([name, value]) => ({ name, phase: 'Successful' as const, value, message: '' })),
});

const rollout: RolloutState = {
  id: 'r1',
  spec: {
    service: 'echo',
    canary: 'v2',
    steps: [{ setWeight: 25 }, { analysis: { interval: '10s', metrics: [{ name: 'errors', prometheus: { provider: 'main', query: 'x', max: 5 } }] } }],
    analysis: {
      interval: '10s',
      metrics: [
        { name: 'success', successRate: { min: 0.99 } },
        { name: 'drop', successRateDrop: { max: 0.01 } },
        { name: 'p99', latencyP99: { maxMs: 250 } },
        { name: 'rise', latencyRise: { maxMs: 50 } },
      ],
    },
  },
  service: 'echo',
  stable: 'v1',
  canary: 'v2',
  phase: 'Progressing',
  step: 1,
  canaryWeight: 25,
  weights: { v1: 75, v2: 25 },
  headerRoutesActive: true,
  awaitingAck: null,
  pauseUntil: null,
  pausedBy: null,
  pauseRemainingMs: null,
  lastAckAt: at,
  createdAt: at,
  updatedAt: at,
  history: [],
  analysis: {
    runs: [{ run: 'background', startedAt: at, nextAt: at, successful: 2, failed: 0, inconclusive: 1 }],
    measurements: [
      measured('background', [['success', 0.9], ['drop', 0.02], ['p99', 400], ['rise', null]]),
      measured('background', [['success', 0.995], ['drop', 0.004], ['p99', 180], ['rise', 35]]),
      measured('step 1', [['errors', 3]]),
    ],
  },
};

async function scrape(): Promise<string> {
  const cache = new ResourceCache();
  const xds = new XdsServer({ cache, log: pino({ level: 'silent' }), groupOf: () => 'grpc' });
  const registry = selfMetrics({
    xds,
    cache,
    rollouts: () => [rollout],
    telemetryReports: { lrs: 0, metrics_service: 0 },
    telemetryDropped: {},
    serviceProblems: () => new Map(),
    telemetryWindows: new WindowedStats(),
  });
  return registry.metrics();
}

describe('GET /metrics naming', () => {
  it('gives each kind of analysis value its own metric, in base units, with the newest value', async () => {
    const text = await scrape();
    expect(text).toMatch(/^sluice_analysis_success_ratio\{service="echo",metric="success"\} 0\.995$/m);
    expect(text).toMatch(/^sluice_analysis_success_ratio_drop\{service="echo",metric="drop"\} 0\.004$/m);
    expect(text).toMatch(/^sluice_analysis_latency_p99_seconds\{service="echo",metric="p99"\} 0\.18$/m);
    expect(text).toMatch(/^sluice_analysis_latency_p99_rise_seconds\{service="echo",metric="rise"\} 0\.035$/m);
    expect(text).toMatch(/^sluice_analysis_query_value\{service="echo",metric="errors"\} 3$/m);
    expect(text).not.toContain('sluice_analysis_value');
    // One meaning per metric: a ratio never shows up under the latency name, nor the reverse.
    expect(text).not.toMatch(/^sluice_analysis_latency_p99_seconds\{[^}]*metric="success"/m);
  });

  it('reports the canary weight as a ratio', async () => {
    const text = await scrape();
    expect(text).toMatch(/^sluice_rollout_canary_weight_ratio\{service="echo",canary="v2"\} 0\.25$/m);
    expect(text).not.toMatch(/^sluice_rollout_canary_weight\{/m);
  });

  it('keeps the standard process metric names', async () => {
    const text = await scrape();
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d/m);
    expect(text).toMatch(/^nodejs_heap_size_total_bytes \d/m);
    expect(text).not.toMatch(/^sluice_(process|nodejs)_/m);
  });

  it('names every metric of its own with the sluice_ prefix and a unit or _total where one applies', async () => {
    const names = new Set([...(await scrape()).matchAll(/^# TYPE (\S+) (\S+)$/gm)].filter((m) => m[1]!.startsWith('sluice_')).map((m) => `${m[1]} ${m[2]}`));
    for (const entry of names) {
      const [name, type] = entry.split(' ') as [string, string];
      if (type === 'counter') expect(name, entry).toMatch(/_total$/);
      if (type === 'histogram') expect(name, entry).toMatch(/_seconds$/);
    }
    expect(names.size).toBeGreaterThan(10);
  });
});
