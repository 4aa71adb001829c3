import { describe, expect, it } from 'vitest';
import type { MetricFamily } from '../../src/telemetry/envoy-stats.js';
import { CumulativeDeltas, readClusterStats } from '../../src/telemetry/envoy-stats.js';

const counter = (name: string, value: number, labels: Record<string, string> = {}): MetricFamily => ({
  name,
  type: 'COUNTER',
  metric: [{ label: Object.entries(labels).map(([n, v]) => ({ name: n, value: v })), counter: { value } }],
});
const histogram = (name: string, count: number, buckets: [number, number][], labels: Record<string, string> = {}): MetricFamily => ({
  name,
  type: 'HISTOGRAM',
  metric: [
    {
      label: Object.entries(labels).map(([n, v]) => ({ name: n, value: v })),
      histogram: { sample_count: count, bucket: buckets.map(([upper_bound, cumulative_count]) => ({ upper_bound, cumulative_count })) },
    },
  ],
});

describe('readClusterStats', () => {
  it('reads response classes and upstream_rq_time from full stat names, dots in cluster names included', () => {
    const stats = readClusterStats([
      counter('cluster.echo.v2.upstream_rq_2xx', 90),
      counter('cluster.echo.v2.upstream_rq_5xx', 10),
      counter('cluster.echo.v2.upstream_rq_200', 90), // per-code series are not needed
      counter('cluster.echo.v2.upstream_cx_total', 3),
      counter('http.ingress.downstream_rq_5xx', 7),
      histogram('cluster.echo.v2.upstream_rq_time', 100, [[5, 60], [25, 95]]),
      { name: 'cluster.echo.v2.upstream_rq_time', type: 'SUMMARY', metric: [{}] },
    ]);
    expect([...stats.keys()]).toEqual(['echo.v2']);
    const e = stats.get('echo.v2')!;
    expect([...e.counters]).toEqual([
      ['2xx', 90],
      ['5xx', 10],
    ]);
    expect(e.time).toEqual({ count: 100, cumulative: new Map([[5, 60], [25, 95]]) });
  });

  it('reads the same with emit_tags_as_labels', () => {
    const stats = readClusterStats([
      counter('cluster.upstream_rq_xx', 7, { envoy_cluster_name: 'echo-v1', envoy_response_code_class: '4' }),
      counter('cluster.upstream_rq_xx', 3, { envoy_cluster_name: 'echo-v1', envoy_response_code_class: '5' }),
      histogram('cluster.upstream_rq_time', 10, [[1, 10]], { envoy_cluster_name: 'echo-v1' }),
      counter('cluster.upstream_rq_xx', 3, { envoy_response_code_class: '5' }), // no cluster: ignored
    ]);
    expect([...stats.keys()]).toEqual(['echo-v1']);
    expect([...stats.get('echo-v1')!.counters]).toEqual([
      ['4xx', 7],
      ['5xx', 3],
    ]);
    expect(stats.get('echo-v1')!.time?.count).toBe(10);
  });
});

describe('CumulativeDeltas', () => {
  const flush = (ok: number, bad: number, time?: { count: number; cumulative: [number, number][] }) =>
    new Map([['c', { counters: new Map([['2xx', ok], ['5xx', bad]]), ...(time ? { time: { count: time.count, cumulative: new Map(time.cumulative) } } : {}) }]]);

  it('takes a new node’s first flush as its baseline, then reports what changed', () => {
    const d = new CumulativeDeltas();
    expect(d.update('n1', flush(1000, 10)).size).toBe(0);
    expect(d.update('n1', flush(1100, 15)).get('c')).toEqual({ successful: 100, errors: 5 });
    expect(d.update('n1', flush(1100, 15)).get('c')).toEqual({ successful: 0, errors: 0 });
    // Nodes are independent.
    expect(d.update('n2', flush(5, 5)).size).toBe(0);
  });

  it('counts a series that appears later from zero: Envoy leaves unused counters out', () => {
    const d = new CumulativeDeltas();
    d.update('n1', new Map([['c', { counters: new Map([['2xx', 50]]) }]]));
    expect(d.update('n1', flush(60, 30)).get('c')).toEqual({ successful: 10, errors: 30 });
    // A cluster first seen after the baseline counts from zero too.
    const more = new Map([...flush(60, 30), ['new', { counters: new Map([['2xx', 7]]) }]]);
    expect(d.update('n1', more).get('new')).toEqual({ successful: 7, errors: 0 });
  });

  it('treats a counter that went down as a restart', () => {
    const d = new CumulativeDeltas();
    d.update('n1', flush(1000, 10));
    expect(d.update('n1', flush(20, 2)).get('c')).toEqual({ successful: 20, errors: 2 });
  });

  it('turns cumulative histograms into new observations per bucket, overflow included', () => {
    const d = new CumulativeDeltas();
    d.update('n1', flush(0, 0, { count: 10, cumulative: [[5, 8], [25, 10]] }));
    const delta = d.update('n1', flush(0, 0, { count: 30, cumulative: [[5, 18], [25, 24]] })).get('c')!;
    expect([...delta.latency!]).toEqual([
      [5, 10],
      [25, 4],
      [Infinity, 6],
    ]);
    // Reset: everything in the new flush is new.
    const reset = d.update('n1', flush(0, 0, { count: 3, cumulative: [[5, 3], [25, 3]] })).get('c')!;
    expect([...reset.latency!]).toEqual([
      [5, 3],
      [25, 0],
    ]);
  });

  it('forgets nodes that went quiet, whose next flush is a new baseline', () => {
    let now = 0;
    const d = new CumulativeDeltas(60_000, () => now);
    d.update('n1', flush(10, 0));
    now = 200_000;
    expect(d.update('n1', flush(20, 0)).size).toBe(0);
  });
});
