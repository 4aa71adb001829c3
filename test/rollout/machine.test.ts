import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RolloutSpecSchema, type RolloutSpec, type RolloutState } from '../../src/model/rollout.js';
import { createRollout, isActive, MAX_HISTORY, MAX_REASON, nextWakeAt, transition, TransitionError, type RolloutEvent } from '../../src/rollout/machine.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms);
const iso = (ms: number) => at(ms).toISOString();
const S = 1000;
const M = 60 * S;

function spec(steps: unknown[], extra: object = {}): RolloutSpec {
  return RolloutSpecSchema.parse({ service: 'echo', canary: 'v2', steps, ...extra });
}

const create = (steps: unknown[], ms = 0, extra: object = {}) => createRollout('r1', spec(steps, extra), 'v1', at(ms), 'alice');

/** Applies the event and expects a change. */
function step(state: RolloutState, event: RolloutEvent, ms: number, by = 'schedule'): RolloutState {
  const r = transition(state, event, at(ms), by);
  expect(r.changed).toBe(true);
  return r.state;
}

function unchanged(state: RolloutState, event: RolloutEvent, ms: number): void {
  const r = transition(state, event, at(ms), 'schedule');
  expect(r).toEqual({ state, changed: false });
  expect(r.state).toBe(state);
}

const events = (s: RolloutState) => s.history.map((h) => h.event);
const ack = (w: number, nodes = 1): RolloutEvent => ({ type: 'fleetAcked', canaryWeight: w, nodes });

describe('createRollout', () => {
  it('starts the first step and records who created it', () => {
    const s = create([{ setWeight: 5 }, { pause: {} }]);
    expect(s).toMatchObject({
      id: 'r1',
      service: 'echo',
      stable: 'v1',
      canary: 'v2',
      phase: 'Progressing',
      step: 0,
      canaryWeight: 5,
      weights: { v1: 95, v2: 5 },
      headerRoutesActive: true,
      awaitingAck: { canaryWeight: 5, since: iso(0) },
      pauseUntil: null,
      pausedBy: null,
      pauseRemainingMs: null,
      lastAckAt: null,
      createdAt: iso(0),
      updatedAt: iso(0),
    });
    expect(s.history).toEqual([
      { at: iso(0), event: 'Created', weights: { v1: 100, v2: 0 }, by: 'alice', reason: 'rollout of v2 over v1' },
      { at: iso(0), event: 'WeightSet', weights: { v1: 95, v2: 5 }, by: 'alice', reason: 'step 0', step: 0 },
    ]);
    expect(nextWakeAt(s)).toBeNull();
    expect(isActive(s)).toBe(true);
  });

  it('waits for an ACK even when the first weight is 0', () => {
    const s = create([{ setWeight: 0 }]);
    expect(s.awaitingAck).toEqual({ canaryWeight: 0, since: iso(0) });
    expect(step(s, ack(0), 1).phase).toBe('Promoted');
  });

  it('with a first timed pause counts from now, as no weight was ACKed yet', () => {
    const s = create([{ pause: { duration: '30s' } }]);
    expect(s.pauseUntil).toBe(iso(30 * S));
    expect(nextWakeAt(s)).toEqual(at(30 * S));
  });

  it('with a first indefinite pause is Paused by the step', () => {
    const s = create([{ pause: {} }]);
    expect(s).toMatchObject({ phase: 'Paused', pausedBy: 'step' });
    expect(events(s)).toEqual(['Created', 'Paused']);
  });

  it('refuses a canary that is already stable', () => {
    expect(() => createRollout('r1', spec([{ setWeight: 1 }]), 'v2', at(0), 'a')).toThrow(TransitionError);
  });

  it('copies the spec rather than keeping the caller’s object', () => {
    const sp = spec([{ setWeight: 5 }]);
    const s = createRollout('r1', sp, 'v1', at(0), 'a');
    expect(s.spec).toEqual(sp);
    expect(s.spec).not.toBe(sp);
  });
});

describe('setWeight steps', () => {
  it('complete when the fleet ACKs that weight, then the next step starts', () => {
    let s = create([{ setWeight: 5 }, { setWeight: 20 }]);
    s = step(s, ack(5), 10 * S);
    expect(s).toMatchObject({ step: 1, canaryWeight: 20, weights: { v1: 80, v2: 20 }, awaitingAck: { canaryWeight: 20, since: iso(10 * S) }, lastAckAt: null });
    expect(s.history.slice(2).map((h) => [h.event, h.reason, h.by, h.step])).toEqual([
      ['WeightAcked', '1 node of the service acknowledged weight 5', 'schedule', 0],
      ['StepCompleted', 'step 0: fleet acknowledged weight 5', 'schedule', 0],
      ['WeightSet', 'step 1', 'schedule', 1],
    ]);
    expect(s.updatedAt).toBe(iso(10 * S));
  });

  it('ignore ACKs of another weight, and repeated ACKs', () => {
    let s = create([{ setWeight: 5 }, { pause: {} }]);
    unchanged(s, ack(0), 1);
    unchanged(s, ack(50), 1);
    s = step(s, ack(5), 2);
    expect(s.lastAckAt).toBe(iso(2));
    unchanged(s, ack(5), 3);
  });

  it('ignore ticks while waiting for an ACK', () => {
    unchanged(create([{ setWeight: 5 }]), { type: 'tick' }, 10 * M);
  });

  it('complete at once when re-setting a weight the fleet already ACKed', () => {
    let s = create([{ setWeight: 5 }, { setWeight: 5 }, { setWeight: 7 }]);
    s = step(s, ack(5), 1);
    expect(s).toMatchObject({ step: 2, canaryWeight: 7 });
    expect(events(s).filter((e) => e === 'WeightSet')).toHaveLength(2);
  });

  it('promote the rollout when the last step is done', () => {
    let s = create([{ setWeight: 50 }]);
    s = step(s, ack(50), 5);
    expect(s).toMatchObject({
      phase: 'Promoted',
      step: 1,
      stable: 'v2',
      canary: 'v2',
      canaryWeight: 100,
      weights: { v2: 100 },
      headerRoutesActive: false,
      awaitingAck: null,
      pauseUntil: null,
      lastAckAt: null,
    });
    expect(s.history.at(-1)).toMatchObject({ event: 'Promoted', reason: 'all steps done', weights: { v2: 100 } });
    expect(isActive(s)).toBe(false);
    expect(nextWakeAt(s)).toBeNull();
  });

  it('keep both keys at weight 100 until promoted', () => {
    let s = create([{ setWeight: 100 }, { pause: {} }]);
    expect(s.weights).toEqual({ v1: 0, v2: 100 });
    s = step(s, ack(100), 1);
    expect(s).toMatchObject({ phase: 'Paused', weights: { v1: 0, v2: 100 } });
  });
});

describe('timed pauses', () => {
  const steps = [{ setWeight: 5 }, { pause: { duration: '2m' } }, { setWeight: 20 }];

  it('count from the ACK of the weight before them, and end on a tick at the deadline', () => {
    let s = step(create(steps), ack(5), 10 * S);
    expect(s).toMatchObject({ step: 1, phase: 'Progressing', pauseUntil: iso(10 * S + 2 * M) });
    expect(s.history.at(-1)).toMatchObject({ event: 'PauseStarted', step: 1 });
    expect(nextWakeAt(s)).toEqual(at(10 * S + 2 * M));
    unchanged(s, { type: 'tick' }, 10 * S + 2 * M - 1);
    s = step(s, { type: 'tick' }, 10 * S + 2 * M);
    expect(s).toMatchObject({ step: 2, canaryWeight: 20, pauseUntil: null });
    expect(s.history.at(-2)).toMatchObject({ event: 'StepCompleted', reason: 'step 1: pause of 2m elapsed' });
  });

  it('a late tick finishes the pause and runs on as far as possible', () => {
    let s = create([{ pause: { duration: '1m' } }, { pause: { duration: '1m' } }, { setWeight: 10 }]);
    s = step(s, { type: 'tick' }, 10 * M);
    // The second pause had no new ACK to count from (weight 0 was never ACKed), so it starts now.
    expect(s).toMatchObject({ step: 1, pauseUntil: iso(11 * M) });
  });

  it('count from an earlier ACK, so one already served long enough ends at once', () => {
    // ACK recorded while the user paused, resumed later: the weight was served all that time.
    let s = create(steps);
    s = step(s, { type: 'pause' }, 0, 'bob');
    s = step(s, ack(5), 1 * S);
    expect(s).toMatchObject({ step: 0, phase: 'Paused', lastAckAt: iso(S) });
    s = step(s, { type: 'resume' }, 5 * M, 'bob');
    expect(s).toMatchObject({ step: 2, canaryWeight: 20, phase: 'Progressing' });
  });
});

describe('indefinite pauses', () => {
  it('stay Paused until promoted; ticks and resume do not end them', () => {
    let s = step(create([{ setWeight: 5 }, { pause: {} }, { setWeight: 20 }]), ack(5), 1);
    expect(s).toMatchObject({ phase: 'Paused', pausedBy: 'step', step: 1 });
    expect(s.history.at(-1)).toMatchObject({ event: 'Paused', reason: 'step 1: pause until promoted' });
    unchanged(s, { type: 'tick' }, 100 * M);
    expect(() => transition(s, { type: 'resume' }, at(2), 'bob')).toThrow(expect.objectContaining({ code: 'conflict', name: 'TransitionError' }));
    unchanged(s, { type: 'pause' }, 3);
    s = step(s, { type: 'promote' }, 4, 'bob');
    expect(s).toMatchObject({ phase: 'Progressing', pausedBy: null, step: 2, canaryWeight: 20 });
    expect(s.history.at(-2)).toMatchObject({ event: 'StepCompleted', reason: 'step 1: promoted', by: 'bob' });
  });
});

describe('promote', () => {
  it('leaves a timed pause early', () => {
    let s = step(create([{ setWeight: 5 }, { pause: { duration: '1h' } }, { setWeight: 20 }]), ack(5), 0);
    s = step(s, { type: 'promote' }, M, 'bob');
    expect(s).toMatchObject({ step: 2, pauseUntil: null, canaryWeight: 20 });
  });

  it('leaves a user pause and the step it froze', () => {
    let s = step(create([{ setWeight: 5 }, { pause: { duration: '1h' } }, { setWeight: 20 }]), ack(5), 0);
    s = step(s, { type: 'pause' }, M, 'bob');
    s = step(s, { type: 'promote' }, 2 * M, 'bob');
    expect(s).toMatchObject({ phase: 'Progressing', pausedBy: null, pauseRemainingMs: null, step: 2, canaryWeight: 20 });
  });

  it('stops waiting for an ACK; a following timed pause then starts now', () => {
    let s = create([{ setWeight: 5 }, { pause: { duration: '1m' } }]);
    s = step(s, { type: 'promote' }, 10 * S, 'bob');
    expect(s).toMatchObject({ step: 1, awaitingAck: null, pauseUntil: iso(10 * S + M) });
    // The late ACK is still recorded.
    s = step(s, ack(5), 20 * S);
    expect(s.lastAckAt).toBe(iso(20 * S));
  });

  it('of the last step promotes the rollout', () => {
    const s = step(create([{ setWeight: 5 }, { pause: {} }]), ack(5), 0);
    expect(step(s, { type: 'promote' }, 1, 'bob')).toMatchObject({ phase: 'Promoted', stable: 'v2', weights: { v2: 100 } });
  });

  it('full skips every remaining step', () => {
    const s = create([{ setWeight: 5 }, { pause: {} }, { setWeight: 50 }], 0, { headerRoutes: [] });
    const p = step(s, { type: 'promote', full: true }, 1, 'bob');
    expect(p).toMatchObject({ phase: 'Promoted', step: 3, stable: 'v2', canaryWeight: 100, weights: { v2: 100 }, headerRoutesActive: false, awaitingAck: null });
    expect(p.history.at(-1)).toMatchObject({ event: 'Promoted', reason: 'full promotion from step 0', by: 'bob', weights: { v2: 100 } });
  });
});

describe('user pause and resume', () => {
  it('freeze a timed pause with the time it had left, and resume restores it', () => {
    let s = step(create([{ setWeight: 5 }, { pause: { duration: '10m' } }, { setWeight: 20 }]), ack(5), 0);
    s = step(s, { type: 'pause' }, 4 * M, 'bob');
    expect(s).toMatchObject({ phase: 'Paused', pausedBy: 'user', pauseUntil: null, pauseRemainingMs: 6 * M });
    expect(s.history.at(-1)).toMatchObject({ event: 'PausedByUser', by: 'bob', reason: 'paused by user', step: 1 });
    expect(nextWakeAt(s)).toBeNull();
    unchanged(s, { type: 'tick' }, 20 * M);
    unchanged(s, { type: 'pause' }, 21 * M);
    s = step(s, { type: 'resume' }, 30 * M, 'bob');
    expect(s).toMatchObject({ phase: 'Progressing', pausedBy: null, pauseRemainingMs: null, pauseUntil: iso(36 * M) });
    expect(s.history.at(-1)).toMatchObject({ event: 'Resumed', by: 'bob' });
    unchanged(s, { type: 'tick' }, 36 * M - 1);
    expect(step(s, { type: 'tick' }, 36 * M)).toMatchObject({ step: 2 });
  });

  it('a pause whose deadline had already passed ends on resume', () => {
    let s = step(create([{ pause: { duration: '1m' } }, { setWeight: 20 }]), { type: 'pause' }, 2 * M, 'bob');
    expect(s.pauseRemainingMs).toBe(0);
    s = step(s, { type: 'resume' }, 3 * M, 'bob');
    expect(s).toMatchObject({ step: 1, canaryWeight: 20 });
  });

  it('hold a setWeight step after its ACK until resumed', () => {
    let s = step(create([{ setWeight: 5 }, { setWeight: 20 }]), { type: 'pause' }, 0, 'bob');
    s = step(s, ack(5), 1);
    expect(s).toMatchObject({ phase: 'Paused', step: 0, awaitingAck: null, lastAckAt: iso(1), canaryWeight: 5 });
    s = step(s, { type: 'resume' }, 2, 'bob');
    expect(s).toMatchObject({ phase: 'Progressing', step: 1, canaryWeight: 20 });
  });

  it('resume while Progressing does nothing', () => {
    unchanged(create([{ setWeight: 5 }]), { type: 'resume' }, 1);
  });
});

describe('rollback', () => {
  it.each<[string, (s: RolloutState) => RolloutState]>([
    ['Progressing', (s) => s],
    ['Paused by a step', (s) => step(s, ack(30), 1)],
    ['Paused by the user', (s) => step(s, { type: 'pause' }, 1)],
  ])('from %s sends everything to stable at once', (_, prepare) => {
    const s = prepare(createRollout('r1', spec([{ setWeight: 30 }, { pause: {} }], { headerRoutes: [{ name: 't', match: [{ header: 'x', present: true }] }] }), 'v1', at(0), 'a'));
    const r = step(s, { type: 'rollback', reason: 'errors up' }, 5, 'bob');
    expect(r).toMatchObject({
      phase: 'RolledBack',
      stable: 'v1',
      canaryWeight: 0,
      weights: { v1: 100, v2: 0 },
      headerRoutesActive: false,
      awaitingAck: null,
      pauseUntil: null,
      pausedBy: null,
      pauseRemainingMs: null,
    });
    expect(r.history.at(-1)).toMatchObject({ event: 'RolledBack', reason: 'errors up', by: 'bob', weights: { v1: 100, v2: 0 } });
  });

  it('without a reason says it was manual', () => {
    expect(step(create([{ setWeight: 5 }]), { type: 'rollback', reason: '  ' }, 1).history.at(-1)?.reason).toBe('manual rollback');
  });
});

describe('finished rollouts', () => {
  const promoted = () => step(create([{ setWeight: 5 }]), ack(5), 1);
  const rolledBack = () => step(create([{ setWeight: 5 }]), { type: 'rollback' }, 1);

  it.each([
    ['Promoted', promoted],
    ['RolledBack', rolledBack],
  ])('%s: actions conflict, timers and ACKs are ignored', (_, make) => {
    const s = make();
    for (const e of [{ type: 'promote' }, { type: 'promote', full: true }, { type: 'pause' }, { type: 'resume' }, { type: 'rollback' }] as RolloutEvent[]) {
      expect(() => transition(s, e, at(2), 'bob')).toThrow(TransitionError);
    }
    for (const e of [{ type: 'tick' }, ack(0), ack(5), ack(100)] as RolloutEvent[]) unchanged(s, e, 2);
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests over random valid specs with non-decreasing weights and random event sequences.

const nameArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,10}$/);
const pauseArb = fc.oneof(
  fc.constant({ pause: {} }),
  fc.constantFrom('250ms', '30s', '1m', '5m', '1h30m').map((duration) => ({ pause: { duration } })),
);
const specArb = fc
  .record({
    service: nameArb,
    names: fc.uniqueArray(nameArb, { minLength: 2, maxLength: 2 }),
    steps: fc.array(fc.oneof(fc.integer({ min: 0, max: 100 }).map((setWeight) => ({ setWeight })), pauseArb), { minLength: 1, maxLength: 8 }),
  })
  .map(({ service, names, steps }) => {
    // Sort the weights in step order so the spec only ever raises the canary's weight.
    const weights = steps.flatMap((s) => ('setWeight' in s ? [s.setWeight] : [])).sort((a, b) => a - b);
    const sorted = steps.map((s) => ('setWeight' in s ? { setWeight: weights.shift()! } : s));
    return { stable: names[0]!, spec: { service, canary: names[1]!, steps: sorted } };
  });

/** 'ackCurrent' becomes an ACK of the weight routed at that moment, so ACKs often matter. */
type DriverEvent = RolloutEvent | { type: 'ackCurrent' };
const eventArb: fc.Arbitrary<DriverEvent> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ type: 'ackCurrent' as const }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 100 }).map((w) => ack(w)) },
  { weight: 5, arbitrary: fc.constant({ type: 'tick' as const }) },
  { weight: 2, arbitrary: fc.boolean().map((full) => ({ type: 'promote' as const, ...(full ? { full } : {}) })) },
  { weight: 2, arbitrary: fc.constant({ type: 'pause' as const }) },
  { weight: 2, arbitrary: fc.constant({ type: 'resume' as const }) },
  { weight: 1, arbitrary: fc.option(fc.string(), { nil: undefined }).map((reason) => ({ type: 'rollback' as const, ...(reason === undefined ? {} : { reason }) })) },
);
const runArb = fc.record({
  rollout: specArb,
  events: fc.array(fc.tuple(eventArb, fc.integer({ min: 0, max: 20 * M })), { maxLength: 40 }),
});

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    Object.values(o).forEach(deepFreeze);
    Object.freeze(o);
  }
  return o;
}

function checkInvariants(s: RolloutState): void {
  const w = Object.values(s.weights);
  expect(w.reduce((a, b) => a + b, 0)).toBe(100);
  expect(Object.keys(s.weights).sort()).toEqual([...new Set([s.stable, s.canary])].sort());
  expect(s.weights[s.canary]).toBe(s.canaryWeight);
  expect(s.step).toBeGreaterThanOrEqual(0);
  expect(s.step).toBeLessThanOrEqual(s.spec.steps.length);
  for (const h of s.history) {
    expect(h.event).not.toBe('');
    expect(h.reason.trim()).not.toBe('');
    expect(Object.values(h.weights).reduce((a, b) => a + b, 0)).toBe(100);
  }
  if (isActive(s)) {
    expect(s.step).toBeLessThan(s.spec.steps.length);
    expect(s.stable).not.toBe(s.canary);
    const cur = s.spec.steps[s.step]!;
    if (cur.setWeight !== undefined) expect(s.canaryWeight).toBe(cur.setWeight);
    if (s.awaitingAck) expect(s.awaitingAck.canaryWeight).toBe(s.canaryWeight);
    expect(s.phase === 'Paused').toBe(s.pausedBy !== null);
    if (s.pausedBy === 'step') expect(cur.pause && cur.pause.duration === undefined).toBe(true);
    if (s.pauseUntil !== null || s.pauseRemainingMs !== null) expect(cur.pause?.duration).toBeDefined();
    expect(nextWakeAt(s) !== null).toBe(s.phase === 'Progressing' && s.pauseUntil !== null);
  } else {
    expect(s.headerRoutesActive).toBe(false);
    expect([s.awaitingAck, s.pauseUntil, s.pausedBy, s.pauseRemainingMs, nextWakeAt(s)]).toEqual([null, null, null, null, null]);
    if (s.phase === 'Promoted') expect([s.stable, s.canaryWeight, s.step]).toEqual([s.canary, 100, s.spec.steps.length]);
    else expect(s.canaryWeight).toBe(0);
  }
}

describe('properties', () => {
  it('generated specs are valid', () => {
    fc.assert(fc.property(specArb, ({ spec }) => RolloutSpecSchema.safeParse(spec).success));
  });

  it('over any event sequence: weights stay sound, only rise (or roll back), history explains every change, inputs stay untouched', () => {
    fc.assert(
      fc.property(runArb, ({ rollout, events }) => {
        const sp = deepFreeze(RolloutSpecSchema.parse(rollout.spec));
        let s = deepFreeze(createRollout('r', sp, rollout.stable, at(0), 'creator'));
        checkInvariants(s);
        const weightsInSpec = new Set(sp.steps.flatMap((x) => (x.setWeight !== undefined ? [x.setWeight] : [])));
        let now = 0;
        for (const [raw, dt] of events) {
          now += dt;
          const e: RolloutEvent = raw.type === 'ackCurrent' ? ack(s.canaryWeight) : raw;
          const before = structuredClone(s);
          let r: { state: RolloutState; changed: boolean };
          try {
            r = transition(s, e, at(now), 'driver');
          } catch (err) {
            // Only actions may be refused, and only for a finished rollout or a resume of a step pause.
            expect(err).toBeInstanceOf(TransitionError);
            expect(['promote', 'pause', 'resume', 'rollback']).toContain(e.type);
            expect(!isActive(s) || (e.type === 'resume' && s.pausedBy === 'step')).toBe(true);
            continue;
          }
          expect(s).toEqual(before); // frozen, so a mutation would also have thrown
          const next = r.state;
          if (!r.changed) {
            expect(next).toBe(s);
            continue;
          }
          expect(isActive(s)).toBe(true); // finished rollouts never change
          checkInvariants(next);
          expect(next.history.slice(0, s.history.length)).toEqual(s.history);
          expect(next.history.length).toBeGreaterThan(s.history.length);
          for (const h of next.history.slice(s.history.length)) expect([h.at, h.by]).toEqual([at(now).toISOString(), 'driver']);
          if (next.canaryWeight !== s.canaryWeight) {
            if (next.phase === 'RolledBack') expect(next.canaryWeight).toBe(0);
            else {
              expect(next.canaryWeight).toBeGreaterThan(s.canaryWeight);
              expect(next.phase === 'Promoted' ? next.canaryWeight === 100 : weightsInSpec.has(next.canaryWeight)).toBe(true);
            }
          }
          s = deepFreeze(next);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a cooperative fleet and operator always reach Promoted with the spec’s weights in order', () => {
    fc.assert(
      fc.property(specArb, ({ spec: raw, stable }) => {
        const sp = RolloutSpecSchema.parse(raw);
        let now = 0;
        let s = createRollout('r', sp, stable, at(now), 'c');
        for (let i = 0; isActive(s); i++) {
          expect(i).toBeLessThan(3 * sp.steps.length + 1);
          const wake = nextWakeAt(s);
          const e: RolloutEvent = s.awaitingAck ? ack(s.awaitingAck.canaryWeight) : wake ? { type: 'tick' } : { type: 'promote' };
          if (wake) now = wake.getTime() - T0;
          s = step(s, e, ++now);
        }
        expect(s.phase).toBe('Promoted');
        const set = s.history.filter((h) => h.event === 'WeightSet').map((h) => h.weights[sp.canary]);
        const expected = sp.steps.flatMap((x) => (x.setWeight !== undefined ? [x.setWeight] : [])).filter((w, i, a) => i === 0 || w !== a[i - 1]);
        expect(set).toEqual(expected);
      }),
    );
  });
});

describe('a fleet that rejects the routes', () => {
  const rejected = (w: number): RolloutEvent => ({ type: 'fleetRejected', canaryWeight: w, nodes: ['edge-1'], message: 'bad route' });

  it('pauses a weight step that waits for its ACK, naming the nodes and the message', () => {
    const s = step(create([{ setWeight: 10 }, { setWeight: 50 }]), rejected(10), S, 'fleet');
    expect(s).toMatchObject({ phase: 'Paused', pausedBy: 'fleet', canaryWeight: 10, awaitingAck: { canaryWeight: 10 } });
    expect(s.history.at(-1)).toMatchObject({ event: 'FleetRejected', by: 'fleet', reason: 'edge-1 rejected the routes for weight 10: bad route' });
  });

  it('is ignored for another weight, once the weight was ACKed, and while already paused', () => {
    const s = create([{ setWeight: 10 }, { pause: { duration: '1m' } }]);
    unchanged(s, rejected(20), S);
    unchanged(step(s, ack(10), S), rejected(10), 2 * S);
    unchanged(step(s, rejected(10), S, 'fleet'), rejected(10), 2 * S);
  });

  it('an ACK while paused is kept; resume then completes the step', () => {
    let s = step(create([{ setWeight: 10 }, { setWeight: 50 }]), rejected(10), S, 'fleet');
    s = step(s, ack(10), 2 * S);
    expect(s.phase).toBe('Paused');
    s = step(s, { type: 'resume' }, 3 * S, 'alice');
    expect(s).toMatchObject({ phase: 'Progressing', canaryWeight: 50, awaitingAck: { canaryWeight: 50 } });
  });
});

describe('bounded history', () => {
  it('keeps the newest MAX_HISTORY entries and counts the dropped ones', () => {
    let s = create([{ setWeight: 10 }, { pause: { duration: '1h' } }]);
    const before = s.history.length;
    for (let i = 0; i < 150; i++) {
      s = step(s, { type: 'pause' }, i * S, 'bob');
      s = step(s, { type: 'resume' }, i * S + 1, 'bob');
    }
    expect(s.history).toHaveLength(MAX_HISTORY);
    expect(s.historyDropped).toBe(before + 300 - MAX_HISTORY);
    expect(s.history.at(-1)).toMatchObject({ event: 'Resumed', by: 'bob' });
  });

  it('truncates texts that come from outside (a NACK of a megabyte) and lists few nodes', () => {
    const s = create([{ setWeight: 10 }, { pause: {} }]);
    const nodes = Array.from({ length: 40 }, (_, i) => `node-${i}`);
    const rejected = step(s, { type: 'fleetRejected', canaryWeight: 10, nodes, message: 'x'.repeat(1 << 20) }, S, 'fleet');
    const reason = rejected.history.at(-1)!.reason;
    expect(reason.length).toBeLessThanOrEqual(MAX_REASON);
    expect(reason).toContain('node-0, node-1, node-2, node-3, node-4 and 35 more rejected the routes for weight 10');
  });

  it('says when a weight counts as acknowledged by zero nodes', () => {
    const s = step(create([{ setWeight: 10 }, { pause: {} }]), { type: 'fleetAcked', canaryWeight: 10, nodes: 0 }, S, 'fleet');
    expect(s.lastAckNodes).toBe(0);
    expect(s.history.find((h) => h.event === 'WeightAcked')!.reason).toContain('no node of the service is connected');
  });
});
