// Takes one measurement of an analysis run: reads the canary's and stable's clusters from the
// fleet-wide telemetry windows, runs the custom Prometheus queries, and judges the window.
// Never throws: whatever goes wrong makes the affected metrics inconclusive.
import { parseDuration } from '../model/duration.js';
import type { AnalysisSpec, Measurement, RolloutState } from '../model/rollout.js';
import type { WindowedStats } from '../telemetry/window.js';
import { judge, observed, overall } from './evaluate.js';
import { PrometheusProviders } from './prometheus.js';

export interface AnalyzerOptions {
  windows: WindowedStats;
  /** When telemetry started arriving (process start): earlier windows are incomplete. */
  telemetrySince: number;
  /** How long reports trail the traffic they describe (the load reporting interval). */
  reportLagMs: number;
  /** The cluster name a version of a service is served as. */
  clusterOf(service: string, version: string): string;
  /** The Prometheus endpoints configured on this server (none by default). */
  prometheus?: PrometheusProviders;
}

const MAX_QUERY_MS = 10_000;

export class Analyzer {
  private readonly prometheus: PrometheusProviders;

  constructor(private readonly opts: AnalyzerOptions) {
    this.prometheus = opts.prometheus ?? new PrometheusProviders();
  }

  /**
   * The earliest a window of a run may close. Reports count when they arrive and describe the
   * report interval before, so a run's first window opens one report interval after the run
   * started (what came before was traffic at another weight); and after a restart the first
   * interval of telemetry is still being collected.
   */
  earliestClose(spec: AnalysisSpec, startedAt: Date): Date {
    return new Date(Math.max(this.opts.telemetrySince, this.opensAt(startedAt)) + parseDuration(spec.interval));
  }

  /** Judges the window of `run` that closes at `to`: one interval long, opening no earlier than the run's first window. */
  async measure(state: RolloutState, run: string, spec: AnalysisSpec, to: Date): Promise<Measurement> {
    const intervalMs = parseDuration(spec.interval);
    const started = new Date(state.analysis?.runs.find((r) => r.run === run)?.startedAt ?? to);
    const from = new Date(Math.max(to.getTime() - intervalMs, this.opensAt(started)));
    const canaryCluster = this.opts.clusterOf(state.service, state.canary);
    const stableCluster = this.opts.clusterOf(state.service, state.stable);
    const vars: Record<string, string> = {
      service: state.service,
      canary: state.canary,
      stable: state.stable,
      canaryCluster,
      stableCluster,
      interval: spec.interval,
    };
    const canary = this.opts.windows.query(canaryCluster, from.getTime(), to.getTime());
    const stable = this.opts.windows.query(stableCluster, from.getTime(), to.getTime());
    const queries = new Map<string, { value: number } | { error: string }>();
    // Envoy counts the copies it mirrors in the canary cluster's own stats: while a mirror is in
    // force the canary is judged on them, by the same metrics (docs/analysis.md "Shadow traffic").
    const mirrorPercent = state.mirrorPercent ?? 0;
    const seen = { canary, stable, queries, ...(mirrorPercent > 0 ? { mirrorPercent } : {}) };
    let metrics = judge(spec, seen);
    // A rollback must not wait for a slow Prometheus when the data plane already says no.
    if (!metrics.some((r) => r.phase === 'Failed')) {
      await Promise.all(
        spec.metrics.map(async (m) => {
          if (!m.prometheus) return;
          const query = m.prometheus.query.replace(/\{\{\s*(\w+)\s*\}\}/g, (all, name: string) => vars[name] ?? all);
          try {
            const value = await this.prometheus.query(m.prometheus.provider, query, { at: to, timeoutMs: Math.min(MAX_QUERY_MS, intervalMs) });
            queries.set(m.name, { value });
          } catch (err) {
            queries.set(m.name, { error: (err as Error).message });
          }
        }),
      );
      metrics = judge(spec, seen);
    }
    return {
      run,
      from: from.toISOString(),
      to: to.toISOString(),
      phase: overall(metrics),
      requests: { [state.canary]: canary.requests, [state.stable]: stable.requests },
      versions: { [state.canary]: observed(canary), [state.stable]: observed(stable) },
      ...(mirrorPercent > 0 ? { mirrorPercent } : {}),
      metrics,
    };
  }

  private opensAt(startedAt: Date): number {
    return startedAt.getTime() + this.opts.reportLagMs;
  }
}
