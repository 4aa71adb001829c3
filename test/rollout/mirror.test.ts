// setMirror steps in the pure rollout machine: the share of traffic Envoy nodes copy to the
// canary, how the fleet's ACK completes the step (so an analysis step after it judges a shadow
// in force), and that mirroring ends with the rollout. Unit tests, then properties over random
// specs and event sequences.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/model/rollout.js';
import { RolloutSpecSchema, RolloutStateSchema } from '../../src/model/rollout.js';
import type { RolloutEvent } from '../../src/rollout/machine.js';
import { createRollout, isActive, mirrorOf, nextWakeAt, transition, TransitionError } from '../../src/rollout/machine.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms);
const iso = (ms: number) => at(ms).toISOString();
const S = 1000;
const M = 60 * S;

const create = (steps: unknown[], extra: object = {}) =>
  createRollout('r1', RolloutSpecSchema.parse({ service: 'echo', canary: 'v2', steps, ...extra }), 'v1', at(0), 'alice');

function step(state: RolloutState, event: RolloutEvent, ms: number, by = 'fleet'): RolloutState {
  const r = transition(state, event, at(ms), by);
  expect(r.changed).toBe(true);
  return r.state;
}

function unchanged(state: RolloutState, event: RolloutEvent, ms: number): void {
  expect(transition(state, event, at(ms), 'fleet')).toEqual({ state, changed: false });
}

/** The ACK the scheduler sends for routes carrying this weight and mirror share. */
const ack = (canaryWeight: number, mirrorPercent = 0, nodes = 3, envoyNodes?: number): RolloutEvent => ({
  type: 'fleetAcked',
  canaryWeight,
  ...(mirrorPercent ? { mirrorPercent } : {}),
  nodes,
  ...(envoyNodes === undefined ? {} : { envoyNodes }),
});
const events = (s: RolloutState) => s.history.map((h) => h.event);

const SHADOW = [
  { setMirror: { percent: 100 } },
  { analysis: { interval: '30s', count: 2, metrics: [{ name: 'success', successRate: { min: 0.99 } }] } },
  { setMirror: { percent: 0 } },
  { setWeight: 20 },
  { pause: {} },
];

describe('a setMirror step', () => {
  it('sets the share, keeps the weight, and waits for the fleet to ACK the routes that carry it', () => {
    const s = create(SHADOW);
    expect(s).toMatchObject({ step: 0, phase: 'Progressing', canaryWeight: 0, weights: { v1: 100, v2: 0 }, mirrorPercent: 100, awaitingAck: { canaryWeight: 0, mirrorPercent: 100, since: iso(0) } });
    expect(s.history.at(-1)).toEqual({ at: iso(0), event: 'MirrorSet', weights: { v1: 100, v2: 0 }, by: 'alice', reason: 'step 0: mirroring 100% of traffic to v2 (Envoy nodes only)', step: 0 });
    expect(s.analysis!.runs).toEqual([]); // the analysis step has not started: the shadow is not in force yet
    expect(RolloutStateSchema.safeParse(s).success).toBe(true);
  });

  it('completes on the ACK, which says how many of the service’s nodes are Envoys; the analysis step starts only then', () => {
    let s = create(SHADOW);
    unchanged(s, ack(0), S); // routes without the mirror say nothing about it
    unchanged(s, ack(0, 50), S);
    unchanged(s, { type: 'tick' }, 10 * M);
    s = step(s, ack(0, 100, 3, 2), 2 * S);
    expect(s.history.slice(2).map((h) => [h.event, h.reason])).toEqual([
      ['MirrorAcked', "3 nodes of the service acknowledged mirroring 100% of traffic to v2 (Envoy nodes only; 2 of the service's 3 nodes are Envoys)"],
      ['StepCompleted', 'step 0: fleet acknowledged mirroring 100% of traffic to v2'],
      ['AnalysisStarted', 'step 1: analysis every 30s until 2 successful'],
    ]);
    expect(s).toMatchObject({ step: 1, mirrorPercent: 100, awaitingAck: null, lastAckAt: iso(2 * S), lastAckNodes: 3, lastAckEnvoyNodes: 2 });
    expect(s.analysis!.runs).toMatchObject([{ run: 'step 1', startedAt: iso(2 * S) }]);
    unchanged(s, ack(0, 100), 3 * S); // repeated
  });

  it('words the ACK for one Envoy, for an unknown count, and for no node at all', () => {
    const reason = (e: RolloutEvent) => step(create(SHADOW), e, S).history.find((h) => h.event === 'MirrorAcked')!.reason;
    expect(reason(ack(0, 100, 2, 1))).toMatch(/\(Envoy nodes only; 1 of the service's 2 nodes is an Envoy\)$/);
    expect(reason(ack(0, 100, 2, 0))).toMatch(/\(Envoy nodes only; 0 of the service's 2 nodes are Envoys\)$/);
    expect(reason(ack(0, 100, 1))).toMatch(/acknowledged mirroring 100% of traffic to v2 \(Envoy nodes only\)$/);
    expect(reason(ack(0, 100, 0))).toBe('mirroring 100% of traffic to v2 counts as acknowledged, but no node of the service is connected (set minNodes to wait for nodes)');
  });

  it('0 stops mirroring (also waiting for the ACK); a later weight step keeps a share in force', () => {
    let s = step(create([{ setMirror: { percent: 12.5 } }, { setWeight: 10 }, { setMirror: { percent: 0 } }, { pause: {} }]), ack(0, 12.5), S);
    expect(s).toMatchObject({ step: 1, canaryWeight: 10, mirrorPercent: 12.5, awaitingAck: { canaryWeight: 10, mirrorPercent: 12.5 } });
    unchanged(s, ack(10), 2 * S);
    s = step(s, ack(10, 12.5), 2 * S);
    expect(s).toMatchObject({ step: 2, mirrorPercent: 0, awaitingAck: { canaryWeight: 10, since: iso(2 * S) }, lastAckAt: null });
    expect(s.awaitingAck).not.toHaveProperty('mirrorPercent');
    expect(s.history.at(-1)!.reason).toBe('step 2: mirroring stops');
    unchanged(s, ack(10, 12.5), 3 * S);
    s = step(s, ack(10), 3 * S);
    expect(s).toMatchObject({ step: 3, phase: 'Paused', mirrorPercent: 0 });
    expect(s.history.filter((h) => h.event === 'MirrorAcked').at(-1)!.reason).toBe('3 nodes of the service acknowledged the end of mirroring');
  });

  it('completes at once when the share is already in force and ACKed', () => {
    let s = step(create([{ setMirror: { percent: 5 } }, { setMirror: { percent: 5 } }, { setMirror: { percent: 0 } }]), ack(0, 5), S);
    expect(s).toMatchObject({ step: 2, mirrorPercent: 0 });
    expect(events(s).filter((e) => e === 'MirrorSet')).toHaveLength(2);
    // Stopping a mirror that never started needs nothing either.
    s = step(create([{ setWeight: 5 }, { setMirror: { percent: 0 } }, { pause: {} }]), ack(5), S);
    expect(s).toMatchObject({ step: 2, phase: 'Paused' });
    expect(events(s)).not.toContain('MirrorSet');
  });

  it('a timed pause after it counts from the ACK: time the shadow really ran', () => {
    let s = create([{ setMirror: { percent: 50 } }, { pause: { duration: '10m' } }, { setWeight: 5 }]);
    s = step(s, ack(0, 50), 30 * S);
    expect(s).toMatchObject({ step: 1, pauseUntil: iso(30 * S + 10 * M) });
    expect(nextWakeAt(s)).toEqual(at(30 * S + 10 * M));
  });

  it('says when the canary already takes all traffic and nothing is copied', () => {
    const s = step(create([{ setWeight: 100 }, { setMirror: { percent: 10 } }]), ack(100), S);
    expect(s.history.at(-1)!.reason).toBe('step 1: mirroring 10% of traffic to v2 (Envoy nodes only; the canary already takes all traffic, so nothing is copied)');
  });
});

describe('a fleet that rejects the mirror', () => {
  it('pauses the step, naming the share; resume waits for the ACK again', () => {
    let s = create(SHADOW);
    unchanged(s, { type: 'fleetRejected', canaryWeight: 0, nodes: ['edge-1'], message: 'x' }, S); // about other routes
    s = step(s, { type: 'fleetRejected', canaryWeight: 0, mirrorPercent: 100, nodes: ['edge-1'], message: 'unknown cluster' }, S);
    expect(s).toMatchObject({ phase: 'Paused', pausedBy: 'fleet', mirrorPercent: 100, awaitingAck: { mirrorPercent: 100 } });
    expect(s.history.at(-1)!.reason).toBe('edge-1 rejected the routes for weight 0 with mirroring 100%: unknown cluster');
    s = step(s, { type: 'resume' }, 2 * S, 'bob');
    expect(s).toMatchObject({ phase: 'Progressing', step: 0 });
    s = step(s, ack(0, 100), 3 * S);
    expect(s.step).toBe(1);
  });
});

describe('mirroring ends with the rollout', () => {
  it('a rollback stops it, says so, and sends everything to stable', () => {
    const s = step(step(create(SHADOW), ack(0, 100), S), { type: 'rollback', reason: 'shadow errors' }, 2 * S, 'analysis');
    expect(s).toMatchObject({ phase: 'RolledBack', mirrorPercent: 0, canaryWeight: 0, awaitingAck: null, lastAckEnvoyNodes: null });
    expect(s.history.slice(-2).map((h) => [h.event, h.reason, h.by])).toEqual([
      ['MirrorStopped', 'no more copies of traffic to v2: rolled back', 'analysis'],
      ['RolledBack', 'shadow errors', 'analysis'],
    ]);
    // No user ever reached the canary: every entry routed it 0%.
    expect(s.history.every((h) => h.weights.v2 === 0)).toBe(true);
  });

  it('a promotion stops it (full, or when the last step completes)', () => {
    const full = step(create(SHADOW), { type: 'promote', full: true }, S, 'bob');
    expect(full).toMatchObject({ phase: 'Promoted', mirrorPercent: 0, weights: { v2: 100 } });
    expect(events(full).slice(-2)).toEqual(['MirrorStopped', 'Promoted']);
    const last = step(create([{ setWeight: 50 }, { setMirror: { percent: 10 } }]), ack(50), S);
    expect(step(last, ack(50, 10), 2 * S)).toMatchObject({ phase: 'Promoted', mirrorPercent: 0 });
  });

  it('pauses and resumes keep it; a finished rollout ignores late ACKs', () => {
    let s = step(create(SHADOW), ack(0, 100), S);
    s = step(s, { type: 'pause' }, 2 * S, 'bob');
    expect(s).toMatchObject({ phase: 'Paused', mirrorPercent: 100 });
    s = step(s, { type: 'resume' }, 3 * S, 'bob');
    expect(s).toMatchObject({ phase: 'Progressing', mirrorPercent: 100 });
    const done = step(s, { type: 'rollback' }, 4 * S, 'bob');
    unchanged(done, ack(0, 100), 5 * S);
    unchanged(done, ack(0), 5 * S);
    expect(() => transition(done, { type: 'resume' }, at(5 * S), 'bob')).toThrow(TransitionError);
  });

  it('a rollout stored before mirroring existed (no mirrorPercent) reads as mirroring nothing and still takes its ACKs', () => {
    const { mirrorPercent: _, ...old } = create([{ setWeight: 5 }, { pause: {} }]);
    expect(mirrorOf(old)).toBe(0);
    expect(step(old, ack(5), S)).toMatchObject({ step: 1, phase: 'Paused' });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over random specs mixing weights, mirror shares, pauses and analysis steps.

const mirrorArb = fc.constantFrom(0, 0.01, 5, 12.5, 50, 100).map((percent) => ({ setMirror: { percent } }));
const stepArb = fc.oneof(
  fc.integer({ min: 0, max: 100 }).map((setWeight) => ({ setWeight })),
  mirrorArb,
  fc.constant({ pause: {} }),
  fc.constantFrom('30s', '5m').map((duration) => ({ pause: { duration } })),
  fc.constant({ analysis: { interval: '30s', metrics: [{ name: 's', successRate: { min: 0.9 } }] } }),
);
const specArb = fc.array(stepArb, { minLength: 1, maxLength: 8 }).map((steps) => {
  // Weights only rise in a real spec; sorting keeps that without constraining mirrors.
  const weights = steps.flatMap((s) => ('setWeight' in s ? [s.setWeight] : [])).sort((a, b) => a - b);
  return RolloutSpecSchema.parse({ service: 'echo', canary: 'v2', steps: steps.map((s) => ('setWeight' in s ? { setWeight: weights.shift()! } : s)) });
});

/** 'ackNow' is an ACK of the routing in force; measurements judge the run in force. */
type DriverEvent = RolloutEvent | { type: 'ackNow' } | { type: 'measure'; phase: 'Successful' | 'Failed' };
const eventArb: fc.Arbitrary<DriverEvent> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ type: 'ackNow' as const }) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 100 }), fc.constantFrom(0, 5, 100)).map(([w, p]) => ack(w, p)) },
  { weight: 3, arbitrary: fc.constant({ type: 'tick' as const }) },
  { weight: 3, arbitrary: fc.constantFrom('Successful' as const, 'Failed' as const).map((phase) => ({ type: 'measure' as const, phase })) },
  { weight: 2, arbitrary: fc.boolean().map((full) => ({ type: 'promote' as const, ...(full ? { full } : {}) })) },
  { weight: 1, arbitrary: fc.constant({ type: 'pause' as const }) },
  { weight: 1, arbitrary: fc.constant({ type: 'resume' as const }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 100).map((p): RolloutEvent => ({ type: 'fleetRejected', canaryWeight: 0, mirrorPercent: p, nodes: ['n'], message: 'no' })) },
  { weight: 1, arbitrary: fc.constant({ type: 'rollback' as const }) },
);

function concrete(s: RolloutState, e: DriverEvent, now: number): RolloutEvent {
  if (e.type === 'ackNow') return ack(s.canaryWeight, mirrorOf(s));
  if (e.type !== 'measure') return e;
  const run = s.analysis?.runs[0];
  const measurement = { run: run?.run ?? 'step 0', from: iso(now - 30 * S), to: run?.nextAt ?? iso(now), phase: e.phase, requests: {}, metrics: [] };
  return { type: 'analysisMeasured', measurement };
}

function checkMirrorInvariants(s: RolloutState): void {
  const mirror = mirrorOf(s);
  expect(mirror).toBeGreaterThanOrEqual(0);
  expect(mirror).toBeLessThanOrEqual(100);
  if (!isActive(s)) {
    expect(mirror).toBe(0);
    return;
  }
  const cur = s.spec.steps[s.step]!;
  if (cur.setMirror) expect(mirror).toBe(cur.setMirror.percent);
  // The share in force is the last setMirror step entered (0 before any).
  const entered = s.spec.steps.slice(0, s.step + 1).filter((x) => x.setMirror).at(-1);
  expect(mirror).toBe(entered?.setMirror?.percent ?? 0);
  if (s.awaitingAck) expect([s.awaitingAck.canaryWeight, s.awaitingAck.mirrorPercent ?? 0]).toEqual([s.canaryWeight, mirror]);
  if (s.awaitingAck) expect(s.lastAckAt).toBeNull();
}

describe('properties', () => {
  it('over any event sequence: the share is the last mirror step’s, ACKs match the routing, a finished rollout mirrors nothing, history explains every change', () => {
    fc.assert(
      fc.property(specArb, fc.array(fc.tuple(eventArb, fc.integer({ min: 0, max: 5 * M })), { maxLength: 40 }), (spec, driver) => {
        let s = createRollout('r', spec, 'v1', at(0), 'creator');
        checkMirrorInvariants(s);
        let now = 0;
        for (const [raw, dt] of driver) {
          now += dt;
          const e = concrete(s, raw, now);
          let next: RolloutState;
          try {
            next = transition(s, e, at(now), 'driver').state;
          } catch (err) {
            expect(err).toBeInstanceOf(TransitionError);
            continue;
          }
          checkMirrorInvariants(next);
          if (mirrorOf(next) !== mirrorOf(s)) {
            const added = next.history.slice(s.history.length - (next.historyDropped ?? 0) + (s.historyDropped ?? 0)).map((h) => h.event);
            expect(added.some((x) => x === 'MirrorSet' || x === 'MirrorStopped'), added.join()).toBe(true);
          }
          s = next;
        }
      }),
      { numRuns: 500 },
    );
  });

  it('with a cooperative fleet, every analysis step after a routing step starts only once the routing in force was ACKed', () => {
    fc.assert(
      fc.property(specArb, (spec) => {
        let now = 0;
        let s = createRollout('r', spec, 'v1', at(now), 'c');
        for (let i = 0; isActive(s) && i < 100; i++) {
          const wake = nextWakeAt(s);
          const run = s.analysis?.runs.find((r) => r.run === `step ${s.step}`);
          let e: RolloutEvent;
          if (s.awaitingAck) e = ack(s.awaitingAck.canaryWeight, s.awaitingAck.mirrorPercent ?? 0);
          else if (run) e = { type: 'analysisMeasured', measurement: { run: run.run, from: run.startedAt, to: run.nextAt, phase: 'Successful', requests: {}, metrics: [] } };
          else if (wake) e = { type: 'tick' };
          else e = { type: 'promote' }; // an indefinite pause
          now = Math.max(now + 1, wake ? wake.getTime() - T0 : 0, run ? Date.parse(run.nextAt) - T0 : 0);
          const before = s;
          s = transition(s, e, at(now), 'c').state;
          for (const h of s.history.slice(before.history.length).filter((x) => x.event === 'AnalysisStarted')) {
            const routingBefore = spec.steps.slice(0, h.step).some((x) => x.setWeight !== undefined || x.setMirror !== undefined);
            if (routingBefore) expect(s.lastAckAt, `step ${h.step}`).not.toBeNull();
          }
        }
        expect(s.phase).toBe('Promoted');
        expect(mirrorOf(s)).toBe(0);
      }),
    );
  });
});
