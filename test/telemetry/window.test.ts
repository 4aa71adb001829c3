import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeBuckets, quantile, totalCount } from '../../src/telemetry/histogram.js';
import { WindowedStats } from '../../src/telemetry/window.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, set: (ms: number) => (t = ms), advance: (ms: number) => (t += ms) };
}

describe('WindowedStats', () => {
  it('sums reports per cluster over a window and counts the nodes that reported', () => {
    const c = clock();
    const w = new WindowedStats({ now: c.now, resolutionMs: 100 });
    w.add('echo-v2', 'n1', { successful: 90, errors: 10 });
    w.add('echo-v2', 'n2', { successful: 45, errors: 5 });
    w.add('echo-v1', 'n1', { successful: 500, errors: 0 });
    c.advance(100);
    w.add('echo-v2', 'n1', { successful: 10, errors: 0 });
    expect(w.query('echo-v2', 1_000_000, 1_000_200)).toMatchObject({ requests: 160, successful: 145, errors: 15, nodes: 2 });
    expect(w.query('echo-v1', 1_000_000, 1_000_200)).toMatchObject({ requests: 500, nodes: 1 });
    expect(w.query('echo-v3', 0, 2_000_000)).toMatchObject({ requests: 0, nodes: 0 });
    expect(w.clusters()).toEqual(['echo-v1', 'echo-v2']);
  });

  it('windows sharing a boundary split the data: nothing counted twice or lost', () => {
    const c = clock(0);
    const w = new WindowedStats({ now: c.now, resolutionMs: 250 });
    for (let t = 0; t < 10_000; t += 130) {
      c.set(t);
      w.add('x', 'n', { successful: 1, errors: 0 });
    }
    const whole = w.query('x', 0, 10_000).requests;
    const parts = [0, 1000, 3333, 7777, 10_000].slice(1).map((to, i, a) => w.query('x', i === 0 ? 0 : a[i - 1]!, to).requests);
    expect(parts.reduce((x, y) => x + y)).toBe(whole);
    expect(whole).toBe(Math.ceil(10_000 / 130));
  });

  it('forgets what is older than the retention, and clusters that stopped reporting', () => {
    const c = clock(0);
    const w = new WindowedStats({ now: c.now, resolutionMs: 1000, retentionMs: 60_000 });
    w.add('old', 'n', { successful: 1, errors: 0 });
    w.add('live', 'n', { successful: 1, errors: 0 });
    c.set(61_000);
    w.add('live', 'n', { successful: 1, errors: 0 });
    expect(w.query('live', 0, 70_000).requests).toBe(1);
    c.set(200_000); // the sweep runs at most once a minute
    w.add('live', 'n', { successful: 1, errors: 0 });
    expect(w.clusters()).toEqual(['live']);
  });

  it('drops clusters nobody reports for any more on reads too, once past the retention', () => {
    const c = clock(0);
    const w = new WindowedStats({ now: c.now, resolutionMs: 1000, retentionMs: 60_000 });
    for (let i = 0; i < 1000; i++) w.add(`invented-${i}`, 'n', { successful: 1, errors: 0 });
    expect(w.clusters()).toHaveLength(1000);
    c.set(30_000);
    expect(w.clusters()).toHaveLength(1000); // still inside the retention
    c.set(130_000); // no report since: reading is enough to let them go
    expect(w.clusters()).toEqual([]);
  });

  it('holds at most maxClusters; a report for one more is refused until others age out', () => {
    const c = clock(0);
    const w = new WindowedStats({ now: c.now, resolutionMs: 1000, retentionMs: 60_000, maxClusters: 3 });
    for (const name of ['a', 'b', 'c']) expect(w.add(name, 'n', { successful: 1, errors: 0 })).toBe(true);
    expect(w.add('d', 'n', { successful: 1, errors: 0 })).toBe(false);
    expect(w.add('a', 'n', { successful: 1, errors: 0 })).toBe(true); // known clusters still count
    c.set(50_000);
    expect(w.add('a', 'n', { successful: 1, errors: 0 })).toBe(true);
    c.set(100_000); // b and c aged out, a reported at 50 s is still in
    expect(w.add('d', 'n', { successful: 1, errors: 0 })).toBe(true);
    expect(w.clusters()).toEqual(['a', 'd']);
  });

  it('keeps slots in order when the clock steps back', () => {
    const c = clock(10_000);
    const w = new WindowedStats({ now: c.now, resolutionMs: 1000 });
    w.add('x', 'n', { successful: 1, errors: 0 });
    c.set(8_000);
    w.add('x', 'n', { successful: 2, errors: 0 });
    c.set(10_500);
    w.add('x', 'n', { successful: 4, errors: 0 });
    expect(w.query('x', 8_000, 9_000).requests).toBe(2);
    expect(w.query('x', 10_000, 11_000).requests).toBe(5);
  });

  it('ignores empty reports and merges latency', () => {
    const c = clock();
    const w = new WindowedStats({ now: c.now });
    w.add('x', 'n', { successful: 0, errors: 0 });
    expect(w.clusters()).toEqual([]);
    w.add('x', 'n1', { successful: 2, errors: 0, latency: new Map([[10, 2]]) });
    w.add('x', 'n2', { successful: 1, errors: 0, latency: new Map([[10, 1], [Infinity, 1]]) });
    expect([...w.query('x', 0, 2_000_000).latency]).toEqual([[10, 3], [Infinity, 1]]);
  });

  it('property: any partition of a time range adds up to the range', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(60_000), fc.nat(50), fc.nat(5)), { maxLength: 60 }),
        fc.uniqueArray(fc.nat(60_000), { maxLength: 6 }),
        fc.constantFrom(50, 250, 1000),
        (reports, cuts, res) => {
          const c = clock(0);
          const w = new WindowedStats({ now: c.now, resolutionMs: res });
          for (const [t, ok, bad] of [...reports].sort((a, b) => a[0] - b[0])) {
            c.set(t);
            w.add('x', 'n', { successful: ok, errors: bad });
          }
          const bounds = [0, ...cuts.sort((a, b) => a - b), 61_000];
          let sum = 0;
          for (let i = 1; i < bounds.length; i++) sum += w.query('x', bounds[i - 1]!, bounds[i]!).requests;
          expect(sum).toBe(reports.reduce((n, [, ok, bad]) => n + ok + bad, 0));
        },
      ),
    );
  });
});

describe('latency histograms', () => {
  it('interpolate quantiles inside the bucket, as histogram_quantile does', () => {
    const b = new Map([
      [10, 50],
      [100, 40],
      [1000, 10],
    ]);
    expect(quantile(b, 0.5)).toBe(10);
    expect(quantile(b, 0.7)).toBe(55); // 20 of the 40 in (10, 100]
    expect(quantile(b, 0.99)).toBe(910);
    expect(quantile(b, 0.25)).toBe(5);
  });

  it('report the highest finite bound when the quantile is in the overflow bucket', () => {
    expect(quantile(new Map([[5, 1], [Infinity, 99]]), 0.99)).toBe(5);
  });

  it('have no quantile without observations', () => {
    expect(quantile(new Map(), 0.99)).toBeNull();
    expect(quantile(new Map([[5, 0]]), 0.99)).toBeNull();
  });

  it('merge by addition whatever the bucket layout', () => {
    const into = new Map([[10, 1]]);
    mergeBuckets(into, new Map([[10, 2], [25, 3], [50, 0]]));
    expect([...into]).toEqual([[10, 3], [25, 3]]);
    expect(totalCount(into)).toBe(6);
  });
});
