import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseDuration } from '../../src/model/duration.js';
import { RolloutSpecSchema } from '../../src/model/rollout.js';

const valid = {
  service: 'echo',
  canary: 'v2',
  steps: [{ setWeight: 5 }, { pause: { duration: '2m' } }, { setWeight: 20 }, { pause: {} }, { setWeight: 50 }, { pause: { duration: '10m' } }],
  headerRoutes: [{ name: 'testers', match: [{ header: 'x-canary', exact: 'true' }] }],
  sticky: { header: 'x-user-id' },
};

/** `valid` with one change applied to a deep copy. */
function withChange(change: (spec: any) => void): unknown {
  const spec = structuredClone(valid);
  change(spec);
  return spec;
}

function issuePaths(input: unknown): (string | number)[][] {
  const r = RolloutSpecSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => i.path as (string | number)[]);
}

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['2h5m10s250ms', 7_510_250],
    ['0s', 0],
    ['90m', 5_400_000],
  ])('%s = %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '5', 'm', '1.5h', '30m1h', '5m5m', '-5s', ' 5s', '5s ', '5 s', '1d', '5S', '1e3s', '99999999999999999999h'])(
    'rejects %j with a message saying what is accepted',
    (text) => expect(() => parseDuration(text)).toThrow(/invalid duration/),
  );

  it('round-trips any combination of units', () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.nat(1000), fc.nat(1000), fc.nat(1000), (h, m, s, ms) => {
        expect(parseDuration(`${h}h${m}m${s}s${ms}ms`)).toBe(((h * 60 + m) * 60 + s) * 1000 + ms);
      }),
    );
  });
});

describe('RolloutSpecSchema', () => {
  it('accepts the API example and keeps it as written', () => {
    expect(RolloutSpecSchema.parse(valid)).toEqual(valid);
  });

  it('accepts every matcher form', () => {
    const match = [
      { header: 'X-Canary', exact: '' },
      { cookie: 'session_id', prefix: 'a' },
      { query: 'user id', suffix: 'z' },
      { header: 'x-a', contains: 'b', invert: true },
      { header: 'x-a', regex: '^(a|b)+$' },
      { cookie: 'c', present: true },
    ];
    expect(RolloutSpecSchema.safeParse(withChange((s) => (s.headerRoutes = [{ name: 'all', match }]))).success).toBe(true);
  });

  it('accepts sticky by cookie, and leaves optional parts out', () => {
    expect(RolloutSpecSchema.safeParse(withChange((s) => (s.sticky = { cookie: 'uid' }))).success).toBe(true);
    expect(RolloutSpecSchema.safeParse({ service: 'a', canary: 'b', steps: [{ pause: {} }] }).success).toBe(true);
  });

  // Each case breaks one field; the error must name that field by its path.
  it.each<[string, (s: any) => void, (string | number)[]]>([
    ['unknown top-level field', (s) => (s.extra = 1), []],
    ['service missing', (s) => delete s.service, ['service']],
    ['service with a slash', (s) => (s.service = 'a/b'), ['service']],
    ['service starting with a dot', (s) => (s.service = '.a'), ['service']],
    ['service of 64 chars', (s) => (s.service = 'a'.repeat(64)), ['service']],
    ['canary empty', (s) => (s.canary = ''), ['canary']],
    ['canary not a string', (s) => (s.canary = 2), ['canary']],
    ['steps empty', (s) => (s.steps = []), ['steps']],
    ['101 steps', (s) => (s.steps = Array.from({ length: 101 }, () => ({ setWeight: 1 }))), ['steps']],
    ['weight above 100', (s) => (s.steps[2] = { setWeight: 101 }), ['steps', 2, 'setWeight']],
    ['negative weight', (s) => (s.steps[2] = { setWeight: -1 }), ['steps', 2, 'setWeight']],
    ['fractional weight', (s) => (s.steps[2] = { setWeight: 2.5 }), ['steps', 2, 'setWeight']],
    ['weight as a string', (s) => (s.steps[2] = { setWeight: '5' }), ['steps', 2, 'setWeight']],
    ['step with no key', (s) => (s.steps[3] = {}), ['steps', 3]],
    ['step with two keys', (s) => (s.steps[3] = { setWeight: 5, pause: {} }), ['steps', 3]],
    ['step with an unknown key', (s) => (s.steps[3] = { wait: {} }), ['steps', 3]],
    ['unknown field in pause', (s) => (s.steps[1].pause.until = 'x'), ['steps', 1, 'pause']],
    ['mirror above 100', (s) => (s.steps[2] = { setMirror: { percent: 100.01 } }), ['steps', 2, 'setMirror', 'percent']],
    ['negative mirror', (s) => (s.steps[2] = { setMirror: { percent: -1 } }), ['steps', 2, 'setMirror', 'percent']],
    ['mirror with 3 decimals', (s) => (s.steps[2] = { setMirror: { percent: 12.345 } }), ['steps', 2, 'setMirror', 'percent']],
    ['mirror as a string', (s) => (s.steps[2] = { setMirror: { percent: '50' } }), ['steps', 2, 'setMirror', 'percent']],
    ['mirror without percent', (s) => (s.steps[2] = { setMirror: {} }), ['steps', 2, 'setMirror', 'percent']],
    ['mirror as a number', (s) => (s.steps[2] = { setMirror: 50 }), ['steps', 2, 'setMirror']],
    ['unknown field in setMirror', (s) => (s.steps[2] = { setMirror: { percent: 5, cluster: 'x' } }), ['steps', 2, 'setMirror']],
    ['mirror and weight in one step', (s) => (s.steps[2] = { setMirror: { percent: 5 }, setWeight: 5 }), ['steps', 2]],
    ['bad duration', (s) => (s.steps[1].pause.duration = '2 minutes'), ['steps', 1, 'pause', 'duration']],
    ['zero duration', (s) => (s.steps[1].pause.duration = '0s'), ['steps', 1, 'pause', 'duration']],
    ['duration over 7 days', (s) => (s.steps[1].pause.duration = '168h1ms'), ['steps', 1, 'pause', 'duration']],
    ['21 header routes', (s) => (s.headerRoutes = Array.from({ length: 21 }, (_, i) => ({ name: `r${i}`, match: [{ header: 'a', present: true }] }))), ['headerRoutes']],
    ['duplicate route name', (s) => s.headerRoutes.push(structuredClone(s.headerRoutes[0])), ['headerRoutes', 1, 'name']],
    ['bad route name', (s) => (s.headerRoutes[0].name = 'a b'), ['headerRoutes', 0, 'name']],
    ['unknown route field', (s) => (s.headerRoutes[0].weight = 1), ['headerRoutes', 0]],
    ['no matchers', (s) => (s.headerRoutes[0].match = []), ['headerRoutes', 0, 'match']],
    ['11 matchers', (s) => (s.headerRoutes[0].match = Array.from({ length: 11 }, () => ({ header: 'a', present: true }))), ['headerRoutes', 0, 'match']],
    ['matcher without a name', (s) => (s.headerRoutes[0].match[0] = { exact: 'a' }), ['headerRoutes', 0, 'match', 0]],
    ['matcher with header and cookie', (s) => (s.headerRoutes[0].match[0].cookie = 'c'), ['headerRoutes', 0, 'match', 0]],
    ['matcher without a test', (s) => (s.headerRoutes[0].match[0] = { header: 'a' }), ['headerRoutes', 0, 'match', 0]],
    ['matcher with two tests', (s) => (s.headerRoutes[0].match[0].prefix = 'a'), ['headerRoutes', 0, 'match', 0]],
    ['bad header name', (s) => (s.headerRoutes[0].match[0].header = 'x canary'), ['headerRoutes', 0, 'match', 0, 'header']],
    ['pseudo-header', (s) => (s.headerRoutes[0].match[0].header = ':authority'), ['headerRoutes', 0, 'match', 0, 'header']],
    ['bad cookie name', (s) => (s.headerRoutes[0].match[0] = { cookie: 'a;b', exact: 'x' }), ['headerRoutes', 0, 'match', 0, 'cookie']],
    ['empty query name', (s) => (s.headerRoutes[0].match[0] = { query: '', exact: 'x' }), ['headerRoutes', 0, 'match', 0, 'query']],
    ['query name over 256', (s) => (s.headerRoutes[0].match[0] = { query: 'q'.repeat(257), exact: 'x' }), ['headerRoutes', 0, 'match', 0, 'query']],
    ['empty prefix', (s) => (s.headerRoutes[0].match[0] = { header: 'a', prefix: '' }), ['headerRoutes', 0, 'match', 0, 'prefix']],
    ['empty suffix', (s) => (s.headerRoutes[0].match[0] = { header: 'a', suffix: '' }), ['headerRoutes', 0, 'match', 0, 'suffix']],
    ['empty contains', (s) => (s.headerRoutes[0].match[0] = { header: 'a', contains: '' }), ['headerRoutes', 0, 'match', 0, 'contains']],
    ['regex that does not compile', (s) => (s.headerRoutes[0].match[0] = { header: 'a', regex: '(' }), ['headerRoutes', 0, 'match', 0, 'regex']],
    ['regex over 1024 chars', (s) => (s.headerRoutes[0].match[0] = { header: 'a', regex: 'a'.repeat(1025) }), ['headerRoutes', 0, 'match', 0, 'regex']],
    ['present: false', (s) => (s.headerRoutes[0].match[0] = { header: 'a', present: false }), ['headerRoutes', 0, 'match', 0, 'present']],
    ['invert not boolean', (s) => (s.headerRoutes[0].match[0].invert = 'yes'), ['headerRoutes', 0, 'match', 0, 'invert']],
    ['unknown matcher field', (s) => (s.headerRoutes[0].match[0].ignoreCase = true), ['headerRoutes', 0, 'match', 0]],
    ['sticky empty', (s) => (s.sticky = {}), ['sticky']],
    ['sticky with both', (s) => (s.sticky = { header: 'a', cookie: 'b' }), ['sticky']],
    ['sticky bad header', (s) => (s.sticky = { header: 'a b' }), ['sticky', 'header']],
    ['sticky unknown field', (s) => (s.sticky.hash = 'x'), ['sticky']],
  ])('%s → issue at its path', (_, change, path) => {
    expect(issuePaths(withChange(change))).toContainEqual(path);
  });

  it('explains an exactly-one failure in words', () => {
    const r = RolloutSpecSchema.safeParse(withChange((s) => (s.steps[0] = { setWeight: 5, pause: {} })));
    expect(r.error?.issues.map((i) => i.message)).toContain('a step needs exactly one of setWeight, pause, analysis, setMirror (got setWeight, pause)');
  });

  it('accepts mirror shares from 0 to 100 with up to 2 decimals', () => {
    for (const percent of [0, 0.01, 12.5, 33.33, 99.99, 100]) {
      const spec = withChange((s) => (s.steps = [{ setMirror: { percent } }, { setWeight: 5 }]));
      expect(RolloutSpecSchema.parse(spec).steps[0], String(percent)).toEqual({ setMirror: { percent } });
    }
    const r = RolloutSpecSchema.safeParse(withChange((s) => (s.steps[0] = { setMirror: { percent: 0.125 } })));
    expect(r.error?.issues[0]?.message).toBe('must have at most 2 decimals');
  });

  it('names the unknown key', () => {
    const r = RolloutSpecSchema.safeParse(withChange((s) => (s.headerRoutes[0].match[0].ignoreCase = true)));
    expect(r.error?.issues).toContainEqual(expect.objectContaining({ code: 'unrecognized_keys', keys: ['ignoreCase'] }));
  });
});
