// The rollout state machine: pure (no I/O, time passed in), so the scheduler, the API and the
// tests all drive the same transitions. Callers hand in a state and an event and get a new
// state back; every change is explained by history entries appended in the same call (a
// successful analysis measurement only lands in analysis.measurements).
//
// Invariants while a rollout is active (Progressing or Paused) — the current step has always
// been entered, i.e.:
//   setWeight w   → canaryWeight === w, and awaitingAck is set until the fleet ACKs w
//                   (it can be ACKed but not yet completed only while the user has paused)
//   setMirror p   → mirrorPercent === p, and awaitingAck is set until the fleet ACKs the routes
//                   that carry it: the step after it (an analysis step judging the shadow
//                   traffic, a timed pause) starts only once the service's nodes mirror
//   pause {d}     → pauseUntil is set, or (user-paused) pauseRemainingMs holds what was left
//   pause {}      → phase Paused, pausedBy 'step'
//   analysis {..} → an analysis run named 'step <i>' is in analysis.runs
// awaitingAck, when set, is the routing in force (canaryWeight, and mirrorPercent when not 0);
// only setMirror steps change mirrorPercent, which a weight step keeps; a finished rollout
// (promoted or rolled back) mirrors nothing. Which nodes mirror (Envoys, not proxyless gRPC) is
// for translate; how many of the service's nodes are Envoys arrives with the fleet's ACK.
// Analysis runs (the background one and a step's) are measured by the controller every
// interval; it feeds each measurement back as an 'analysisMeasured' event, and only this file
// decides what a measurement means: count it, roll back, pause, or complete the step.
import { parseDuration } from '../model/duration.js';
import type { AnalysisRun, AnalysisSpec, Measurement, RolloutSpec, RolloutState } from '../model/rollout.js';

export type RolloutEvent =
  // The service's nodes ACKed routes carrying this weight and mirror share (absent = 0); of
  // those nodes, envoyNodes are Envoys (when the fleet knows).
  | { type: 'fleetAcked'; canaryWeight: number; mirrorPercent?: number; nodes: number; envoyNodes?: number }
  | { type: 'fleetRejected'; canaryWeight: number; mirrorPercent?: number; nodes: string[]; message: string } // some nodes NACKed them
  | { type: 'tick' } // a timer fired (time in `now`)
  | { type: 'promote'; full?: boolean }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'rollback'; reason?: string }
  | { type: 'analysisMeasured'; measurement: Measurement }; // a window of an analysis run was judged

/** An action that is illegal in the rollout's phase; the API answers it with HTTP 409. */
export class TransitionError extends Error {
  override readonly name = 'TransitionError';
  constructor(
    readonly code: 'conflict',
    message: string,
  ) {
    super(message);
  }
}

/** What one transition works on: a private copy of the state, and who/when for history. */
interface Ctx {
  s: RolloutState;
  now: Date;
  by: string;
  /** Set by every change: history entries, and measurements that need none. */
  changed: boolean;
}

/** Measurements kept in the rollout; older ones survive only as history entries (failures, inconclusive). */
export const MAX_MEASUREMENTS = 100;
/** History entries kept per rollout (oldest dropped and counted in historyDropped): a rollout
 *  that runs for weeks must not grow a file rewritten on every change. */
export const MAX_HISTORY = 200;
/** Longest reason kept in history: NACK texts and measurement details come from outside. */
export const MAX_REASON = 1000;

export function createRollout(id: string, spec: RolloutSpec, stable: string, now: Date, by: string): RolloutState {
  if (spec.canary === stable) throw new TransitionError('conflict', `canary "${spec.canary}" is already the stable version`);
  const at = now.toISOString();
  const s: RolloutState = {
    id,
    spec: structuredClone(spec),
    service: spec.service,
    stable,
    canary: spec.canary,
    phase: 'Progressing',
    step: 0,
    canaryWeight: 0,
    weights: { [stable]: 100, [spec.canary]: 0 },
    mirrorPercent: 0,
    headerRoutesActive: true,
    awaitingAck: null,
    pauseUntil: null,
    pausedBy: null,
    pauseRemainingMs: null,
    lastAckAt: null,
    createdAt: at,
    updatedAt: at,
    history: [],
  };
  if (spec.analysis || spec.steps.some((st) => st.analysis)) s.analysis = { runs: [], measurements: [] };
  const c = { s, now, by, changed: false };
  record(c, 'Created', `rollout of ${spec.canary} over ${stable}`);
  if (spec.analysis) startRun(c, 'background', spec.analysis);
  enterStep(c);
  run(c);
  return s;
}

export function transition(state: RolloutState, event: RolloutEvent, now: Date, by: string): { state: RolloutState; changed: boolean } {
  const c: Ctx = { s: structuredClone(state), now, by, changed: false };
  apply(c, event);
  // Unchanged: hand back the caller's object so nothing needs storing or pushing.
  return c.changed ? { state: c.s, changed: true } : { state, changed: false };
}

/** When a 'tick' is due: the end of the timed pause in force, if any. */
export function nextWakeAt(state: RolloutState): Date | null {
  return state.phase === 'Progressing' && state.pauseUntil !== null ? new Date(state.pauseUntil) : null;
}

/** Analysis runs whose next window closes at `at` (the controller measures them then). */
export function analysisDue(state: RolloutState): { run: string; at: Date; startedAt: Date; spec: AnalysisSpec }[] {
  if (!isActive(state) || !state.analysis) return [];
  return state.analysis.runs.map((r) => ({ run: r.run, at: new Date(r.nextAt), startedAt: new Date(r.startedAt), spec: runSpec(state, r.run) }));
}

export function isActive(state: RolloutState): boolean {
  return state.phase === 'Progressing' || state.phase === 'Paused';
}

function apply(c: Ctx, e: RolloutEvent): void {
  const { s } = c;
  switch (e.type) {
    case 'fleetAcked': {
      // Only the first ACK of the routing in force counts; stale or repeated ACKs are noise.
      if (!isActive(s) || !isRoutedNow(s, e) || s.lastAckAt !== null) return;
      s.lastAckAt = c.now.toISOString();
      s.lastAckNodes = e.nodes;
      s.lastAckEnvoyNodes = e.envoyNodes ?? null;
      s.awaitingAck = null;
      const mirrorStep = s.spec.steps[s.step]?.setMirror !== undefined;
      const what = mirrorStep ? mirrorWhat(s) : `weight ${e.canaryWeight}`;
      const nodes = `${e.nodes} node${e.nodes === 1 ? '' : 's'}`;
      record(
        c,
        mirrorStep ? 'MirrorAcked' : 'WeightAcked',
        e.nodes === 0
          ? `${what} counts as acknowledged, but no node of the service is connected (set minNodes to wait for nodes)`
          : mirrorStep && mirrorOf(s) > 0
            ? `${nodes} of the service acknowledged ${what} (Envoy nodes only${e.envoyNodes === undefined ? '' : `; ${e.envoyNodes} of the service's ${nodes} ${e.envoyNodes === 1 ? 'is an Envoy' : 'are Envoys'}`})`
            : `${nodes} of the service acknowledged ${what}`,
        s.step,
      );
      return run(c);
    }
    case 'fleetRejected':
      // Nodes that refuse the routes keep their old ones: the weight was never reached. Stop the
      // schedule and let a human look (resume waits for the ACK again; rollback is always there).
      if (s.phase !== 'Progressing' || !s.awaitingAck || !isRoutedNow(s, e)) return;
      hold(c, 'fleet');
      return record(
        c,
        'FleetRejected',
        `${listOf(e.nodes, 5)} rejected the routes for weight ${e.canaryWeight}${mirrorOf(s) > 0 ? ` with mirroring ${mirrorOf(s)}%` : ''}: ${e.message}`,
        s.step,
      );
    case 'tick':
      return run(c);
    case 'promote':
      assertActive(s, 'promote');
      if (e.full) return promoted(c, `full promotion from step ${s.step}`);
      // Leave whatever the current step waits for (pause, user pause, ACK, analysis) and go on.
      leavePause(s, c.now);
      completeStep(c, 'promoted');
      return run(c);
    case 'pause':
      assertActive(s, 'pause');
      if (s.phase === 'Paused') return;
      hold(c, 'user');
      return record(c, 'PausedByUser', 'paused by user', s.step);
    case 'resume':
      assertActive(s, 'resume');
      if (s.phase === 'Progressing') return;
      if (s.pausedBy === 'step') throw new TransitionError('conflict', `step ${s.step} is a pause without duration: promote to go on`);
      leavePause(s, c.now);
      if (s.pauseRemainingMs !== null) {
        s.pauseUntil = new Date(c.now.getTime() + s.pauseRemainingMs).toISOString();
        s.pauseRemainingMs = null;
      }
      record(c, 'Resumed', 'resumed by user', s.step);
      return run(c);
    case 'rollback':
      assertActive(s, 'roll back');
      return rollBack(c, e.reason?.trim() || 'manual rollback');
    case 'analysisMeasured':
      return measured(c, e.measurement);
  }
}

function rollBack(c: Ctx, reason: string): void {
  const { s } = c;
  const mirrored = mirrorOf(s) > 0;
  s.phase = 'RolledBack';
  setCanaryWeight(s, 0);
  endSchedule(s);
  if (mirrored) record(c, 'MirrorStopped', `no more copies of traffic to ${s.canary}: rolled back`, s.step);
  record(c, 'RolledBack', reason, s.step);
}

/** Pauses; a running timed pause is frozen: it keeps what was left, not the deadline. */
function hold(c: Ctx, by: 'user' | 'analysis' | 'fleet'): void {
  const { s } = c;
  s.phase = 'Paused';
  s.pausedBy = by;
  if (s.pauseUntil !== null) {
    s.pauseRemainingMs = Math.max(0, Date.parse(s.pauseUntil) - c.now.getTime());
    s.pauseUntil = null;
  }
}

/** Leaving any pause; a human who resumes after an inconclusive pause starts that count afresh.
 *  Inconclusive windows while paused were not recorded, so a run's next window may lie in the
 *  past: it closes now instead (its data is recent, at the weight still routed). */
function leavePause(s: RolloutState, now: Date): void {
  if (s.phase === 'Paused')
    for (const r of s.analysis?.runs ?? []) {
      if (s.pausedBy === 'analysis') r.inconclusive = 0;
      if (Date.parse(r.nextAt) < now.getTime()) r.nextAt = now.toISOString();
    }
  s.phase = 'Progressing';
  s.pausedBy = null;
}

function startRun(c: Ctx, run: string, spec: AnalysisSpec): void {
  const at = c.now.getTime();
  c.s.analysis!.runs.push({
    run,
    startedAt: new Date(at).toISOString(),
    nextAt: new Date(at + parseDuration(spec.interval)).toISOString(),
    successful: 0,
    failed: 0,
    inconclusive: 0,
  });
}

function runSpec(s: RolloutState, run: string): AnalysisSpec {
  return run === 'background' ? s.spec.analysis! : s.spec.steps[Number(run.slice('step '.length))]!.analysis!;
}

/** Counts a judged window; more failures than the limit roll back at once, more inconclusive
 *  windows than the limit pause for a human. */
function measured(c: Ctx, m: Measurement): void {
  const { s } = c;
  const current = s.analysis?.runs.find((r) => r.run === m.run);
  // Only the window the run waits for counts: a late or repeated measurement, or one of a run
  // that ended (or of an earlier run of the same name), closes before that.
  if (!isActive(s) || !current || Date.parse(m.to) < Date.parse(current.nextAt)) return;
  // While paused an inconclusive window changes nothing (a human decides next anyway): a quiet
  // night stores, logs and broadcasts nothing per window. Successes and failures still count.
  if (s.phase === 'Paused' && m.phase === 'Inconclusive') return;
  const spec = runSpec(s, m.run);
  const measurements = s.analysis!.measurements;
  measurements.push(m);
  if (measurements.length > MAX_MEASUREMENTS) measurements.splice(0, measurements.length - MAX_MEASUREMENTS);
  current.nextAt = new Date(Date.parse(m.to) + parseDuration(spec.interval)).toISOString();
  c.changed = true;
  const detail = m.metrics.filter((r) => r.phase === m.phase).map((r) => `${r.name}: ${r.message}`).join('; ');
  const step = s.step; // active, so a step is in force
  if (m.phase === 'Successful') current.successful++;
  else if (m.phase === 'Failed') {
    current.failed++;
    const limit = spec.failureLimit ?? 0;
    record(c, 'AnalysisFailed', `${m.run}: ${detail} (failed ${current.failed}, failureLimit ${limit})`, step);
    if (current.failed > limit) return rollBack(c, `analysis ${m.run} failed ${current.failed} times (failureLimit ${limit}): ${detail}`);
  } else {
    current.inconclusive++;
    const limit = spec.inconclusiveLimit ?? 0;
    record(c, 'AnalysisInconclusive', `${m.run}: ${detail} (inconclusive ${current.inconclusive}, inconclusiveLimit ${limit})`, step);
    if (current.inconclusive > limit) {
      hold(c, 'analysis');
      record(c, 'PausedByAnalysis', `analysis ${m.run} inconclusive ${current.inconclusive} times (inconclusiveLimit ${limit}): resume or promote to go on, or roll back`, step);
    }
  }
  if (m.run === 'background' && spec.count !== undefined && current.successful + current.failed + current.inconclusive >= spec.count) {
    endRun(s, current);
    record(c, 'AnalysisCompleted', `background analysis took its ${spec.count} measurements`, step);
  }
  run(c);
}

function endRun(s: RolloutState, run: AnalysisRun): void {
  s.analysis!.runs = s.analysis!.runs.filter((r) => r !== run);
}

function assertActive(s: RolloutState, action: string): void {
  if (!isActive(s)) throw new TransitionError('conflict', `cannot ${action} a rollout that is ${s.phase}`);
}

/** Completes steps for as long as they are done, then promotes after the last one. */
function run(c: Ctx): void {
  const { s } = c;
  while (s.phase === 'Progressing') {
    const step = s.spec.steps[s.step];
    if (step === undefined) return promoted(c, 'all steps done');
    let done: string | null = null;
    if (step.setWeight !== undefined) done = s.awaitingAck === null ? `fleet acknowledged weight ${step.setWeight}` : null;
    else if (step.setMirror !== undefined) done = s.awaitingAck === null ? `fleet acknowledged ${mirrorWhat(s)}` : null;
    else if (step.analysis !== undefined) {
      const r = s.analysis!.runs.find((x) => x.run === `step ${s.step}`)!;
      const needed = step.analysis.count ?? 1;
      done = r.successful >= needed ? `analysis passed (${r.successful} successful of ${needed} needed)` : null;
    } else if (s.pauseUntil !== null && Date.parse(s.pauseUntil) <= c.now.getTime()) done = `pause of ${step.pause.duration} elapsed`;
    if (done === null) return;
    completeStep(c, done);
  }
}

function completeStep(c: Ctx, reason: string): void {
  const { s } = c;
  s.awaitingAck = null;
  s.pauseUntil = null;
  s.pauseRemainingMs = null;
  const stepRun = s.analysis?.runs.find((r) => r.run === `step ${s.step}`);
  if (stepRun) endRun(s, stepRun);
  record(c, 'StepCompleted', `step ${s.step}: ${reason}`, s.step);
  s.step++;
  enterStep(c);
}

/** Starts the current step (if any is left); `run` then decides whether it is already done. */
function enterStep(c: Ctx): void {
  const { s } = c;
  const i = s.step;
  const step = s.spec.steps[i];
  if (step === undefined) return;
  if (step.setWeight !== undefined) {
    // Re-setting a weight the fleet already ACKed needs no new ACK: run completes it at once.
    if (step.setWeight === s.canaryWeight && s.lastAckAt !== null) return;
    setCanaryWeight(s, step.setWeight);
    awaitFleet(c);
    record(c, 'WeightSet', `step ${i}`, i);
  } else if (step.setMirror !== undefined) {
    // Like a weight: a share already in force and ACKed needs no new ACK.
    if (step.setMirror.percent === mirrorOf(s) && s.lastAckAt !== null) return;
    setMirror(s, step.setMirror.percent);
    awaitFleet(c);
    record(c, 'MirrorSet', `step ${i}: ${mirrorSetText(s)}`, i);
  } else if (step.analysis !== undefined) {
    startRun(c, `step ${i}`, step.analysis);
    record(c, 'AnalysisStarted', `step ${i}: analysis every ${step.analysis.interval} until ${step.analysis.count ?? 1} successful`, i);
  } else if (step.pause.duration !== undefined) {
    // The pause measures time the fleet has actually served the weight, so it counts from the ACK.
    const from = s.lastAckAt !== null ? Date.parse(s.lastAckAt) : c.now.getTime();
    s.pauseUntil = new Date(from + parseDuration(step.pause.duration)).toISOString();
    record(c, 'PauseStarted', `step ${i}: pause ${step.pause.duration} until ${s.pauseUntil}`, i);
  } else {
    s.phase = 'Paused';
    s.pausedBy = 'step';
    record(c, 'Paused', `step ${i}: pause until promoted`, i);
  }
}

function promoted(c: Ctx, reason: string): void {
  const { s } = c;
  if (mirrorOf(s) > 0) record(c, 'MirrorStopped', `no more copies of traffic to ${s.canary}: promoted`, s.step);
  s.phase = 'Promoted';
  s.step = s.spec.steps.length;
  s.stable = s.canary;
  s.canaryWeight = 100;
  s.weights = { [s.canary]: 100 };
  endSchedule(s);
  record(c, 'Promoted', reason);
}

function setCanaryWeight(s: RolloutState, w: number): void {
  if (w !== s.canaryWeight) forgetAck(s); // an ACK of the old weight says nothing about the new one
  s.canaryWeight = w;
  s.weights = { [s.stable]: 100 - w, [s.canary]: w };
}

function setMirror(s: RolloutState, percent: number): void {
  if (percent !== mirrorOf(s)) forgetAck(s);
  s.mirrorPercent = percent;
}

function forgetAck(s: RolloutState): void {
  s.lastAckAt = null;
  s.lastAckNodes = null;
  s.lastAckEnvoyNodes = null;
}

/** The current step waits for the fleet to ACK the routing in force. */
function awaitFleet(c: Ctx): void {
  const { s } = c;
  const mirror = mirrorOf(s);
  s.awaitingAck = { canaryWeight: s.canaryWeight, ...(mirror > 0 ? { mirrorPercent: mirror } : {}), since: c.now.toISOString() };
}

/** The share of traffic mirrored to the canary now (stored rollouts may predate the field). */
export function mirrorOf(s: RolloutState): number {
  return s.mirrorPercent ?? 0;
}

/** Whether an ACK or NACK is about the routing in force. */
function isRoutedNow(s: RolloutState, e: { canaryWeight: number; mirrorPercent?: number }): boolean {
  return e.canaryWeight === s.canaryWeight && (e.mirrorPercent ?? 0) === mirrorOf(s);
}

/** What a mirror step asks of the fleet, for history. */
function mirrorWhat(s: RolloutState): string {
  const p = mirrorOf(s);
  return p === 0 ? 'the end of mirroring' : `mirroring ${p}% of traffic to ${s.canary}`;
}

function mirrorSetText(s: RolloutState): string {
  if (mirrorOf(s) === 0) return 'mirroring stops';
  const all = s.canaryWeight === 100 ? '; the canary already takes all traffic, so nothing is copied' : '';
  return `${mirrorWhat(s)} (Envoy nodes only${all})`;
}

/** A finished rollout waits for nothing and routes no header cohorts. */
function endSchedule(s: RolloutState): void {
  s.headerRoutesActive = false;
  s.awaitingAck = null;
  s.pauseUntil = null;
  s.pausedBy = null;
  s.pauseRemainingMs = null;
  s.lastAckAt = null;
  s.lastAckNodes = null;
  s.lastAckEnvoyNodes = null;
  s.mirrorPercent = 0; // mirroring ends with the rollout
  if (s.analysis) s.analysis.runs = [];
}

function record(c: Ctx, event: string, reason: string, step?: number): void {
  c.changed = true;
  const at = c.now.toISOString();
  c.s.updatedAt = at;
  c.s.history.push({ at, event, weights: { ...c.s.weights }, by: c.by, reason: truncate(reason, MAX_REASON), ...(step === undefined ? {} : { step }) });
  const over = c.s.history.length - MAX_HISTORY;
  if (over > 0) {
    c.s.history.splice(0, over);
    c.s.historyDropped = (c.s.historyDropped ?? 0) + over;
  }
}

/** The first `max` items and how many more. */
function listOf(items: readonly string[], max: number): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 20)}… (${text.length} chars)`;
}
