// State-of-the-world xDS over real gRPC streams: ACK/NACK, nonces, subscriptions, wildcard,
// make-before-break and push order. Every test gets its own server and cache.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SotwClient, SotwResponse } from '../support/ads-client.js';
import type { Harness } from './fixtures.js';
import { CDS, EDS, LDS, RDS, cluster, endpoints, eventually, listener, route, sorted, startXds } from './fixtures.js';

let h: Harness;
beforeEach(async () => {
  h = await startXds();
});
afterEach(async () => {
  await h.close();
});

/** Subscribes, takes the first response, ACKs it and waits until the server has the ACK (so a
 *  cache change right after cannot overtake it and make it stale). */
async function subscribed(c: SotwClient, typeUrl: string, names: string[] = []): Promise<SotwResponse> {
  c.subscribe(typeUrl, names);
  const r = await c.next();
  expect(r.type_url).toBe(typeUrl);
  await acked(c, r);
  return r;
}

async function acked(c: SotwClient, r: SotwResponse, names?: string[]): Promise<void> {
  c.ack(r, names);
  await eventually(() => expect(typeStatus(c.node!.id!, r.type_url).ackedVersion).toBe(r.version_info));
}

function typeStatus(node: string, typeUrl: string) {
  const t = h.fleetNode(node)?.types[typeUrl];
  if (!t) throw new Error(`${node} has no ${typeUrl} in fleet()`);
  return t;
}

describe('ACK', () => {
  it('answers the first request of a stream even when it carries a version_info from a previous server', async () => {
    h.set({ [CDS]: [cluster('a')] });
    const c = h.sotw();
    c.subscribe(CDS, [], 'version-from-another-server');
    const r = await c.next();
    expect(r.type_url).toBe(CDS);
    expect(r.names).toEqual(['a']);
    expect(r.nonce).not.toBe('');
    expect(r.version_info).not.toBe('');
    expect(r.control_plane).toBe('sluice');
    expect(r.resources[0]!.value).toMatchObject({ name: 'a', type: 'EDS' });

    // A reconnect that claims the current version is answered too (empty nonce = new stream).
    const again = h.sotw({ node: { id: 'node-2' } });
    again.subscribe(CDS, [], r.version_info);
    const r2 = await again.next();
    expect(r2.version_info).toBe(r.version_info);
    expect(r2.names).toEqual(['a']);
  });

  it('answers the first request even when the cache has nothing of that type yet', async () => {
    const c = h.sotw();
    c.subscribe(LDS);
    const r = await c.next();
    expect(r.type_url).toBe(LDS);
    expect(r.resources).toEqual([]);
  });

  it('sends nothing in reply to an ACK and records it in fleet()', async () => {
    h.set({ [CDS]: [cluster('a')] });
    const c = h.sotw();
    const r = await subscribed(c, CDS);
    await c.expectNothing();
    const t = await eventually(() => {
      const t = typeStatus('node-1', CDS);
      expect(t.ackedVersion).toBe(r.version_info);
      return t;
    });
    expect(t.sentVersion).toBe(r.version_info);
    expect(t.lastNack).toBeNull();
    expect(t.subscription).toBe('*');
  });

  it('gives streams sent the same view one shared response, and a stream that already had it a nonce of its own', async () => {
    h.set({ [CDS]: [cluster('a')], [EDS]: [endpoints('a')], [LDS]: [listener('l')] });
    const a = h.sotw();
    const b = h.sotw();
    await subscribed(b, LDS); // b has had one response more than a: per-stream counters would differ
    await subscribed(a, CDS);
    await subscribed(b, CDS);
    await subscribed(a, EDS, ['a']);
    await subscribed(b, EDS, ['a']);
    h.set({ [CDS]: [cluster('a', 7)] });
    const [ca, cb] = [await a.next(5000, CDS), await b.next(5000, CDS)];
    // The same view after one change: one response for both (the bytes are written as they are).
    expect(ca.version_info).toBe(cb.version_info);
    expect(ca.nonce).toBe(cb.nonce);
    // The cluster changed, so each stream's endpoints are re-sent: the same view each stream
    // already had, so each gets a nonce it has not seen for the type.
    const [ea, eb] = [await a.next(5000, EDS), await b.next(5000, EDS)];
    const firstEds = (c: typeof a) => c.received.find((r) => r.type_url === EDS)!.nonce;
    expect(ea.nonce).not.toBe(firstEds(a));
    expect(eb.nonce).not.toBe(firstEds(b));
    a.ack(ca);
    a.ack(ea);
    await eventually(() => expect(typeStatus(a.node!.id!, EDS).ackedVersion).toBe(ea.version_info));
  });

  it('pushes every cache change with a fresh nonce that is unique in the stream', async () => {
    h.set({ [CDS]: [cluster('a')], [EDS]: [endpoints('a')], [LDS]: [listener('l')] });
    const c = h.sotw();
    await subscribed(c, CDS);
    await subscribed(c, EDS, ['a']);
    await subscribed(c, LDS);
    for (let i = 2; i <= 4; i++) {
      h.set({ [CDS]: [cluster('a', i)] });
      const cds = await c.next(5000, CDS);
      expect(cds.resources[0]!.value).toMatchObject({ connect_timeout: { seconds: String(i) } });
      c.ack(cds);
      c.ack(await c.next(5000, EDS)); // the cluster changed: its endpoints follow (see below)
      h.set({ [LDS]: [listener('l', 10000 + i)] });
      c.ack(await c.next(5000, LDS));
    }
    await c.expectNothing();
    const nonces = c.received.map((r) => r.nonce);
    expect(nonces.length).toBe(3 + 3 * 3);
    expect(new Set(nonces).size).toBe(nonces.length);
    expect(nonces.every((n) => n !== '')).toBe(true);
  });

  it('does not push when a set leaves the bytes unchanged', async () => {
    h.set({ [CDS]: [cluster('a'), cluster('b')] });
    const c = h.sotw();
    await subscribed(c, CDS);
    expect(h.set({ [CDS]: [cluster('b'), cluster('a')] }).size).toBe(0);
    await c.expectNothing();
  });
});

describe('NACK', () => {
  it('records the NACK, keeps the accepted version, never resends the rejected one, and sends a newer one', async () => {
    h.set({ [CDS]: [cluster('a', 1)], [EDS]: [endpoints('a')] });
    const c = h.sotw();
    const v1 = await subscribed(c, CDS);
    await subscribed(c, EDS, ['a']);

    h.set({ [CDS]: [cluster('a', 2)] });
    const v2 = await c.next(5000, CDS);
    expect(v2.version_info).not.toBe(v1.version_info);
    c.ack(await c.next(5000, EDS)); // endpoints re-sent after the cluster
    c.nack(v2, 'cluster a: bad connect_timeout');

    const t = await eventually(() => {
      const t = typeStatus('node-1', CDS);
      expect(t.lastNack).not.toBeNull();
      return t;
    });
    expect(t.lastNack).toMatchObject({ version: v2.version_info, message: 'cluster a: bad connect_timeout' });
    expect(t.ackedVersion).toBe(v1.version_info);
    expect(t.sentVersion).toBe(v2.version_info);

    // Nothing brings the rejected version back: not the NACK itself, not a repeated NACK,
    // not a set with the same bytes, not a change of another type.
    await c.expectNothing();
    c.nack(v2, 'cluster a: bad connect_timeout');
    h.set({ [CDS]: [cluster('a', 2)] });
    h.set({ [EDS]: [endpoints('a', 9090)] });
    const eds = await c.next(5000, EDS);
    expect(eds.resources[0]!.value).toMatchObject({ cluster_name: 'a' });
    c.ack(eds);
    await c.expectNothing(300, CDS);

    h.set({ [CDS]: [cluster('a', 3)] });
    const v3 = await c.next(5000, CDS);
    expect(v3.version_info).not.toBe(v2.version_info);
    expect(v3.resources[0]!.value).toMatchObject({ connect_timeout: { seconds: '3' } });
    expect(v3.nonce).not.toBe(v2.nonce);
    c.ack(v3);
    await eventually(() => expect(typeStatus('node-1', CDS).ackedVersion).toBe(v3.version_info));
  });

  it('tells a NACK from an ACK by error_detail only (a NACK echoing the new version is still a NACK)', async () => {
    h.set({ [CDS]: [cluster('a', 1)] });
    const c = h.sotw();
    const v1 = await subscribed(c, CDS);
    h.set({ [CDS]: [cluster('a', 2)] });
    const v2 = await c.next();
    c.send({
      type_url: CDS,
      version_info: v2.version_info,
      response_nonce: v2.nonce,
      resource_names: [],
      error_detail: { code: 3, message: 'rejected' },
    });
    await eventually(() => expect(typeStatus('node-1', CDS).lastNack?.message).toBe('rejected'));
    expect(typeStatus('node-1', CDS).ackedVersion).toBe(v1.version_info);
  });

  it('after a NACK, going back to the accepted version (a rollback) is sent at once', async () => {
    h.set({ [CDS]: [cluster('a', 1)] });
    const c = h.sotw();
    const v1 = await subscribed(c, CDS);
    h.set({ [CDS]: [cluster('a', 2)] });
    const v2 = await c.next();
    c.nack(v2, 'bad');
    await eventually(() => expect(typeStatus('node-1', CDS).lastNack?.message).toBe('bad'));
    h.set({ [CDS]: [cluster('a', 1)] });
    const back = await c.next();
    expect(back.version_info).toBe(v1.version_info);
    expect(back.nonce).not.toBe(v1.nonce);
    await acked(c, back);
  });
});

describe('stale nonce', () => {
  it('an ACK or NACK with an old nonce counts as neither, but its resource_names are honoured', async () => {
    h.set({ [EDS]: [endpoints('a'), endpoints('b')] });
    const c = h.sotw();
    c.subscribe(EDS, ['a']);
    const r1 = await c.next(); // not answered yet
    h.set({ [EDS]: [endpoints('a', 9090), endpoints('b')] });
    const r2 = await c.next();
    expect(r2.nonce).not.toBe(r1.nonce);

    c.ack(r1); // stale
    c.nack(r1, 'stale complaint'); // stale
    await c.expectNothing();
    // Stale too, but with new names: the names are the client's whole wish (documented deviation).
    c.send({ type_url: EDS, version_info: r1.version_info, response_nonce: r1.nonce, resource_names: ['a', 'b'] });
    const r3 = await c.next();
    expect(sorted(r3.names)).toEqual(['a', 'b']);

    // The stream handled the stale requests in order before answering r3.
    const t = typeStatus('node-1', EDS);
    expect(t.ackedVersion).toBeNull();
    expect(t.lastNack).toBeNull();
    expect(t.subscription).toEqual(['a', 'b']);

    c.ack(r2); // r2 is stale now as well
    await c.expectNothing();
    expect(typeStatus('node-1', EDS).ackedVersion).toBeNull();
    c.ack(r3);
    await eventually(() => expect(typeStatus('node-1', EDS).ackedVersion).toBe(r3.version_info));
  });
});

describe('subscriptions', () => {
  it('wildcard LDS (empty names) and CDS ("*") get the complete set; a removed resource disappears', async () => {
    h.set({ [LDS]: [listener('l1'), listener('l2')], [CDS]: [cluster('a'), cluster('b'), cluster('c')] });
    const c = h.sotw();
    const lds = await subscribed(c, LDS, []);
    expect(sorted(lds.names)).toEqual(['l1', 'l2']);
    const cds = await subscribed(c, CDS, ['*']);
    expect(sorted(cds.names)).toEqual(['a', 'b', 'c']);

    h.set({ [LDS]: [listener('l1')] });
    const lds2 = await c.next();
    expect(lds2.type_url).toBe(LDS);
    expect(lds2.names).toEqual(['l1']);
    c.ack(lds2);

    h.set({ [CDS]: [cluster('a'), cluster('c'), cluster('d')] });
    const cds2 = await c.next();
    expect(cds2.type_url).toBe(CDS);
    expect(sorted(cds2.names)).toEqual(['a', 'c', 'd']);
    c.ack(cds2);
    await c.expectNothing();
    expect(typeStatus('node-1', LDS).subscription).toBe('*');
    expect(typeStatus('node-1', CDS).subscription).toBe('*');
  });

  it('"*" together with names stays a wildcard; names without "*" after a wildcard narrow it', async () => {
    h.set({ [CDS]: [cluster('a'), cluster('b')] });
    const c = h.sotw();
    const all = await subscribed(c, CDS);
    c.ack(all, ['*', 'a']);
    await c.expectNothing();
    c.ack(all, ['a']);
    const narrowed = await c.next();
    expect(narrowed.names).toEqual(['a']);
    c.ack(narrowed);
    await eventually(() => expect(typeStatus('node-1', CDS).subscription).toEqual(['a']));
  });

  it('named RDS and EDS get exactly the requested names; adding and removing names changes what is sent', async () => {
    h.set({
      [RDS]: [route('r1', ['a']), route('r2', ['a']), route('r3', ['a'])],
      [EDS]: [endpoints('a'), endpoints('b'), endpoints('c')],
    });
    const c = h.sotw();
    const rds = await subscribed(c, RDS, ['r1', 'r3']);
    expect(sorted(rds.names)).toEqual(['r1', 'r3']);
    const eds = await subscribed(c, EDS, ['b']);
    expect(eds.names).toEqual(['b']);
    expect(eds.resources[0]!.value).toMatchObject({ cluster_name: 'b' });

    c.ack(eds, ['b', 'c']); // subscribe c
    const eds2 = await c.next();
    expect(sorted(eds2.names)).toEqual(['b', 'c']);
    c.ack(eds2, ['c']); // unsubscribe b
    const eds3 = await c.next();
    expect(eds3.names).toEqual(['c']);
    c.ack(eds3);

    // A change to a resource nobody here asked for is not pushed.
    h.set({ [EDS]: [endpoints('a', 9090), endpoints('b', 9090), endpoints('c')] });
    await c.expectNothing();
    h.set({ [RDS]: [route('r1', ['a']), route('r2', ['b']), route('r3', ['b'])] });
    const rds2 = await c.next();
    expect(sorted(rds2.names)).toEqual(['r1', 'r3']);
  });

  it('a name requested before it exists is sent once it appears in the cache', async () => {
    h.set({ [RDS]: [route('other', ['a'])] });
    const c = h.sotw();
    const first = await subscribed(c, RDS, ['later']);
    expect(first.resources).toEqual([]);
    h.set({ [RDS]: [route('other', ['b'])] });
    await c.expectNothing();
    h.set({ [RDS]: [route('other', ['b']), route('later', ['a'])] });
    const r = await c.next();
    expect(r.names).toEqual(['later']);
    expect(r.resources[0]!.value).toMatchObject({ name: 'later' });
  });
});

describe('make-before-break', () => {
  const base = () => ({
    [CDS]: [cluster('a'), cluster('b')],
    [EDS]: [endpoints('a'), endpoints('b')],
    [LDS]: [listener('l', 10000, 'r')],
    [RDS]: [route('r', ['a', 'b'])],
  });

  async function envoyLike(): Promise<SotwClient> {
    const c = h.sotw();
    await subscribed(c, CDS);
    await subscribed(c, EDS, ['a', 'b']);
    await subscribed(c, LDS);
    await subscribed(c, RDS, ['r']);
    await c.expectNothing(150);
    return c;
  }

  it('keeps a removed cluster (and its endpoints) until the route that used it is ACKed', async () => {
    h.set(base());
    const c = await envoyLike();

    // b leaves the cache together with the route entry that pointed at it.
    h.set({ [CDS]: [cluster('a')], [EDS]: [endpoints('a')], [RDS]: [route('r', ['a'])] });
    const rds = await c.next();
    expect(rds.type_url).toBe(RDS);
    expect(rds.names).toEqual(['r']);
    await c.expectNothing(); // no CDS/EDS without b while the old route may still be in use

    c.ack(rds);
    const cds = await c.next();
    expect(cds.type_url).toBe(CDS);
    expect(cds.names).toEqual(['a']);
    c.ack(cds, []);
    // Now that no cluster refers to b's endpoints, they may go too.
    const eds = await c.next();
    expect(eds.type_url).toBe(EDS);
    expect(eds.names).toEqual(['a']);
    c.ack(eds, ['a']);
    await c.expectNothing();
  });

  it('keeps the cluster while the client NACKs the route that dropped it', async () => {
    h.set(base());
    const c = await envoyLike();
    h.set({ [CDS]: [cluster('a')], [EDS]: [endpoints('a')], [RDS]: [route('r', ['a'])] });
    const rds = await c.next();
    expect(rds.type_url).toBe(RDS);
    c.nack(rds, 'route rejected');
    await c.expectNothing(300);
    // The cluster list sent (or the next one) still has b while the accepted route needs it.
    const cdsStatus = typeStatus('node-1', CDS);
    expect(cdsStatus.sentVersion).toBe(cdsStatus.ackedVersion);
  });

  it('removing everything unwinds one ACK at a time: listener, then route, then cluster, then endpoints', async () => {
    h.set(base());
    const c = await envoyLike();
    h.set({ [CDS]: [], [EDS]: [], [LDS]: [], [RDS]: [] });
    const lds = await c.next();
    expect(lds.type_url).toBe(LDS);
    expect(lds.resources).toEqual([]);
    await c.expectNothing(); // the route is still referred to by the listener the client holds
    c.ack(lds);
    const rds = await c.next();
    expect(rds.type_url).toBe(RDS);
    expect(rds.resources).toEqual([]);
    await c.expectNothing();
    c.ack(rds);
    const cds = await c.next();
    expect(cds.type_url).toBe(CDS);
    expect(cds.resources).toEqual([]);
    await c.expectNothing();
    c.ack(cds);
    const eds = await c.next();
    expect(eds.type_url).toBe(EDS);
    expect(eds.resources).toEqual([]);
    c.ack(eds);
    await c.expectNothing();
  });

  it('on ADS pushes Cluster, ClusterLoadAssignment, Listener, RouteConfiguration when all change at once', async () => {
    h.set(base());
    const c = await envoyLike();
    h.set({
      [RDS]: [route('r', ['a', 'b', 'c'])],
      [LDS]: [listener('l', 10001, 'r')],
      [EDS]: [endpoints('a', 9090), endpoints('b'), endpoints('c')],
      [CDS]: [cluster('a'), cluster('b'), cluster('c')],
    });
    const got: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await c.next();
      got.push(r.type_url);
      c.ack(r);
    }
    expect(got).toEqual([CDS, EDS, LDS, RDS]);
    await c.expectNothing();
  });
});

describe('endpoints follow their cluster', () => {
  it('re-sends the ClusterLoadAssignment right after its cluster is re-sent, with a new nonce', async () => {
    h.set({ [CDS]: [cluster('a'), cluster('b')], [EDS]: [endpoints('a'), endpoints('b')] });
    const c = h.sotw();
    await subscribed(c, CDS);
    const eds1 = await subscribed(c, EDS, ['a']);

    h.set({ [CDS]: [cluster('a', 5), cluster('b')] });
    const cds = await c.next();
    expect(cds.type_url).toBe(CDS);
    const eds2 = await c.next();
    expect(eds2.type_url).toBe(EDS);
    expect(eds2.names).toEqual(['a']);
    expect(eds2.version_info).toBe(eds1.version_info); // same endpoints...
    expect(eds2.nonce).not.toBe(eds1.nonce); // ...sent again
    expect(eds2.nonce).not.toBe(cds.nonce);
    c.ack(cds);
    c.ack(eds2);
    await c.expectNothing();

    // A change to a cluster whose endpoints this client did not ask for re-sends nothing.
    h.set({ [CDS]: [cluster('a', 5), cluster('b', 7)] });
    c.ack(await c.next(5000, CDS));
    await c.expectNothing();
  });
});
