// XdsServer as a whole over real gRPC: many clients, disconnects mid-push, fleet status,
// awaitConvergence, per-type services and invalid first requests.
import type { StatusObject } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SotwClient, SotwResponse } from '../support/ads-client.js';
import { fetch, perTypePath } from '../support/ads-client.js';
import type { Harness } from './fixtures.js';
import { CDS, EDS, LDS, cluster, endpoints, eventually, listener, sorted, startXds } from './fixtures.js';

let h: Harness;
beforeEach(async () => {
  h = await startXds();
});
afterEach(async () => {
  await h.close();
});

async function subscribedAndAcked(c: SotwClient, typeUrl: string, names: string[] = []): Promise<SotwResponse> {
  c.subscribe(typeUrl, names);
  const r = await c.next();
  c.ack(r);
  await eventually(() => expect(h.fleetNode(c.node!.id!)?.types[typeUrl]?.ackedVersion).toBe(r.version_info));
  return r;
}

describe('disconnects', () => {
  it('a client that disconnects mid-push does not break the server; the others get their pushes', async () => {
    h.set({ [CDS]: [cluster('a', 1)] });
    const clients = Array.from({ length: 6 }, (_, i) => h.sotw({ node: { id: `n${i}` } }));
    for (const c of clients) await subscribedAndAcked(c, CDS);
    expect(h.xds.fleet().map((n) => n.id)).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5']);

    clients[0]!.cancel(); // gone before the change; the server may not know yet
    h.set({ [CDS]: [cluster('a', 2)] });
    clients[1]!.cancel(); // gone right after the push was written
    h.set({ [CDS]: [cluster('a', 3)] });
    clients[2]!.cancel(); // gone with two pushes in flight

    const stay = clients.slice(3);
    for (const c of stay) {
      const r2 = await c.next();
      expect(r2.resources[0]!.value).toMatchObject({ connect_timeout: { seconds: '2' } });
      const r3 = await c.next();
      expect(r3.resources[0]!.value).toMatchObject({ connect_timeout: { seconds: '3' } });
      c.ack(r3);
    }
    await eventually(() => expect(h.xds.fleet().map((n) => n.id)).toEqual(['n3', 'n4', 'n5']));
    expect(h.xds.connectedStreams).toBe(3);

    // And the server keeps serving: another change, another new client.
    h.set({ [CDS]: [cluster('a', 4), cluster('b')] });
    for (const c of stay) expect(sorted((await c.next()).names)).toEqual(['a', 'b']);
    const late = h.sotw({ node: { id: 'late' } });
    late.subscribe(CDS);
    expect(sorted((await late.next()).names)).toEqual(['a', 'b']);
  });

  it('a client that half-closes gets its call ended with OK and leaves the fleet', async () => {
    const c = h.sotw();
    await subscribedAndAcked(c, LDS);
    const s = await c.close();
    expect(s.code).toBe(GrpcStatus.OK);
    await eventually(() => expect(h.xds.fleet()).toEqual([]));
  });

  it('merges several streams of one node id in fleet() and drops the node with its last stream', async () => {
    h.set({ [CDS]: [cluster('a')], [LDS]: [listener('l')] });
    const cdsStream = h.sotw({ node: { id: 'same', user_agent_name: 'envoy', user_agent_version: '1.36.0' } });
    const ldsStream = h.sotw({ node: { id: 'same' } });
    await subscribedAndAcked(cdsStream, CDS);
    await subscribedAndAcked(ldsStream, LDS);
    const node = h.fleetNode('same')!;
    expect(node.streams).toHaveLength(2);
    expect(node.streams.every((s) => s.flavour === 'sotw')).toBe(true);
    expect(Object.keys(node.types).sort()).toEqual([CDS, LDS].sort());
    expect(node.group).toBe('g');

    cdsStream.cancel();
    await eventually(() => expect(h.fleetNode('same')?.streams).toHaveLength(1));
    ldsStream.cancel();
    await eventually(() => expect(h.fleetNode('same')).toBeUndefined());
  });
});

describe('per-type services', () => {
  const streamClusters = perTypePath('cluster', 'Clusters', 'Stream');

  it('StreamClusters serves clusters and only clusters', async () => {
    h.set({ [CDS]: [cluster('a')], [EDS]: [endpoints('a')], [LDS]: [listener('l')] });
    const c = h.sotw({ path: streamClusters });
    c.subscribe(CDS);
    const r = await c.next();
    expect(r.type_url).toBe(CDS);
    expect(r.names).toEqual(['a']);
    c.ack(r);
    h.set({ [LDS]: [listener('l', 10001)], [EDS]: [endpoints('a', 9090)] });
    await c.expectNothing();
    h.set({ [CDS]: [cluster('a', 2)] });
    expect((await c.next()).type_url).toBe(CDS);
  });

  it('StreamClusters takes a request without type_url as a cluster request', async () => {
    h.set({ [CDS]: [cluster('a')] });
    const c = h.sotw({ path: streamClusters });
    c.send({ resource_names: [] });
    const r = await c.next();
    expect(r.type_url).toBe(CDS);
    expect(r.names).toEqual(['a']);
  });

  it('FetchClusters answers once with the current clusters', async () => {
    h.set({ [CDS]: [cluster('a'), cluster('b')] });
    const r = await fetch(h.port, perTypePath('cluster', 'Clusters', 'Fetch'), { node: { id: 'f' }, type_url: CDS });
    expect(r.type_url).toBe(CDS);
    expect(sorted(r.names)).toEqual(['a', 'b']);
  });
});

// Regression: a ProtocolError must reach the client as a status (grpc-js sends one for an
// emitted error; a destroyed call stays open on the client side forever).
describe('first request', () => {
  // All variants run concurrently in one test, so a server that never ends the call costs one
  // timeout, not one per variant.
  async function statuses(clients: { statusWithin(ms: number): Promise<StatusObject> }[]) {
    const settled = await Promise.allSettled(clients.map((c) => c.statusWithin(2000)));
    return settled.map((s) => (s.status === 'fulfilled' ? `${GrpcStatus[s.value.code]}: ${s.value.details}` : String(s.reason)));
  }

  it('without node.id ends the stream with INVALID_ARGUMENT (ADS, delta ADS, StreamClusters)', async () => {
    const clients = [
      h.sotw({ node: null }),
      h.sotw({ node: { cluster: 'c' } }),
      h.sotw({ node: null, path: perTypePath('cluster', 'Clusters', 'Stream') }),
      h.delta({ node: null }),
    ];
    for (const c of clients) c.subscribe(CDS);
    const got = await statuses(clients);
    for (const s of got) expect(s).toMatch(/^INVALID_ARGUMENT: .*node\.id/);
    expect(h.xds.fleet()).toEqual([]);
  });

  it('with a type the method does not serve ends the stream with INVALID_ARGUMENT', async () => {
    const adsWithoutType = h.sotw();
    adsWithoutType.send({ resource_names: [] });
    const clustersAskedForListeners = h.sotw({ path: perTypePath('cluster', 'Clusters', 'Stream') });
    clustersAskedForListeners.subscribe(LDS);
    const got = await statuses([adsWithoutType, clustersAskedForListeners]);
    expect(got[0]).toMatch(/^INVALID_ARGUMENT: .*type_url/);
    expect(got[1]).toMatch(/^INVALID_ARGUMENT: .*envoy\.config\.cluster\.v3\.Cluster/);
  });

  it('the node is read from the first request only', async () => {
    h.set({ [CDS]: [cluster('a')], [LDS]: [listener('l')] });
    const c = h.sotw({ node: { id: 'first', cluster: 'c1', user_agent_name: 'grpc-node-js', user_agent_version: '1.14.0' } });
    c.subscribe(CDS);
    await c.next();
    c.send({ type_url: LDS, resource_names: [], node: { id: 'second' } });
    await c.next();
    const fleet = h.xds.fleet();
    expect(fleet.map((n) => n.id)).toEqual(['first']);
    expect(fleet[0]).toMatchObject({ cluster: 'c1', userAgent: 'grpc-node-js/1.14.0' });
  });
});
