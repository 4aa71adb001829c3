// The rollout state machine: pure (no I/O, time passed in), so the scheduler, the API and the
// tests all drive the same transitions. Callers hand in a state and an event and get a new
// state back; every change is explained by history entries appended in the same call.
//
// Invariants while a rollout is active (Progressing or Paused) — the current step has always
// been entered, i.e.:
//   setWeight w   → canaryWeight === w, and awaitingAck is set until the fleet ACKs w
//                   (it can be ACKed but not yet completed only while the user has paused)
//   pause {d}     → pauseUntil is set, or (user-paused) pauseRemainingMs holds what was left
//   pause {}      → phase Paused, pausedBy 'step'
import { parseDuration } from '../model/duration.js';
import type { RolloutSpec, RolloutState } from '../model/rollout.js';

export type RolloutEvent =
  | { type: 'fleetAcked'; canaryWeight: number } // fleet ACKed routes carrying this canary weight
  | { type: 'tick' } // a timer fired (time in `now`)
  | { type: 'promote'; full?: boolean }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'rollback'; reason?: string };

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
}

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
  const c = { s, now, by };
  record(c, 'Created', `rollout of ${spec.canary} over ${stable}`);
  enterStep(c);
  run(c);
  return s;
}

export function transition(state: RolloutState, event: RolloutEvent, now: Date, by: string): { state: RolloutState; changed: boolean } {
  const c: Ctx = { s: structuredClone(state), now, by };
  apply(c, event);
  // Every change records history, so a longer history is exactly "something changed";
  // otherwise hand back the caller's object so nothing needs storing or pushing.
  return c.s.history.length > state.history.length ? { state: c.s, changed: true } : { state, changed: false };
}

/** When a 'tick' is due: the end of the timed pause in force, if any. */
export function nextWakeAt(state: RolloutState): Date | null {
  return state.phase === 'Progressing' && state.pauseUntil !== null ? new Date(state.pauseUntil) : null;
}

export function isActive(state: RolloutState): boolean {
  return state.phase === 'Progressing' || state.phase === 'Paused';
}

function apply(c: Ctx, e: RolloutEvent): void {
  const { s } = c;
  switch (e.type) {
    case 'fleetAcked':
      // Only the first ACK of the weight we route counts; stale or repeated ACKs are noise.
      if (!isActive(s) || e.canaryWeight !== s.canaryWeight || s.lastAckAt !== null) return;
      s.lastAckAt = c.now.toISOString();
      s.awaitingAck = null;
      record(c, 'WeightAcked', `fleet acknowledged weight ${e.canaryWeight}`, s.step);
      return run(c);
    case 'tick':
      return run(c);
    case 'promote':
      assertActive(s, 'promote');
      if (e.full) return promoted(c, `full promotion from step ${s.step}`);
      // Leave whatever the current step waits for (pause, user pause, ACK) and go on.
      s.phase = 'Progressing';
      s.pausedBy = null;
      completeStep(c, 'promoted');
      return run(c);
    case 'pause':
      assertActive(s, 'pause');
      if (s.phase === 'Paused') return;
      s.phase = 'Paused';
      s.pausedBy = 'user';
      // Freeze a running timed pause: keep what was left, not the deadline.
      if (s.pauseUntil !== null) {
        s.pauseRemainingMs = Math.max(0, Date.parse(s.pauseUntil) - c.now.getTime());
        s.pauseUntil = null;
      }
      return record(c, 'PausedByUser', 'paused by user', s.step);
    case 'resume':
      assertActive(s, 'resume');
      if (s.phase === 'Progressing') return;
      if (s.pausedBy === 'step') throw new TransitionError('conflict', `step ${s.step} is a pause without duration: promote to go on`);
      s.phase = 'Progressing';
      s.pausedBy = null;
      if (s.pauseRemainingMs !== null) {
        s.pauseUntil = new Date(c.now.getTime() + s.pauseRemainingMs).toISOString();
        s.pauseRemainingMs = null;
      }
      record(c, 'Resumed', 'resumed by user', s.step);
      return run(c);
    case 'rollback':
      assertActive(s, 'roll back');
      s.phase = 'RolledBack';
      setCanaryWeight(s, 0);
      endSchedule(s);
      return record(c, 'RolledBack', e.reason?.trim() || 'manual rollback', s.step);
  }
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
    else if (s.pauseUntil !== null && Date.parse(s.pauseUntil) <= c.now.getTime()) done = `pause of ${step.pause.duration} elapsed`;
    if (done === null) return;
    completeStep(c, done);
  }
}

function completeStep(c: Ctx, reason: string): void {
  const { s } = c;
  s.awaitingAck = null;
  s.pauseUntil = null;
  s.pauseRemainingMs = null;
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
    s.awaitingAck = { canaryWeight: step.setWeight, since: c.now.toISOString() };
    record(c, 'WeightSet', `step ${i}`, i);
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
  s.phase = 'Promoted';
  s.step = s.spec.steps.length;
  s.stable = s.canary;
  s.canaryWeight = 100;
  s.weights = { [s.canary]: 100 };
  endSchedule(s);
  record(c, 'Promoted', reason);
}

function setCanaryWeight(s: RolloutState, w: number): void {
  if (w !== s.canaryWeight) s.lastAckAt = null; // an ACK of the old weight says nothing about the new one
  s.canaryWeight = w;
  s.weights = { [s.stable]: 100 - w, [s.canary]: w };
}

/** A finished rollout waits for nothing and routes no header cohorts. */
function endSchedule(s: RolloutState): void {
  s.headerRoutesActive = false;
  s.awaitingAck = null;
  s.pauseUntil = null;
  s.pausedBy = null;
  s.pauseRemainingMs = null;
  s.lastAckAt = null;
}

function record(c: Ctx, event: string, reason: string, step?: number): void {
  const at = c.now.toISOString();
  c.s.updatedAt = at;
  c.s.history.push({ at, event, weights: { ...c.s.weights }, by: c.by, reason, ...(step === undefined ? {} : { step }) });
}
