// Incremental (delta) xDS over real gRPC streams: per-resource versions, reconnects with
// initial_resource_versions, removals, subscribe/unsubscribe, NACK, make-before-break.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeltaClient, DeltaResponse } from '../support/ads-client.js';
import type { Harness } from './fixtures.js';
import { CDS, EDS, LDS, RDS, cluster, endpoints, eventually, listener, route, sorted, startXds } from './fixtures.js';

let h: Harness;
beforeEach(async () => {
  h = await startXds();
});
afterEach(async () => {
  await h.close();
});

/** Current per-resource versions in the cache. */
function versions(typeUrl: string): Record<string, string> {
  return Object.fromEntries([...h.cache.resources('g', typeUrl)].map(([n, r]) => [n, r.version]));
}

function typeStatus(node: string, typeUrl: string) {
  const t = h.fleetNode(node)?.types[typeUrl];
  if (!t) throw new Error(`${node} has no ${typeUrl} in fleet()`);
  return t;
}

/** ACKs and waits until the server has it, so a cache change right after cannot overtake it. */
async function acked(c: DeltaClient, r: DeltaResponse): Promise<void> {
  c.ack(r);
  await eventually(() => expect(typeStatus(c.node!.id!, r.type_url).ackedVersion).toBe(r.system_version_info));
}

async function subscribed(c: DeltaClient, typeUrl: string, names: string[] = [], initial: Record<string, string> = {}) {
  c.subscribe(typeUrl, names, initial);
  const r = await c.next();
  expect(r.type_url).toBe(typeUrl);
  await acked(c, r);
  return r;
}

describe('delta xDS', () => {
  it('an initial wildcard subscription gets every resource with its own version', async () => {
    h.set({ [CDS]: [cluster('a'), cluster('b'), cluster('c')] });
    const c = h.delta();
    const r = await subscribed(c, CDS);
    expect(sorted(r.names)).toEqual(['a', 'b', 'c']);
    const want = versions(CDS);
    for (const res of r.resources) {
      expect(res.version).toBe(want[res.name]);
      expect(res.value).toMatchObject({ name: res.name, type: 'EDS' });
    }
    expect(new Set(r.resources.map((x) => x.version)).size).toBe(3);
    expect(r.removed_resources).toEqual([]);
    expect(r.nonce).not.toBe('');
    expect(r.control_plane).toBe('sluice');
    await c.expectNothing();
  });

  it('sends only what changed, and removed resources in removed_resources', async () => {
    h.set({ [CDS]: [cluster('a'), cluster('b'), cluster('c')] });
    const c = h.delta();
    await subscribed(c, CDS);
    h.set({ [CDS]: [cluster('a', 2), cluster('b'), cluster('d')] });
    const r = await c.next();
    expect(sorted(r.names)).toEqual(['a', 'd']);
    expect(r.removed_resources).toEqual(['c']);
    expect(r.resources.find((x) => x.name === 'a')!.version).toBe(versions(CDS).a);
  });

  it('a reconnect with initial_resource_versions gets only what it lacks or holds in another version', async () => {
    h.set({ [CDS]: [cluster('a'), cluster('b'), cluster('c', 2)] });
    const first = h.delta({ node: { id: 'first' } });
    const all = await subscribed(first, CDS);
    const held = Object.fromEntries(all.resources.map((r) => [r.name, r.version]));
    await first.close();

    // The client holds a and b at the current versions, c at an old one, and gone (deleted since).
    const again = h.delta({ node: { id: 'again' } });
    again.subscribe(CDS, [], { a: held.a!, b: held.b!, c: 'an-old-version', gone: 'v0' });
    const r = await again.next();
    expect(r.names).toEqual(['c']);
    expect(r.removed_resources).toEqual(['gone']);
    await acked(again, r);
    await again.expectNothing();

    // A reconnect that holds everything is still answered (first request of the stream).
    const uptodate = h.delta({ node: { id: 'uptodate' } });
    uptodate.subscribe(CDS, [], versions(CDS));
    const empty = await uptodate.next();
    expect(empty.resources).toEqual([]);
    expect(empty.removed_resources).toEqual([]);
  });

  it('named subscribe and unsubscribe: only subscribed names are sent, unsubscribed ones no more', async () => {
    h.set({ [EDS]: [endpoints('a'), endpoints('b'), endpoints('c')] });
    const c = h.delta();
    const r1 = await subscribed(c, EDS, ['a']);
    expect(r1.names).toEqual(['a']);

    c.subscribe(EDS, ['b', 'not-yet']);
    const r2 = await c.next();
    expect(r2.names).toEqual(['b']); // a is not sent again
    await acked(c, r2);

    c.unsubscribe(EDS, ['a']);
    await c.expectNothing();
    await eventually(() => expect(typeStatus('node-1', EDS).subscription).toEqual(['b', 'not-yet']));

    h.set({ [EDS]: [endpoints('a', 1), endpoints('b'), endpoints('c', 1)] });
    await c.expectNothing(); // a and c changed; nobody here wants them
    h.set({ [EDS]: [endpoints('a', 1), endpoints('b'), endpoints('c', 1), endpoints('not-yet')] });
    const r3 = await c.next();
    expect(r3.names).toEqual(['not-yet']);
    await acked(c, r3);

    // Subscribing again to what it unsubscribed from sends it again.
    c.subscribe(EDS, ['a']);
    expect((await c.next()).names).toEqual(['a']);
  });

  it('honours subscription changes that come with a stale nonce', async () => {
    h.set({ [EDS]: [endpoints('a'), endpoints('b')] });
    const c = h.delta();
    c.subscribe(EDS, ['a']);
    const r1 = await c.next();
    h.set({ [EDS]: [endpoints('a', 9), endpoints('b')] });
    await c.next(); // r2: r1's nonce is stale now
    c.send({ type_url: EDS, response_nonce: r1.nonce, resource_names_subscribe: ['b'] });
    const r3 = await c.next();
    expect(r3.names).toEqual(['b']);
    // Unlike state of the world, each delta response is answered on its own: r1 was ACKed.
    expect(typeStatus('node-1', EDS).ackedVersion).toBe(r1.system_version_info);
  });

  it('records a NACK and does not resend the rejected resource; a newer version is sent', async () => {
    h.set({ [CDS]: [cluster('a', 1), cluster('b', 1)] });
    const c = h.delta();
    const first = await subscribed(c, CDS);
    h.set({ [CDS]: [cluster('a', 2), cluster('b', 1)] });
    const bad = await c.next();
    expect(bad.names).toEqual(['a']);
    c.nack(bad, 'cluster a rejected');
    await eventually(() => expect(typeStatus('node-1', CDS).lastNack?.message).toBe('cluster a rejected'));
    const t = typeStatus('node-1', CDS);
    expect(t.lastNack!.version).toBe(bad.system_version_info);
    expect(t.ackedVersion).toBe(first.system_version_info);
    await c.expectNothing();

    // Another resource changes: only it is sent, not the rejected a again.
    h.set({ [CDS]: [cluster('a', 2), cluster('b', 2)] });
    const next = await c.next();
    expect(next.names).toEqual(['b']);
    await acked(c, next);

    h.set({ [CDS]: [cluster('a', 3), cluster('b', 2)] });
    const fixed = await c.next();
    expect(fixed.names).toEqual(['a']);
    expect(fixed.resources[0]!.value).toMatchObject({ connect_timeout: { seconds: '3' } });
  });

  it('after a NACK, going back to the accepted resource version (a rollback) is sent at once', async () => {
    h.set({ [CDS]: [cluster('a', 1)] });
    const c = h.delta();
    const first = await subscribed(c, CDS);
    h.set({ [CDS]: [cluster('a', 2)] });
    c.nack(await c.next(), 'bad');
    await eventually(() => expect(typeStatus('node-1', CDS).lastNack?.message).toBe('bad'));
    h.set({ [CDS]: [cluster('a', 1)] });
    const back = await c.next();
    expect(back.names).toEqual(['a']);
    expect(back.resources[0]!.version).toBe(first.resources[0]!.version);
  });

  it('re-sends the endpoints of a cluster that is re-sent', async () => {
    h.set({ [CDS]: [cluster('a')], [EDS]: [endpoints('a')] });
    const c = h.delta();
    await subscribed(c, CDS);
    const eds1 = await subscribed(c, EDS, ['a']);
    h.set({ [CDS]: [cluster('a', 5)] });
    const cds = await c.next();
    expect(cds.type_url).toBe(CDS);
    const eds2 = await c.next();
    expect(eds2.type_url).toBe(EDS);
    expect(eds2.names).toEqual(['a']);
    expect(eds2.resources[0]!.version).toBe(eds1.resources[0]!.version);
    expect(eds2.nonce).not.toBe(eds1.nonce);
  });

  it('keeps a removed cluster until the route that used it is ACKed (make-before-break)', async () => {
    h.set({
      [CDS]: [cluster('a'), cluster('b')],
      [EDS]: [endpoints('a'), endpoints('b')],
      [LDS]: [listener('l', 10000, 'r')],
      [RDS]: [route('r', ['a', 'b'])],
    });
    const c = h.delta();
    await subscribed(c, CDS);
    await subscribed(c, EDS, ['a', 'b']);
    await subscribed(c, LDS);
    await subscribed(c, RDS, ['r']);

    h.set({ [CDS]: [cluster('a')], [EDS]: [endpoints('a')], [RDS]: [route('r', ['a'])] });
    const rds = await c.next();
    expect(rds.type_url).toBe(RDS);
    await c.expectNothing();
    c.ack(rds);
    const cds = await c.next();
    expect(cds.type_url).toBe(CDS);
    expect(cds.resources).toEqual([]);
    expect(cds.removed_resources).toEqual(['b']);
    c.ack(cds);
    const eds = await c.next();
    expect(eds.type_url).toBe(EDS);
    expect(eds.removed_resources).toEqual(['b']);
  });

  it('keeps the streams of other clients going when one delta client disconnects mid-push', async () => {
    h.set({ [CDS]: [cluster('a')] });
    const leaving = h.delta({ node: { id: 'leaving' } });
    const staying = h.delta({ node: { id: 'staying' } });
    await subscribed(leaving, CDS);
    await subscribed(staying, CDS);
    h.set({ [CDS]: [cluster('a', 2)] });
    leaving.cancel();
    h.set({ [CDS]: [cluster('a', 3)] });
    expect((await staying.next()).resources[0]!.value).toMatchObject({ connect_timeout: { seconds: '2' } });
    expect((await staying.next()).resources[0]!.value).toMatchObject({ connect_timeout: { seconds: '3' } });
    await eventually(() => expect(h.xds.fleet().map((n) => n.id)).toEqual(['staying']));
    expect(h.fleetNode('staying')!.streams[0]!.flavour).toBe('delta');
  });
});
