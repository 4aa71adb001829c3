// How a rollout looks to a person: `rollout status` and each frame of `rollout status --watch`.
import type { AnalysisSpec, HistoryEntry, Matcher, Measurement, RolloutState, Step } from '../model/rollout.js';
import type { NodeStatus } from '../xds/server.js';
import { fleetSummary, nacks } from './fleet-view.js';
import { age, humanDuration, table, weightsText } from './output.js';

type Paint = (code: number, s: string) => string;
const plain: Paint = (_c, s) => s;

export function isFinished(r: RolloutState): boolean {
  return r.phase === 'Promoted' || r.phase === 'RolledBack';
}

function metricText(m: AnalysisSpec['metrics'][number]): string {
  if (m.successRate) return `${m.name} success rate ≥ ${m.successRate.min}`;
  if (m.latencyP99) return `${m.name} p99 ≤ ${m.latencyP99.maxMs}ms`;
  if (m.successRateDrop) return `${m.name} success-rate drop ≤ ${m.successRateDrop.max}`;
  if (m.latencyRise) return `${m.name} p99 rise ≤ ${m.latencyRise.maxMs}ms`;
  const p = m.prometheus!;
  return `${m.name} prometheus ${[p.min !== undefined ? `≥ ${p.min}` : '', p.max !== undefined ? `≤ ${p.max}` : ''].filter(Boolean).join(' ')}`;
}

export function analysisText(a: AnalysisSpec): string {
  return `analysis every ${a.interval}${a.count ? `, ${a.count}×` : ''}: ${a.metrics.map(metricText).join(', ')}`;
}

export function stepText(s: Step): string {
  if (s.setWeight !== undefined) return `setWeight ${s.setWeight}%`;
  if (s.pause) return s.pause.duration ? `pause ${s.pause.duration}` : 'pause (until promoted)';
  return analysisText(s.analysis!);
}

function matcherText(m: Matcher): string {
  const on = m.header !== undefined ? m.header : m.cookie !== undefined ? `cookie ${m.cookie}` : `query ${m.query}`;
  const test =
    m.exact !== undefined ? `= "${m.exact}"` : m.prefix !== undefined ? `starts with "${m.prefix}"` : m.suffix !== undefined ? `ends with "${m.suffix}"`
    : m.contains !== undefined ? `contains "${m.contains}"` : m.regex !== undefined ? `matches /${m.regex}/` : 'present';
  return `${m.invert ? 'not ' : ''}${on} ${test}`;
}

/** "Paused (step)" etc. */
function phaseText(r: RolloutState): string {
  return r.phase === 'Paused' && r.pausedBy ? `Paused (${r.pausedBy})` : r.phase;
}

/** What the current step is waiting for, in words. */
function waitingFor(r: RolloutState, now: number): string | undefined {
  if (isFinished(r)) return undefined;
  if (r.awaitingAck) return `waiting for every node to ACK ${r.awaitingAck.canaryWeight}% (for ${age(r.awaitingAck.since, now)})`;
  if (r.pauseUntil) return `timed pause until ${r.pauseUntil} (${humanDuration(Date.parse(r.pauseUntil) - now)} left)`;
  if (r.pausedBy === 'step') return `paused until promoted: sluice rollout promote ${r.service}`;
  if (r.pausedBy === 'user') return `paused by a user${r.pauseRemainingMs ? ` (${humanDuration(r.pauseRemainingMs)} of the timed pause left)` : ''}: sluice rollout resume ${r.service}`;
  if (r.pausedBy === 'analysis') return `paused: analysis was inconclusive too often: sluice rollout resume ${r.service}`;
  if (r.pausedBy === 'fleet') return `paused: a node rejected the routes (sluice fleet): sluice rollout resume ${r.service} once fixed`;
  return undefined;
}

function historyLine(h: HistoryEntry): string {
  return `${h.at}  ${h.event}  ${weightsText(h.weights)}  by ${h.by}${h.reason ? `: ${h.reason}` : ''}`;
}

/** The full picture of one rollout; `fleet` adds the ACK state of the routes. */
export function rolloutDetail(r: RolloutState, opts: { fleet?: NodeStatus[]; now?: number; paint?: Paint; history?: number } = {}): string {
  const now = opts.now ?? Date.now();
  const paint = opts.paint ?? plain;
  const phaseColour = r.phase === 'Promoted' ? 32 : r.phase === 'RolledBack' ? 31 : r.phase === 'Paused' ? 33 : 36;
  const out: string[] = [
    `Rollout:  ${paint(1, r.service)}  ${r.stable} → ${r.canary}  ${paint(phaseColour, phaseText(r))}`,
    `Weights:  ${weightsText(r.weights)}`,
    `Started:  ${r.createdAt} (${age(r.createdAt, now)} ago), updated ${age(r.updatedAt, now)} ago`,
    '',
    'Steps:',
  ];
  const n = r.spec.steps.length;
  r.spec.steps.forEach((s, i) => {
    let mark = '  ';
    if (r.phase === 'Promoted' || i < r.step) mark = paint(32, '✓ ');
    else if (i === r.step) mark = r.phase === 'RolledBack' ? paint(31, '✗ ') : paint(36, '▶ ');
    out.push(`  ${mark}${String(i + 1).padStart(String(n).length)}. ${stepText(s)}`);
  });
  const waiting = waitingFor(r, now);
  if (waiting) out.push('', `Now:      ${waiting}`);
  if (r.spec.headerRoutes?.length)
    out.push(`Header routes (${r.headerRoutesActive ? 'active' : 'off'}): ${r.spec.headerRoutes.map((h) => `${h.name} [${h.match.map(matcherText).join(' and ')}]`).join('; ')}`);
  if (r.spec.sticky) out.push(`Sticky:   ${r.spec.sticky.header ? `header ${r.spec.sticky.header}` : `cookie ${r.spec.sticky.cookie}`}`);
  if (r.spec.analysis) out.push(`Background ${analysisText(r.spec.analysis)}`);
  if (r.analysis) {
    for (const run of r.analysis.runs)
      out.push(`Analysis ${run.run}: ${run.successful} successful, ${run.failed} failed, ${run.inconclusive} inconclusive; next in ${humanDuration(Date.parse(run.nextAt) - now)}`);
    const last = r.analysis.measurements.at(-1);
    if (last) {
      const colour = last.phase === 'Successful' ? 32 : last.phase === 'Failed' ? 31 : 33;
      out.push(`Last measurement (${last.run}, ${age(last.to, now)} ago): ${paint(colour, last.phase)}, requests ${measuredVersions(last)}`);
      for (const m of last.metrics) out.push(`  ${m.name}: ${m.message}`);
    }
  }
  if (opts.fleet) {
    out.push('', `Fleet:    ${fleetSummary(opts.fleet)}`);
    for (const node of opts.fleet) for (const msg of nacks(node)) out.push(paint(31, `  ${node.id} NACK ${msg}`));
  }
  const keep = opts.history ?? 5;
  if (keep > 0 && r.history.length) {
    out.push('', `History${r.history.length > keep ? ` (last ${keep} of ${r.history.length})` : ''}:`);
    for (const h of r.history.slice(-keep)) out.push(`  ${historyLine(h)}`);
  }
  return out.join('\n') + '\n';
}

/** One line per history entry, for logs and pipes (`rollout status --watch` without a terminal). */
/** "v2 291 (98.97% ok, p99 62.0ms), v1 512 (100.00% ok)": each version's requests and what they showed. */
function measuredVersions(m: Measurement): string {
  const parts = Object.entries(m.requests).map(([v, n]) => {
    const seen = m.versions?.[v];
    const details = [
      ...(seen?.successRate != null ? [`${(seen.successRate * 100).toFixed(2)}% ok`] : []),
      ...(seen?.latencyP99Ms != null ? [`p99 ${seen.latencyP99Ms.toFixed(1)}ms`] : []),
    ];
    return `${v} ${n}${details.length ? ` (${details.join(', ')})` : ''}`;
  });
  return parts.join(', ') || '-';
}

export function changeLine(r: RolloutState, h: HistoryEntry): string {
  const step = h.step !== undefined ? ` step ${h.step + 1}/${r.spec.steps.length}` : '';
  const weights = Object.entries(h.weights).map(([v, w]) => `${v}=${w}%`).join(' ');
  return `${h.at} ${r.service} ${h.event}${step} ${weights} by=${h.by}${h.reason ? ` reason=${JSON.stringify(h.reason)}` : ''}`;
}

export function rolloutList(rollouts: RolloutState[], wide: boolean): string {
  if (rollouts.length === 0) return 'No rollouts.\n';
  const header = ['SERVICE', 'STABLE', 'CANARY', 'PHASE', 'STEP', 'WEIGHTS', 'UPDATED', ...(wide ? ['ID', 'CREATED'] : [])];
  const rows = rollouts.map((r) => [
    r.service,
    r.stable,
    r.canary,
    phaseText(r),
    `${Math.min(r.step + 1, r.spec.steps.length)}/${r.spec.steps.length}`,
    weightsText(r.weights),
    age(r.updatedAt),
    ...(wide ? [r.id, r.createdAt] : []),
  ]);
  return table(header, rows);
}

/** One line after an action: `rollout/echo promoted: Progressing, step 3/5, v1 80%, v2 20%`. */
export function actionLine(r: RolloutState, verb: string): string {
  return `rollout/${r.service} ${verb}: ${phaseText(r)}, step ${Math.min(r.step + 1, r.spec.steps.length)}/${r.spec.steps.length}, ${weightsText(r.weights)}\n`;
}
