// Scoped configuration: a node that names the services it needs (node metadata
// `sluice.services`) receives only those services' listeners, routes, clusters and endpoints, and
// a change to another service sends it nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '../../src/xds/protos.js';
import { SotwClient, struct } from '../support/ads-client.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';

let sluice: TestSluice;
const clients: SotwClient[] = [];

function open(id: string, userAgent: string, services?: string[] | string): SotwClient {
  const c = SotwClient.open(sluice.xdsPort, {
    node: { id, cluster: 'scoped', user_agent_name: userAgent, ...(services ? { metadata: struct({ 'sluice.services': services }) } : {}) },
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  sluice = await startTestSluice();
  for (const [name, port] of [['echo', 7000], ['other', 7100], ['third', 7200]] as const)
    expect((await sluice.api('PUT', `/v1/services/${name}`, serviceOf({ v1: port, v2: port + 1 }))).status).toBe(201);
});

afterAll(async () => {
  for (const c of clients) c.cancel();
  await sluice?.stop();
});

describe('scoped configuration (sluice.services)', () => {
  it('gives an Envoy only the virtual hosts and clusters it asks for; other services\' changes send it nothing', async () => {
    const envoy = open('edge-echo', 'envoy', ['echo', 'third']);
    envoy.subscribe(TypeUrl.Cluster, []);
    const clusters = await envoy.next(5000, TypeUrl.Cluster);
    expect(clusters.names.sort()).toEqual(['echo-v1', 'echo-v2', 'third-v1', 'third-v2']);
    envoy.ack(clusters);
    envoy.subscribe(TypeUrl.RouteConfiguration, ['sluice_http']);
    const routes = await envoy.next(5000, TypeUrl.RouteConfiguration);
    expect((routes.resources[0]!.value.virtual_hosts as { name: string }[]).map((v) => v.name)).toEqual(['echo', 'third']);
    envoy.ack(routes);

    expect((await sluice.api('PUT', '/v1/services/other', serviceOf({ v1: 7100, v2: 7102 }))).status).toBe(200);
    await envoy.expectNothing(500);
    expect((await sluice.api('PUT', '/v1/services/echo', { ...serviceOf({ v1: 7000, v2: 7001 }), timeout: '2s' })).status).toBe(200);
    const changed = await envoy.next(5000, TypeUrl.RouteConfiguration);
    expect((changed.resources[0]!.value.virtual_hosts as { name: string; routes: { route: { timeout?: unknown } }[] }[])[0]!.routes[0]!.route.timeout).toMatchObject({ seconds: '2' });
  });

  it('gives a gRPC client nothing of a service outside its scope, and takes a comma-separated string', async () => {
    const grpc = open('app-echo', 'grpc-node-js', 'echo, third');
    grpc.subscribe(TypeUrl.Listener, ['echo', 'other']);
    const listeners = await grpc.next(5000, TypeUrl.Listener);
    expect(listeners.names).toEqual(['echo']);
    // An unscoped node of the same kind still sees everything.
    const all = open('app-all', 'grpc-node-js');
    all.subscribe(TypeUrl.Listener, ['echo', 'other']);
    expect((await all.next(5000, TypeUrl.Listener)).names.sort()).toEqual(['echo', 'other']);
  });

  it('serves nodes with the same scope from one group, and forgets the group when its last node leaves', async () => {
    const a = open('same-1', 'envoy', ['other']);
    const b = open('same-2', 'envoy', ['other']);
    for (const c of [a, b]) {
      c.subscribe(TypeUrl.Cluster, []);
      expect((await c.next(5000, TypeUrl.Cluster)).names.sort()).toEqual(['other-v1', 'other-v2']);
    }
    const fleet = sluice.xds.fleet();
    const group = fleet.find((n) => n.id === 'same-1')!.group;
    expect(group).toMatch(/^envoy~/);
    expect(fleet.find((n) => n.id === 'same-2')!.group).toBe(group);
    expect(sluice.xds.cache.groupNames()).toContain(group);
    a.cancel();
    b.cancel();
    await eventually(() => !sluice.xds.cache.groupNames().includes(group));
  });
});
