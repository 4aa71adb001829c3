// The state machine's side of analysis: what each measurement does to a rollout.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RolloutSpecSchema, type Measurement, type MeasurementPhase, type RolloutState } from '../../src/model/rollout.js';
import { analysisDue, createRollout, isActive, MAX_MEASUREMENTS, transition, type RolloutEvent } from '../../src/rollout/machine.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms);
const iso = (ms: number) => at(ms).toISOString();
const S = 1000;

const background = { interval: '10s', minRequests: 50, metrics: [{ name: 'success', successRate: { min: 0.99 } }] };
const create = (steps: unknown[], analysis: object | null = background) =>
  createRollout('r1', RolloutSpecSchema.parse({ service: 'echo', canary: 'v2', steps, ...(analysis ? { analysis } : {}) }), 'v1', at(0), 'alice');

function measurement(run: string, toMs: number, phase: MeasurementPhase, intervalMs = 10 * S): Measurement {
  const value = phase === 'Successful' ? 1 : phase === 'Failed' ? 0.7 : null;
  const message = phase === 'Successful' ? 'canary success rate 1.0000 >= min 0.99' : phase === 'Failed' ? 'canary success rate 0.7000 < min 0.99 (100 canary requests)' : 'canary finished 3 requests in the window, fewer than minRequests 50';
  return { run, from: iso(toMs - intervalMs), to: iso(toMs), phase, requests: { v2: 100, v1: 100 }, metrics: [{ name: 'success', phase, value, message }] };
}
const measured = (m: Measurement): RolloutEvent => ({ type: 'analysisMeasured', measurement: m });

function step(state: RolloutState, event: RolloutEvent, ms: number, by = 'analysis'): RolloutState {
  const r = transition(state, event, at(ms), by);
  expect(r.changed).toBe(true);
  return r.state;
}
const ack = (w: number, nodes = 1): RolloutEvent => ({ type: 'fleetAcked', canaryWeight: w, nodes });
const events = (s: RolloutState) => s.history.map((h) => h.event);

describe('background analysis', () => {
  it('starts with the rollout; its first window closes one interval later', () => {
    const s = create([{ setWeight: 10 }, { pause: {} }]);
    expect(s.analysis).toEqual({
      runs: [{ run: 'background', startedAt: iso(0), nextAt: iso(10 * S), successful: 0, failed: 0, inconclusive: 0 }],
      measurements: [],
    });
    expect(analysisDue(s)).toEqual([{ run: 'background', at: at(10 * S), startedAt: at(0), spec: s.spec.analysis }]);
  });

  it('is absent from rollouts without analysis', () => {
    const s = create([{ setWeight: 10 }], null);
    expect(s.analysis).toBeUndefined();
    expect(analysisDue(s)).toEqual([]);
  });

  it('keeps a successful measurement without a history entry, and waits for the next window', () => {
    const s0 = create([{ setWeight: 10 }, { pause: {} }]);
    const s = step(s0, measured(measurement('background', 10 * S, 'Successful')), 10 * S + 5);
    expect(s.history).toEqual(s0.history);
    expect(s.analysis!.runs[0]).toMatchObject({ successful: 1, nextAt: iso(20 * S) });
    expect(s.analysis!.measurements).toHaveLength(1);
  });

  it('ignores a measurement of a window it no longer waits for, of an unknown run, or of a finished rollout', () => {
    let s = create([{ setWeight: 10 }, { pause: {} }]);
    s = step(s, measured(measurement('background', 10 * S, 'Successful')), 10 * S);
    for (const m of [measurement('background', 10 * S, 'Failed'), measurement('step 0', 20 * S, 'Failed')])
      expect(transition(s, measured(m), at(20 * S), 'analysis')).toEqual({ state: s, changed: false });
    const done = step(s, { type: 'rollback' }, 11 * S, 'bob');
    expect(transition(done, measured(measurement('background', 20 * S, 'Failed')), at(20 * S), 'analysis').changed).toBe(false);
  });

  it('rolls back at once when failures exceed failureLimit, saying what was measured', () => {
    let s = create([{ setWeight: 10 }, { pause: {} }]);
    s = step(s, ack(10), 1);
    s = step(s, measured(measurement('background', 10 * S, 'Failed')), 10 * S);
    expect(s).toMatchObject({ phase: 'RolledBack', canaryWeight: 0, weights: { v1: 100, v2: 0 }, headerRoutesActive: false, pausedBy: null });
    expect(s.history.slice(-2)).toEqual([
      {
        at: iso(10 * S),
        event: 'AnalysisFailed',
        weights: { v1: 90, v2: 10 },
        by: 'analysis',
        reason: 'background: success: canary success rate 0.7000 < min 0.99 (100 canary requests) (failed 1, failureLimit 0)',
        step: 1,
      },
      {
        at: iso(10 * S),
        event: 'RolledBack',
        weights: { v1: 100, v2: 0 },
        by: 'analysis',
        reason: 'analysis background failed 1 times (failureLimit 0): success: canary success rate 0.7000 < min 0.99 (100 canary requests)',
        step: 1,
      },
    ]);
    expect(s.analysis!.runs).toEqual([]);
    expect(s.analysis!.measurements).toHaveLength(1);
    expect(analysisDue(s)).toEqual([]);
  });

  it('tolerates failureLimit failures in total', () => {
    let s = create([{ setWeight: 10 }, { pause: { duration: '1h' } }], { ...background, failureLimit: 1 });
    s = step(s, measured(measurement('background', 10 * S, 'Failed')), 10 * S);
    expect(s.phase).toBe('Progressing');
    s = step(s, measured(measurement('background', 20 * S, 'Successful')), 20 * S);
    s = step(s, measured(measurement('background', 30 * S, 'Failed')), 30 * S);
    expect(s.phase).toBe('RolledBack');
  });

  it('rolls back from any pause: the canary still serves while paused', () => {
    for (const prepare of [(s: RolloutState) => step(s, ack(10), 1) /* pause {} */, (s: RolloutState) => step(s, { type: 'pause' }, 1, 'bob')]) {
      const s = prepare(create([{ setWeight: 10 }, { pause: {} }]));
      expect(s.phase).toBe('Paused');
      expect(step(s, measured(measurement('background', 10 * S, 'Failed')), 10 * S).phase).toBe('RolledBack');
    }
  });

  it('pauses for a human when inconclusive windows exceed inconclusiveLimit, freezing a timed pause', () => {
    let s = create([{ setWeight: 10 }, { pause: { duration: '1m' } }], { ...background, inconclusiveLimit: 1 });
    s = step(s, ack(10), 0);
    expect(s.pauseUntil).toBe(iso(60 * S));
    s = step(s, measured(measurement('background', 10 * S, 'Inconclusive')), 10 * S);
    expect(s.phase).toBe('Progressing');
    expect(s.history.at(-1)).toMatchObject({ event: 'AnalysisInconclusive', reason: expect.stringContaining('fewer than minRequests 50 (inconclusive 1, inconclusiveLimit 1)') });
    s = step(s, measured(measurement('background', 20 * S, 'Inconclusive')), 20 * S);
    expect(s).toMatchObject({ phase: 'Paused', pausedBy: 'analysis', pauseUntil: null, pauseRemainingMs: 40 * S });
    expect(s.history.at(-1)).toMatchObject({ event: 'PausedByAnalysis', by: 'analysis', step: 1 });

    // While paused, further inconclusive windows change nothing: nothing to store or broadcast.
    const paused = transition(s, measured(measurement('background', 30 * S, 'Inconclusive')), at(30 * S), 'analysis');
    expect(paused).toEqual({ state: s, changed: false });
    const quiet = paused.state;

    // A human resumes: the timed pause goes on, and the inconclusive count starts afresh.
    s = step(quiet, { type: 'resume' }, 35 * S, 'bob');
    expect(s).toMatchObject({ phase: 'Progressing', pausedBy: null, pauseUntil: iso(75 * S) });
    expect(s.analysis!.runs[0]!.inconclusive).toBe(0);
    s = step(s, measured(measurement('background', 40 * S, 'Inconclusive')), 40 * S);
    expect(s.phase).toBe('Progressing');
  });

  it('with count stops after that many measurements', () => {
    let s = create([{ setWeight: 10 }, { pause: {} }], { ...background, count: 2, inconclusiveLimit: 5 });
    s = step(s, measured(measurement('background', 10 * S, 'Successful')), 10 * S);
    s = step(s, measured(measurement('background', 20 * S, 'Inconclusive')), 20 * S);
    expect(s.analysis!.runs).toEqual([]);
    expect(s.history.at(-1)).toMatchObject({ event: 'AnalysisCompleted', reason: 'background analysis took its 2 measurements' });
  });

  it('keeps the most recent measurements only', () => {
    let s = create([{ setWeight: 10 }, { pause: {} }]);
    for (let i = 1; i <= MAX_MEASUREMENTS + 5; i++) s = step(s, measured(measurement('background', i * 10 * S, 'Successful')), i * 10 * S);
    expect(s.analysis!.measurements).toHaveLength(MAX_MEASUREMENTS);
    expect(s.analysis!.measurements[0]!.to).toBe(iso(6 * 10 * S));
    expect(s.analysis!.runs[0]!.successful).toBe(MAX_MEASUREMENTS + 5);
  });
});

describe('analysis steps', () => {
  const stepAnalysis = { interval: '5s', count: 2, metrics: [{ name: 'success', successRate: { min: 0.99 } }] };
  const steps = [{ setWeight: 20 }, { analysis: stepAnalysis }, { setWeight: 50 }];

  it('start when entered and complete after count successful measurements', () => {
    let s = create(steps, null);
    expect(s.analysis).toEqual({ runs: [], measurements: [] });
    s = step(s, ack(20), 1 * S, 'fleet');
    expect(s.step).toBe(1);
    expect(s.analysis!.runs).toEqual([{ run: 'step 1', startedAt: iso(S), nextAt: iso(6 * S), successful: 0, failed: 0, inconclusive: 0 }]);
    expect(s.history.at(-1)).toMatchObject({ event: 'AnalysisStarted', reason: 'step 1: analysis every 5s until 2 successful', step: 1 });
    s = step(s, measured(measurement('step 1', 6 * S, 'Successful', 5 * S)), 6 * S);
    expect(s.step).toBe(1);
    s = step(s, measured(measurement('step 1', 11 * S, 'Successful', 5 * S)), 11 * S);
    expect(s).toMatchObject({ step: 2, canaryWeight: 50 });
    expect(s.analysis!.runs).toEqual([]);
    expect(events(s).slice(-2)).toEqual(['StepCompleted', 'WeightSet']);
    expect(s.history.at(-2)!.reason).toBe('step 1: analysis passed (2 successful of 2 needed)');
  });

  it('run beside the background analysis, each with its own counts', () => {
    let s = create(steps);
    s = step(s, ack(20), 0, 'fleet');
    expect(analysisDue(s).map((d) => [d.run, d.at])).toEqual([
      ['background', at(10 * S)],
      ['step 1', at(5 * S)],
    ]);
    s = step(s, measured(measurement('step 1', 5 * S, 'Failed', 5 * S)), 5 * S);
    expect(s.history.at(-1)).toMatchObject({ event: 'RolledBack', reason: expect.stringMatching(/^analysis step 1 failed 1 times/) });
  });

  it('count successes while the user has paused, and complete on resume', () => {
    let s = step(create(steps, null), ack(20), 0, 'fleet');
    s = step(s, { type: 'pause' }, 1, 'bob');
    s = step(s, measured(measurement('step 1', 5 * S, 'Successful', 5 * S)), 5 * S);
    s = step(s, measured(measurement('step 1', 10 * S, 'Successful', 5 * S)), 10 * S);
    expect(s).toMatchObject({ phase: 'Paused', step: 1 });
    s = step(s, { type: 'resume' }, 11 * S, 'bob');
    expect(s).toMatchObject({ phase: 'Progressing', step: 2 });
  });

  it('end when promoted by hand', () => {
    let s = step(create(steps, null), ack(20), 0, 'fleet');
    s = step(s, { type: 'promote' }, 1 * S, 'bob');
    expect(s).toMatchObject({ step: 2, analysis: { runs: [] } });
  });
});

// Property: random rollouts with analysis driven by random events never break the bookkeeping.
const specArb = fc.record({
  steps: fc.array(
    fc.oneof(
      fc.integer({ min: 0, max: 100 }).map((setWeight) => ({ setWeight })),
      fc.constant({ pause: {} }),
      fc.constant({ pause: { duration: '30s' } }),
      fc.record({ count: fc.integer({ min: 1, max: 3 }), failureLimit: fc.integer({ min: 0, max: 2 }) }).map((a) => ({ analysis: { interval: '5s', ...a, metrics: [{ name: 'm', successRate: { min: 0.9 } }] } })),
    ),
    { minLength: 1, maxLength: 6 },
  ),
  analysis: fc.option(
    fc.record({ failureLimit: fc.integer({ min: 0, max: 2 }), inconclusiveLimit: fc.integer({ min: 0, max: 2 }) }).map((a) => ({ interval: '10s', ...a, metrics: [{ name: 'm', successRate: { min: 0.9 } }] })),
    { nil: undefined },
  ),
});
type Driver = { type: 'measureDue'; phase: MeasurementPhase } | { type: 'ackCurrent' } | { type: 'tick' } | { type: 'promote' } | { type: 'pause' } | { type: 'resume' };
const driverArb: fc.Arbitrary<Driver> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<MeasurementPhase>('Successful', 'Successful', 'Failed', 'Inconclusive').map((phase) => ({ type: 'measureDue' as const, phase })) },
  { weight: 3, arbitrary: fc.constant({ type: 'ackCurrent' as const }) },
  { weight: 2, arbitrary: fc.constantFrom({ type: 'tick' as const }, { type: 'promote' as const }, { type: 'pause' as const }, { type: 'resume' as const }) },
);

describe('properties', () => {
  it('runs exist only while active, one per analysis step in force; limits are honoured; measurements are bounded', () => {
    fc.assert(
      fc.property(specArb, fc.array(driverArb, { maxLength: 50 }), (raw, drivers) => {
        const spec = RolloutSpecSchema.parse({ service: 'echo', canary: 'v2', ...raw });
        let s = createRollout('r', spec, 'v1', at(0), 'c');
        let now = 0;
        for (const d of drivers) {
          now += 1000;
          let e: RolloutEvent;
          if (d.type === 'measureDue') {
            const due = analysisDue(s)[0];
            if (!due) continue;
            now = Math.max(now, due.at.getTime() - T0);
            e = measured(measurement(due.run, now, d.phase));
          } else if (d.type === 'ackCurrent') e = ack(s.canaryWeight);
          else e = d;
          let r;
          try {
            r = transition(s, e, at(now), 'driver');
          } catch {
            continue; // refused actions are the other suite's business
          }
          const before = s;
          s = r.state;
          const runs = s.analysis?.runs ?? [];
          if (!isActive(s)) expect(runs).toEqual([]);
          else {
            const cur = s.spec.steps[s.step]!;
            expect(runs.some((x) => x.run === `step ${s.step}`)).toBe(cur.analysis !== undefined);
            expect(runs.filter((x) => x.run !== 'background').length).toBeLessThanOrEqual(1);
          }
          for (const x of runs) {
            expect(Date.parse(x.nextAt)).toBeGreaterThan(Date.parse(x.startedAt));
            const limit = (x.run === 'background' ? s.spec.analysis! : s.spec.steps[Number(x.run.slice(5))]!.analysis!).failureLimit ?? 0;
            expect(x.failed).toBeLessThanOrEqual(limit);
          }
          expect(s.analysis?.measurements.length ?? 0).toBeLessThanOrEqual(MAX_MEASUREMENTS);
          if (s.phase === 'RolledBack' && isActive(before)) expect(s.history.at(-1)).toMatchObject({ event: 'RolledBack', by: 'driver' });
          if (s.pausedBy === 'analysis') expect(s.phase).toBe('Paused');
        }
      }),
      { numRuns: 300 },
    );
  });
});
