// What outlives clients: nothing. A thousand streams with distinct named subscriptions connect
// and disconnect; the cache's view memo, the owner index and node index return to their baseline.
import { afterEach, describe, expect, it } from 'vitest';
import type { DeltaClient, SotwClient } from '../support/ads-client.js';
import { channel } from '../support/ads-client.js';
import type { Harness } from './fixtures.js';
import { CDS, cluster, eventually, startXds } from './fixtures.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const N = 1000;
const PER_CONNECTION = 250;

describe('per-client memory', () => {
  it('the view memo and the fleet indexes return to their baseline after 1,000 clients leave', async () => {
    h = await startXds();
    h.set({ [CDS]: Array.from({ length: 50 }, (_, i) => cluster(`c${i}`, 1, 0, [`svc${i % 5}`])) });
    const stayer = h.sotw({ node: { id: 'stayer' } });
    stayer.subscribe(CDS, ['c0']);
    stayer.ack(await stayer.next());
    await eventually(() => expect(h.xds.ownerStatus('svc0').counts.acked).toBe(1));
    const baseline = h.cache.memoStats();
    expect(baseline).toEqual({ views: 1, selections: 1 });
    const indexBaseline = h.xds.fleetIndexStats();
    expect(indexBaseline).toEqual({ ownerEntries: 1, nodes: 1, waits: 0 });

    const conns = Array.from({ length: N / PER_CONNECTION }, () => channel(h.port));
    const clients: (SotwClient | DeltaClient)[] = [];
    try {
      for (let i = 0; i < N; i++) {
        const opts = { node: { id: `n${i}` }, channel: conns[i % conns.length] };
        // Distinct selections: a named cluster plus a name of its own (unknown to the cache).
        const c = i % 2 === 0 ? h.sotw(opts) : h.delta(opts);
        c.subscribe(CDS, [`c${i % 50}`, `only-${i}`]);
        clients.push(c);
      }
      await Promise.all(clients.map((c) => c.next(20_000)));
      expect(h.cache.memoStats().selections).toBe(1 + N / 2);
      expect(h.xds.ownerStatus('svc1').streams.length).toBe(N / 5);
      expect(h.xds.wasSent('n1', CDS, 'c1')).toBe(true);
      expect(h.xds.fleetIndexStats()).toEqual({ ownerEntries: 1 + N, nodes: 1 + N, waits: 0 });

      for (const c of clients) c.cancel();
      await eventually(() => expect(h.xds.connectedStreams).toBe(1), 20_000);
    } finally {
      for (const c of conns) c.close();
    }
    expect(h.cache.memoStats()).toEqual(baseline);
    expect(h.xds.fleetIndexStats()).toEqual(indexBaseline);
    expect(h.xds.ownerStatus('svc1').streams).toEqual([]);
    expect(h.xds.ownerStatus('svc0').streams.map((s) => s.node)).toEqual(['stayer']);
    expect(h.xds.wasSent('n1', CDS, 'c1')).toBe(false);
  });
});
