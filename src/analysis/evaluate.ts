// Judging one window: each metric of an analysis against its threshold. Pure, so every rule
// (too little traffic is inconclusive, not failed; comparisons need both versions) is tested
// without servers. While Envoy nodes mirror traffic to the canary, its cluster's numbers are
// (or include) those copies: Envoy counts a shadow request in the stats of the cluster it was
// sent to like any other, so the same metrics judge the shadow, and the texts say so.
import type { AnalysisMetric, AnalysisSpec, MeasurementPhase, MetricResult, VersionObserved } from '../model/rollout.js';
import { quantile, totalCount } from '../telemetry/histogram.js';
import type { WindowStats } from '../telemetry/window.js';

export const DEFAULT_MIN_REQUESTS = 20;

/** What was observed in the window: both versions' traffic and each custom query's value. */
export interface Observed {
  canary: WindowStats;
  stable: WindowStats;
  /** By metric name: the query's value, or why there is none. */
  queries: ReadonlyMap<string, { value: number } | { error: string }>;
  /** Share of traffic Envoy nodes mirror to the canary in this window (0 or absent: none). */
  mirrorPercent?: number;
}

export function judge(spec: AnalysisSpec, seen: Observed): MetricResult[] {
  return spec.metrics.map((m) => judgeMetric(m, spec.minRequests ?? DEFAULT_MIN_REQUESTS, seen));
}

/** Failed if any metric failed, else Inconclusive if any was, else Successful. */
export function overall(results: readonly MetricResult[]): MeasurementPhase {
  if (results.some((r) => r.phase === 'Failed')) return 'Failed';
  if (results.some((r) => r.phase === 'Inconclusive')) return 'Inconclusive';
  return 'Successful';
}

const ratio = (x: number) => x.toFixed(4);
const ms = (x: number) => `${x.toFixed(1)}ms`;
/** Values are compared as shown (6 decimals), so 1 - 0.95 is not "more than 0.05". */
const round = (x: number) => Math.round(x * 1e6) / 1e6;

function result(name: string, phase: MeasurementPhase, value: number | null, message: string): MetricResult {
  return { name, phase, value, message };
}

function successRate(w: WindowStats): number {
  return round(w.successful / w.requests);
}

function p99(w: WindowStats): number | null {
  return totalCount(w.latency) > 0 ? round(quantile(w.latency, 0.99)!) : null;
}

/** A version's success rate and p99 in the window, for people to compare (the metrics judge). */
export function observed(w: WindowStats): VersionObserved {
  return { successRate: w.requests > 0 ? successRate(w) : null, latencyP99Ms: p99(w) };
}

function judgeMetric(m: AnalysisMetric, minRequests: number, seen: Observed): MetricResult {
  const { canary, stable } = seen;
  const mirror = seen.mirrorPercent ?? 0;
  // A quiet shadow is often a fleet without Envoys: only they mirror.
  const onlyEnvoys = mirror > 0 ? ` (mirroring ${mirror}%: only Envoy nodes mirror)` : '';
  const tooFew = (who: string, w: WindowStats) =>
    w.requests < minRequests
      ? `${who} finished ${w.requests} requests in the window, fewer than minRequests ${minRequests}${w === canary ? onlyEnvoys : ''}`
      : null;
  const noLatency = (who: string) => `no latency reports for ${who} (latency comes from Envoy's metrics service)`;

  if (m.prometheus) {
    const q = seen.queries.get(m.name);
    if (!q) return result(m.name, 'Inconclusive', null, 'not queried: another metric had already failed');
    if ('error' in q) return result(m.name, 'Inconclusive', null, `query failed: ${q.error}`);
    if (Number.isNaN(q.value)) return result(m.name, 'Inconclusive', null, 'query returned NaN');
    const v = round(q.value);
    const { min, max } = m.prometheus;
    if (min !== undefined && v < min) return result(m.name, 'Failed', v, `${v} < min ${min}`);
    if (max !== undefined && v > max) return result(m.name, 'Failed', v, `${v} > max ${max}`);
    const bounds = [min !== undefined ? `>= min ${min}` : '', max !== undefined ? `<= max ${max}` : ''].filter(Boolean).join(' and ');
    return result(m.name, 'Successful', v, `${v} ${bounds}`);
  }

  const few = tooFew('canary', canary);
  if (few) return result(m.name, 'Inconclusive', null, few);
  const n = `(${canary.requests} canary requests${mirror > 0 ? `, mirroring ${mirror}%` : ''})`;

  if (m.successRate) {
    const v = successRate(canary);
    const { min } = m.successRate;
    return v < min
      ? result(m.name, 'Failed', v, `canary success rate ${ratio(v)} < min ${min} ${n}`)
      : result(m.name, 'Successful', v, `canary success rate ${ratio(v)} >= min ${min} ${n}`);
  }
  if (m.latencyP99) {
    const v = p99(canary);
    if (v === null) return result(m.name, 'Inconclusive', null, noLatency('the canary'));
    const { maxMs } = m.latencyP99;
    return v > maxMs
      ? result(m.name, 'Failed', v, `canary p99 latency ${ms(v)} > max ${maxMs}ms`)
      : result(m.name, 'Successful', v, `canary p99 latency ${ms(v)} <= max ${maxMs}ms`);
  }
  // Comparisons with stable need stable traffic in the same window too.
  const fewStable = tooFew('stable', stable);
  if (fewStable) return result(m.name, 'Inconclusive', null, fewStable);
  if (m.successRateDrop) {
    const c = successRate(canary);
    const s = successRate(stable);
    const drop = round(s - c);
    const { max } = m.successRateDrop;
    const text = `canary success rate ${ratio(c)} vs stable ${ratio(s)}: drop ${ratio(drop)}`;
    return drop > max ? result(m.name, 'Failed', drop, `${text} > max ${max}`) : result(m.name, 'Successful', drop, `${text} <= max ${max}`);
  }
  const c = p99(canary);
  const s = p99(stable);
  if (c === null || s === null) return result(m.name, 'Inconclusive', null, noLatency(c === null ? 'the canary' : 'stable'));
  const rise = round(c - s);
  const { maxMs } = m.latencyRise!;
  const text = `canary p99 ${ms(c)} vs stable ${ms(s)}: rise ${ms(rise)}`;
  return rise > maxMs ? result(m.name, 'Failed', rise, `${text} > max ${maxMs}ms`) : result(m.name, 'Successful', rise, `${text} <= max ${maxMs}ms`);
}
