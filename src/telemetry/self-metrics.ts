// Sluice's own metrics for GET /metrics (Prometheus text format): the fleet as the xDS server
// sees it, how fast pushes are acknowledged, and each rollout's phase, weight and last analysis.
// Prometheus naming: base units (seconds, ratios 0-1), one metric per meaning, and the standard
// process metrics under their standard names (process_*, nodejs_*) so stock dashboards work.
// Labels are bounded by what was declared (services, their versions, analysis metric names).
// One registry per Sluice, so several instances in one process (tests) do not collide.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AnalysisMetric, AnalysisSpec, RolloutState } from '../model/rollout.js';
import { kindOfGroup } from '../reconcile/node-groups.js';
import type { ResourceCache } from '../xds/cache.js';
import type { XdsServer } from '../xds/server.js';
import type { XdsStream } from '../xds/stream.js';
import type { ReportSource } from './telemetry.js';
import type { WindowedStats } from './window.js';

export interface SelfMetricsOptions {
  xds: XdsServer;
  cache: ResourceCache;
  rollouts: () => RolloutState[];
  telemetryReports: Readonly<Record<ReportSource, number>>;
  /** Reports refused (for clusters the node was not sent, over the cluster bound, or from a sender refused for the node), by reason. */
  telemetryDropped: Readonly<Record<string, number>>;
  /** Services not published as declared (translation failed or a name clash), with why. */
  serviceProblems: () => ReadonlyMap<string, string>;
  telemetryWindows: WindowedStats;
}

const PHASES = ['Progressing', 'Paused', 'Promoted', 'RolledBack'] as const;

type MetricKind = Exclude<keyof AnalysisMetric, 'name'>;
/** Kind of analysis metric → its gauge, help, and the factor from measured value to base unit. */
const ANALYSIS_GAUGES: readonly (readonly [MetricKind, string, string, number])[] = [
  ['successRate', 'sluice_analysis_success_ratio', "Last measured success ratio (0-1) of the canary, by analysis metric", 1],
  ['successRateDrop', 'sluice_analysis_success_ratio_drop', "Last measured drop of the canary's success ratio below stable's (0-1), by analysis metric", 1],
  ['latencyP99', 'sluice_analysis_latency_p99_seconds', "Last measured p99 latency of the canary in seconds, by analysis metric", 1 / 1000],
  ['latencyRise', 'sluice_analysis_latency_p99_rise_seconds', "Last measured rise of the canary's p99 latency over stable's in seconds, by analysis metric", 1 / 1000],
  ['prometheus', 'sluice_analysis_query_value', 'Last value of a Prometheus analysis query, by analysis metric', 1],
];

/** The newest value of each metric of a rollout's analysis, with the kind its spec gives it. */
function lastValues(r: RolloutState): { metric: string; kind: MetricKind; value: number }[] {
  const specOf = (run: string): AnalysisSpec | undefined => (run === 'background' ? r.spec.analysis : r.spec.steps[Number(run.slice('step '.length))]?.analysis);
  const last = new Map<string, { metric: string; kind: MetricKind; value: number }>();
  for (const m of r.analysis?.measurements ?? []) {
    // Measurements are in time order: later ones replace earlier ones.
    const metrics = specOf(m.run)?.metrics ?? [];
    for (const x of m.metrics) {
      const spec = metrics.find((s) => s.name === x.name);
      const kind = spec && (Object.keys(spec).find((k) => k !== 'name') as MetricKind | undefined);
      if (x.value !== null && kind) last.set(x.name, { metric: x.name, kind, value: x.value });
    }
  }
  return [...last.values()];
}
const typeName = (typeUrl: string) => typeUrl.slice(typeUrl.lastIndexOf('.') + 1);

export function selfMetrics(opts: SelfMetricsOptions): Registry {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'sluice_xds_connected_nodes',
    help: 'Connected xDS nodes (distinct node ids)',
    registers,
    collect() {
      this.set(opts.xds.fleet().length);
    },
  });
  new Gauge({
    name: 'sluice_xds_connected_streams',
    help: 'Open xDS streams',
    registers,
    collect() {
      this.set(opts.xds.connectedStreams);
    },
  });
  const pushes = new Counter({
    name: 'sluice_xds_pushes_total',
    help: 'New resource versions published to the cache, by kind of client and type; each is pushed to every subscribed stream of its group',
    labelNames: ['kind', 'type'],
    registers,
  });
  // ACKs arrive 10,000 at once after a rollback, on the path of the fan-out: each only adds to
  // plain numbers here, and prom-client gets them when it is scraped (labelling a counter or
  // histogram per ACK hashed its labels: ~40 % of what an ACK cost).
  interface Tally {
    acks: number;
    nacks: number;
    /** Push-to-ACK seconds not yet handed to the histogram. */
    waits: number[];
  }
  const tallies = new Map<string, Tally>(); // by type name
  const tallyByUrl = new Map<string, Tally>();
  const tallyOf = (typeUrl: string): Tally => {
    let t = tallyByUrl.get(typeUrl);
    if (t) return t;
    const type = typeName(typeUrl);
    t = tallies.get(type) ?? { acks: 0, nacks: 0, waits: [] };
    tallies.set(type, t);
    // Only served types are ACKed or NACKed; the bound is a guard all the same.
    if (tallyByUrl.size < 32) tallyByUrl.set(typeUrl, t);
    return t;
  };
  new Counter({
    name: 'sluice_xds_acks_total',
    help: 'ACKs received, by type',
    labelNames: ['type'],
    registers,
    collect() {
      this.reset();
      for (const [type, t] of tallies) this.inc({ type }, t.acks);
    },
  });
  new Counter({
    name: 'sluice_xds_nacks_total',
    help: 'NACKs (rejected configuration) received, by type',
    labelNames: ['type'],
    registers,
    collect() {
      this.reset();
      for (const [type, t] of tallies) if (t.nacks > 0) this.inc({ type }, t.nacks);
    },
  });
  const convergence = new Histogram({
    name: 'sluice_xds_push_ack_seconds',
    help: 'From a new version being published to each connected node acknowledging it, by type',
    labelNames: ['type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
    collect() {
      for (const [type, t] of tallies) drain(type, t);
    },
  });
  const drain = (type: string, t: Tally) => {
    for (const seconds of t.waits) convergence.observe({ type }, seconds);
    t.waits = [];
  };
  /** Waits kept for the next scrape, per type, before they are handed over anyway. */
  const MAX_PENDING_WAITS = 100_000;

  // Push-to-ACK: one observation per stream and publication, for streams that were connected
  // when it was published and were sent it (a late joiner's first ACK says nothing about speed).
  const publishedAt = new Map<string, Map<string, number>>(); // group → type URL → ms
  const observed = new WeakMap<XdsStream, Map<string, number>>();
  opts.cache.onChange((group, types) => {
    const now = Date.now();
    let byType = publishedAt.get(group);
    if (!byType) publishedAt.set(group, (byType = new Map()));
    for (const t of types) {
      byType.set(t, now);
      pushes.inc({ kind: kindOfGroup(group), type: typeName(t) });
    }
  });
  opts.xds.on('ack', (stream, typeUrl) => {
    const tally = tallyOf(typeUrl);
    tally.acks++;
    const published = publishedAt.get(stream.group)?.get(typeUrl);
    const sentAt = stream.types.get(typeUrl)?.sentAt;
    if (published === undefined || sentAt === undefined || sentAt < published || stream.connectedAt.getTime() > published) return;
    let seen = observed.get(stream);
    if (!seen) observed.set(stream, (seen = new Map()));
    if (seen.get(typeUrl) === published) return;
    seen.set(typeUrl, published);
    tally.waits.push((Date.now() - published) / 1000);
    if (tally.waits.length >= MAX_PENDING_WAITS) drain(typeName(typeUrl), tally);
  });
  opts.xds.on('nack', (_stream, typeUrl) => void tallyOf(typeUrl).nacks++);

  new Counter({
    name: 'sluice_telemetry_reports_total',
    help: 'Per-cluster load reports received from the data plane, by source',
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      for (const [source, n] of Object.entries(opts.telemetryReports)) this.inc({ source }, n);
    },
  });

  new Counter({
    name: 'sluice_telemetry_reports_dropped_total',
    help: 'Per-cluster load reports dropped, by reason (cluster_not_sent: the node, as this client, was never sent that cluster; cluster_limit: too many clusters; node_refused: the sender may not report as that node)',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(opts.telemetryDropped)) this.inc({ reason }, n);
    },
  });

  new Gauge({
    name: 'sluice_services_unpublished',
    help: 'Declared services not published as declared (their last good resources are served, or none)',
    registers,
    collect() {
      this.set(opts.serviceProblems().size);
    },
  });

  new Gauge({
    name: 'sluice_telemetry_clusters',
    help: 'Clusters with data-plane reports in the telemetry windows',
    registers,
    collect() {
      this.set(opts.telemetryWindows.clusters().length);
    },
  });

  new Gauge({
    name: 'sluice_rollout_phase',
    help: 'Rollout phase (1 for the current phase of each service)',
    labelNames: ['service', 'phase'],
    registers,
    collect() {
      this.reset();
      for (const r of opts.rollouts()) for (const p of PHASES) this.set({ service: r.service, phase: p }, r.phase === p ? 1 : 0);
    },
  });
  new Gauge({
    name: 'sluice_rollout_canary_weight_ratio',
    help: 'Share of traffic routed to the canary (0-1)',
    labelNames: ['service', 'canary'],
    registers,
    collect() {
      this.reset();
      for (const r of opts.rollouts()) this.set({ service: r.service, canary: r.canary }, r.canaryWeight / 100);
    },
  });
  // The last measured value of each analysis metric, one gauge per kind of value.
  for (const [kind, name, help, scale] of ANALYSIS_GAUGES) {
    new Gauge({
      name,
      help,
      labelNames: ['service', 'metric'],
      registers,
      collect() {
        this.reset();
        for (const r of opts.rollouts())
          for (const v of lastValues(r)) if (v.kind === kind) this.set({ service: r.service, metric: v.metric }, v.value * scale);
      },
    });
  }
  new Gauge({
    name: 'sluice_analysis_measurements',
    help: 'Measurements of the analysis runs in progress, by result',
    labelNames: ['service', 'run', 'result'],
    registers,
    collect() {
      this.reset();
      for (const r of opts.rollouts())
        for (const run of r.analysis?.runs ?? [])
          for (const result of ['successful', 'failed', 'inconclusive'] as const)
            this.set({ service: r.service, run: run.run, result }, run[result]);
    },
  });
  return registry;
}
