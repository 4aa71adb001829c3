// Envoy's stats as its metrics service sink streams them (io.prometheus.client.MetricFamily),
// reduced to what analysis needs per upstream cluster: responses by class and the
// upstream_rq_time histogram. Envoy sends cumulative values (unless report_counters_as_deltas
// is set, which Sluice does not support), so each node's previous values are kept and turned
// into deltas.
import type { LoadDelta } from './window.js';

/** A decoded MetricFamily (protobufjs toObject with longs as numbers, enums as strings). */
export interface MetricFamily {
  name?: string;
  type?: string;
  metric?: {
    label?: { name?: string; value?: string }[];
    counter?: { value?: number };
    histogram?: { sample_count?: number; bucket?: { cumulative_count?: number; upper_bound?: number }[] };
  }[];
}

/** Cumulative values of one cluster: counters by series name ('2xx', ...) and the latency histogram. */
export interface ClusterCumulative {
  counters: Map<string, number>;
  time?: { count: number; cumulative: Map<number, number> };
}

const CLASS = /^[1-5]xx$/;
// Without tags as labels the cluster name is inside the stat name ("cluster.<name>.upstream_rq_2xx",
// names may contain dots); with emit_tags_as_labels it is the envoy_cluster_name label.
const FULL_NAME = /^cluster\.(.+)\.upstream_rq_([1-5]xx|time)$/;

/** Picks the per-cluster response classes and latency histograms out of one flush. */
export function readClusterStats(families: readonly MetricFamily[]): Map<string, ClusterCumulative> {
  const out = new Map<string, ClusterCumulative>();
  const entry = (cluster: string) => {
    let e = out.get(cluster);
    if (!e) out.set(cluster, (e = { counters: new Map() }));
    return e;
  };
  for (const f of families) {
    const name = f.name ?? '';
    for (const m of f.metric ?? []) {
      const labels = new Map((m.label ?? []).map((l) => [l.name ?? '', l.value ?? '']));
      let cluster: string | undefined;
      let stat: string | undefined;
      const full = FULL_NAME.exec(name);
      if (full) [cluster, stat] = [full[1], full[2]];
      else if (name === 'cluster.upstream_rq_xx' && labels.has('envoy_cluster_name'))
        [cluster, stat] = [labels.get('envoy_cluster_name'), `${labels.get('envoy_response_code_class')}xx`];
      else if (name === 'cluster.upstream_rq_time' && labels.has('envoy_cluster_name'))
        [cluster, stat] = [labels.get('envoy_cluster_name'), 'time'];
      if (!cluster || !stat) continue;
      // Histograms come twice by default (as SUMMARY and as HISTOGRAM); only buckets merge.
      if (stat === 'time' && f.type === 'HISTOGRAM' && m.histogram) {
        const cumulative = new Map<number, number>();
        for (const b of m.histogram.bucket ?? []) cumulative.set(b.upper_bound ?? Infinity, b.cumulative_count ?? 0);
        entry(cluster).time = { count: m.histogram.sample_count ?? 0, cumulative };
      } else if (CLASS.test(stat) && f.type === 'COUNTER' && m.counter) {
        entry(cluster).counters.set(stat, m.counter.value ?? 0);
      }
    }
  }
  return out;
}

interface NodeMemory {
  seen: number;
  clusters: Map<string, ClusterCumulative>;
}

/** Per node, the last cumulative values; turns each new flush into per-cluster deltas. */
export class CumulativeDeltas {
  private readonly nodes = new Map<string, NodeMemory>();
  private sweptAt = 0;

  constructor(
    /** Nodes silent for this long are forgotten (their next flush becomes a new baseline). */
    private readonly forgetAfterMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  update(node: string, flush: Map<string, ClusterCumulative>): Map<string, LoadDelta> {
    const now = this.now();
    this.sweep(now);
    const known = this.nodes.get(node);
    const deltas = new Map<string, LoadDelta>();
    if (known) {
      for (const [cluster, cur] of flush) {
        // A series the node never sent before was unused until now: Envoy counts it from 0.
        const prev = known.clusters.get(cluster) ?? { counters: new Map<string, number>() };
        let successful = 0;
        let errors = 0;
        for (const [cls, value] of cur.counters) {
          const d = counterDelta(prev.counters.get(cls), value);
          if (cls === '5xx') errors += d;
          else successful += d;
        }
        const latency = cur.time ? histogramDelta(prev.time, cur.time) : undefined;
        deltas.set(cluster, { successful, errors, ...(latency ? { latency } : {}) });
      }
    }
    // Everything is cumulative, so a cluster missing from this flush keeps its last values.
    const clusters = known?.clusters ?? new Map<string, ClusterCumulative>();
    for (const [cluster, cur] of flush) clusters.set(cluster, cur);
    this.nodes.set(node, { seen: now, clusters });
    return deltas;
  }

  private sweep(now: number): void {
    if (now - this.sweptAt < 60_000) return;
    this.sweptAt = now;
    for (const [node, m] of this.nodes) if (now - m.seen > this.forgetAfterMs) this.nodes.delete(node);
  }
}

/** A counter that went down was reset (Envoy restarted): all of its value is new. */
function counterDelta(prev: number | undefined, value: number): number {
  return prev === undefined || value < prev ? value : value - prev;
}

/** New observations per bucket (non-cumulative), including the overflow above the last bound. */
function histogramDelta(
  prev: ClusterCumulative['time'],
  cur: NonNullable<ClusterCumulative['time']>,
): Map<number, number> {
  const reset = !prev || cur.count < prev.count;
  const bounds = [...cur.cumulative.keys()].sort((a, b) => a - b);
  const out = new Map<number, number>();
  let below = 0;
  for (const bound of bounds) {
    const cum = cur.cumulative.get(bound)! - (reset ? 0 : (prev.cumulative.get(bound) ?? 0));
    out.set(bound, Math.max(0, cum - below));
    below = Math.max(below, cum);
  }
  const total = cur.count - (reset ? 0 : prev.count);
  if (total > below && !out.has(Infinity)) out.set(Infinity, total - below);
  return out;
}
