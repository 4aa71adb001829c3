// What Sluice sends to an Envoy, decoded strictly against Envoy's protos (Envoy cannot run
// here): a real Sluice, services and a rollout declared over REST, and a raw ADS client that
// subscribes like Envoy (wildcard CDS and LDS, then EDS and RDS by name) and ACKs everything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '../../src/xds/protos.js';
import type { FakeNode } from '../support/envoy-client.js';
import { edsName, envoyNode, FakeEnvoy, routeConfigNames } from '../support/envoy-client.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice } from '../support/sluice.js';
import type { Json } from '../support/strict-decode.js';

type Obj = { [key: string]: Json };
const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const list = (v: Json | undefined): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

let sluice: TestSluice;

/** The chat service's routes at 5% of 1000 buckets, in Envoy's JSON form: the same for every kind. */
const BUCKET_ROUTES = [
  {
    name: 'chat/sticky-canary',
    match: { prefix: '', headers: [{ name: 'x-user-bucket', range_match: { end: '50' } }] },
    route: { cluster: 'chat-v2' },
  },
  { name: 'chat/sticky-stable', match: { prefix: '', headers: [{ name: 'x-user-bucket', present_match: true }] }, route: { cluster: 'chat-v1' } },
  {
    name: 'chat/default',
    match: { prefix: '' },
    route: {
      weighted_clusters: {
        clusters: [
          { name: 'chat-v2', weight: 5 },
          { name: 'chat-v1', weight: 95 },
        ],
      },
    },
  },
];

beforeAll(async () => {
  sluice = await startTestSluice();
  const web = {
    versions: {
      v1: { endpoints: [{ address: '10.0.0.11', port: 8000 }] },
      v2: { endpoints: [{ address: '10.0.0.12', port: 8000 }] },
    },
    stable: 'v1',
    domains: ['web', 'web:*', 'localhost', 'localhost:*'],
    timeout: '3s',
    retries: { attempts: 3, on: ['5xx', 'reset', 'unavailable'], perTryTimeout: '1s' },
  };
  const greeter = {
    versions: {
      v1: { endpoints: [{ address: '10.0.0.21', port: 50051 }], protocol: 'grpc' },
      v2: { endpoints: [{ address: '10.0.0.22', port: 50051, weight: 3 }], protocol: 'grpc' },
    },
    stable: 'v1',
  };
  expect((await sluice.api('PUT', '/v1/services/web', web)).status).toBe(201);
  expect((await sluice.api('PUT', '/v1/services/greeter', greeter)).status).toBe(201);
  const chat = {
    versions: { v1: { endpoints: [{ address: '10.0.0.31', port: 50051 }] }, v2: { endpoints: [{ address: '10.0.0.32', port: 50051 }] } },
    stable: 'v1',
  };
  expect((await sluice.api('PUT', '/v1/services/chat', chat)).status).toBe(201);
  // Sticky by bucket: 5% of 1000 buckets is [0, 50) on the canary.
  const bucketed = await sluice.api('POST', '/v1/rollouts', {
    service: 'chat',
    canary: 'v2',
    steps: [{ setWeight: 5 }, { pause: {} }],
    sticky: { bucketHeader: 'X-User-Bucket', buckets: 1000 },
  });
  expect(bucketed.status, JSON.stringify(bucketed.body)).toBe(201);
  const rollout = await sluice.api('POST', '/v1/rollouts', {
    service: 'web',
    canary: 'v2',
    steps: [{ setWeight: 20 }, { pause: {} }],
    headerRoutes: [
      { name: 'testers', match: [{ header: 'x-canary', exact: 'true' }] },
      { name: 'beta-cookie', match: [{ cookie: 'beta', present: true }] },
      { name: 'preview', match: [{ query: 'preview', prefix: 'v2' }, { header: 'user-agent', regex: '.*Mobile.*' }] },
    ],
    sticky: { header: 'x-user' },
  });
  expect(rollout.status, JSON.stringify(rollout.body)).toBe(201);
  // Changes reach the cache after a short debounce: wait until the last one is served, so that
  // the nodes below sync the final state rather than an earlier one (which they would not ACK
  // past: they read pushes only when they fetch).
  await eventually(async () => {
    const probe = new FakeEnvoy(sluice.xdsPort, { id: 'probe', cluster: 'c', user_agent_name: 'gRPC Node', client_features: [] }, 'sotw', { allowDeprecated: true });
    try {
      const rc = (await probe.fetch(TypeUrl.RouteConfiguration, ['web'], 1000)).get('web');
      return list(list(rc?.virtual_hosts)[0]?.routes).length === 4;
    } finally {
      probe.close();
    }
  });
});

afterAll(async () => {
  await sluice?.stop();
});

/** Dangling references between the resources a client holds; [] when consistent. */
function referenceProblems(envoy: FakeEnvoy): string[] {
  const problems: string[] = [];
  const clusters = envoy.held(TypeUrl.Cluster);
  const assignments = envoy.held(TypeUrl.ClusterLoadAssignment);
  const routeConfigs = envoy.held(TypeUrl.RouteConfiguration);
  for (const [name, listener] of envoy.held(TypeUrl.Listener))
    for (const rc of routeConfigNames(listener)) if (!routeConfigs.has(rc)) problems.push(`listener ${name} uses route configuration ${rc}, not served`);
  for (const [rcName, rc] of routeConfigs)
    for (const vh of list(rc.virtual_hosts))
      for (const route of list(vh.routes)) {
        const action = (route.route ?? {}) as Obj;
        const named = [action.cluster, ...list((action.weighted_clusters as Obj | undefined)?.clusters).map((c) => c.name), ...list(action.request_mirror_policies).map((p) => p.cluster)];
        for (const c of named.filter((n): n is string => typeof n === 'string'))
          if (!clusters.has(c)) problems.push(`route ${rcName}/${vh.name}/${route.name} names cluster ${c}, not in CDS`);
      }
  for (const [name, cluster] of clusters) {
    if (cluster.type !== 'EDS') continue;
    const cla = assignments.get(edsName(cluster));
    const endpoints = list(cla?.endpoints).flatMap((locality) => list(locality.lb_endpoints));
    if (endpoints.length === 0) problems.push(`EDS cluster ${name} has no endpoints`);
  }
  return problems;
}

function virtualHost(envoy: FakeEnvoy, routeConfig: string, name: string): Obj {
  const vh = list(envoy.held(TypeUrl.RouteConfiguration).get(routeConfig)?.virtual_hosts).find((v) => v.name === name);
  if (!vh) throw new Error(`no virtual host ${name} in ${routeConfig}`);
  return vh;
}

async function ackedByFleet(nodeId: string): Promise<Obj> {
  return eventually(async () => {
    const { body } = await sluice.api('GET', '/v1/fleet');
    const node = (body.nodes as Obj[]).find((n) => n.id === nodeId);
    const types = Object.values((node?.types ?? {}) as Record<string, Obj>);
    return types.length === 4 && types.every((t) => t.ackedVersion === t.sentVersion) ? node : undefined;
  });
}

describe.each(['sotw', 'delta'] as const)('an Envoy node over %s ADS', (mode) => {
  let envoy: FakeEnvoy;

  beforeAll(async () => {
    envoy = new FakeEnvoy(sluice.xdsPort, envoyNode(`envoy-${mode}`), mode, { allowDeprecated: true });
    await envoy.syncLikeEnvoy();
  });

  afterAll(() => envoy?.close());

  it('receives only resources that decode strictly against their protos', () => {
    expect(envoy.problems).toEqual([]);
    for (const t of [TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]) expect(envoy.held(t).size, t).toBeGreaterThan(0);
  });

  it('holds a consistent set: routes name served clusters, EDS clusters have endpoints, listeners their routes', () => {
    expect(referenceProblems(envoy)).toEqual([]);
    expect([...envoy.held(TypeUrl.Cluster).keys()].sort()).toEqual(['chat-v1', 'chat-v2', 'greeter-v1', 'greeter-v2', 'web-v1', 'web-v2']);
  });

  it('gets one socket listener with the HTTP connection manager, never an API listener', () => {
    const listeners = [...envoy.held(TypeUrl.Listener).values()];
    expect(listeners.map((l) => l.name)).toEqual(['sluice_http']);
    const [listener] = listeners as [Obj];
    expect(listener.api_listener).toBeUndefined();
    expect(listener.address).toEqual({ socket_address: { address: '0.0.0.0', port_value: 10000 } });
    const hcm = list(list(listener.filter_chains)[0]!.filters)[0]!.typed_config as Obj;
    expect(hcm['@type']).toBe('type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
    expect(hcm.rds).toEqual({ route_config_name: 'sluice_http', config_source: { ads: {}, resource_api_version: 'V3' } });
  });

  it('reaches gRPC versions over HTTP/2 and HTTP/1 versions without upstream options', () => {
    const clusters = envoy.held(TypeUrl.Cluster);
    for (const name of ['greeter-v1', 'greeter-v2']) {
      const options = (clusters.get(name)!.typed_extension_protocol_options as Obj)[HTTP_OPTIONS] as Obj;
      expect(options['@type'], name).toBe(`type.googleapis.com/${HTTP_OPTIONS}`);
      expect(options.explicit_http_config, name).toEqual({ http2_protocol_options: {} });
    }
    for (const name of ['web-v1', 'web-v2']) expect(clusters.get(name)!.typed_extension_protocol_options, name).toBeUndefined();
  });

  it('routes header cohorts first, then a sticky weighted split with the canary first', () => {
    const routes = list(virtualHost(envoy, 'sluice_http', 'web').routes);
    expect(routes.map((r) => (r.route as Obj).cluster ?? 'weighted')).toEqual(['web-v2', 'web-v2', 'web-v2', 'weighted']);
    const match = (i: number) => routes[i]!.match as Obj;
    expect(match(0).headers).toEqual([{ name: 'x-canary', string_match: { exact: 'true' } }]);
    expect(list(match(1).headers)[0]!.name).toBe('cookie');
    expect(match(2).query_parameters).toEqual([{ name: 'preview', string_match: { prefix: 'v2' } }]);
    const action = routes[3]!.route as Obj;
    expect(action.weighted_clusters).toEqual({
      clusters: [
        { name: 'web-v2', weight: 20 },
        { name: 'web-v1', weight: 80 },
      ],
      use_hash_policy: true,
    });
    expect(action.hash_policy).toEqual([{ header: { header_name: 'x-user' } }]);
  });

  it('routes sticky buckets by range to the canary, any other value to stable, then the random split', () => {
    expect(list(virtualHost(envoy, 'sluice_http', 'chat').routes)).toEqual(BUCKET_ROUTES);
  });

  it("carries the service's timeout and retry policy on each of its routes", () => {
    for (const route of list(virtualHost(envoy, 'sluice_http', 'web').routes)) {
      const action = route.route as Obj;
      expect(action.timeout, String(route.name)).toBe('3s');
      expect(action.retry_policy, String(route.name)).toEqual({ retry_on: '5xx,reset,unavailable', num_retries: 2, per_try_timeout: '1s' });
    }
    for (const route of list(virtualHost(envoy, 'sluice_http', 'greeter').routes)) expect((route.route as Obj).retry_policy).toBeUndefined();
  });

  it('is listed in the fleet as an Envoy with every type ACKed and nothing rejected', async () => {
    const node = await ackedByFleet(`envoy-${mode}`);
    expect(node.group).toBe('envoy');
    for (const t of Object.values(node.types as Record<string, Obj>)) expect(t.lastNack).toBeNull();
  });
});

describe('deprecated fields', () => {
  // Envoy accepts deprecated fields with a warning (counted in runtime.deprecated_feature_use),
  // and turns them into errors release by release: none may reach an Envoy node.
  it('never reach an Envoy node', async () => {
    const envoy = new FakeEnvoy(sluice.xdsPort, envoyNode('envoy-deprecations'));
    try {
      await envoy.syncLikeEnvoy();
      expect(envoy.problems).toEqual([]);
    } finally {
      envoy.close();
    }
  });
});

describe('a proxyless gRPC node', () => {
  const grpcNode: FakeNode = { id: 'grpc-node', cluster: 'c', user_agent_name: 'gRPC Node', client_features: [] };

  it('gets API listeners only, and its own consistent, strictly valid resources', async () => {
    // gRPC accepts only the older header matcher fields, which Envoy deprecated: allowed here.
    const client = new FakeEnvoy(sluice.xdsPort, grpcNode, 'sotw', { allowDeprecated: true });
    try {
      // gRPC subscribes by name: xds:///web asks for listener "web", and so on down.
      const listeners = await client.fetch(TypeUrl.Listener, ['web', 'greeter', 'chat']);
      expect([...listeners.keys()].sort()).toEqual(['chat', 'greeter', 'web']);
      for (const l of listeners.values()) {
        expect(l.address).toBeUndefined();
        expect((l.api_listener as Obj).api_listener).toBeDefined();
      }
      const routeConfigs = await client.fetch(TypeUrl.RouteConfiguration, [...listeners.values()].flatMap(routeConfigNames));
      const clusterNames = [...routeConfigs.values()].flatMap((rc) =>
        list(rc.virtual_hosts).flatMap((vh) =>
          list(vh.routes).flatMap((r) => {
            const a = r.route as Obj;
            return a.cluster ? [String(a.cluster)] : list((a.weighted_clusters as Obj).clusters).map((c) => String(c.name));
          }),
        ),
      );
      const clusters = await client.fetch(TypeUrl.Cluster, [...new Set(clusterNames)]);
      await client.fetch(TypeUrl.ClusterLoadAssignment, [...clusters.values()].map(edsName));
      expect(client.problems).toEqual([]);
      expect(referenceProblems(client)).toEqual([]);

      // Sticky buckets reach gRPC nodes exactly as they reach Envoy.
      expect(list(virtualHost(client, 'chat', 'chat').routes)).toEqual(BUCKET_ROUTES);
      // Hash-based picking of weighted clusters is Envoy-only; gRPC ignores it.
      const split = list(virtualHost(client, 'web', 'web').routes).at(-1)!.route as Obj;
      expect((split.weighted_clusters as Obj).use_hash_policy).toBeUndefined();
      expect(split.hash_policy).toBeUndefined();
      // gRPC reads the timeout from max_stream_duration and retries only on gRPC statuses.
      expect(split.max_stream_duration).toEqual({ max_stream_duration: '3s' });
      expect(split.retry_policy).toEqual({ retry_on: 'unavailable', num_retries: 2 });
      // Nor does gRPC get Envoy's upstream HTTP/2 options (it speaks HTTP/2 anyway).
      expect(client.held(TypeUrl.Cluster).get('greeter-v1')!.typed_extension_protocol_options).toBeUndefined();
    } finally {
      client.close();
    }
  });

  it('never gets a socket listener, even when asking like Envoy', async () => {
    const client = new FakeEnvoy(sluice.xdsPort, { ...grpcNode, id: 'grpc-wildcard' }, 'sotw', { allowDeprecated: true });
    try {
      const listeners = await client.fetch(TypeUrl.Listener);
      expect(listeners.size).toBeGreaterThan(0);
      for (const l of listeners.values()) expect(l.api_listener, String(l.name)).toBeDefined();
      expect(client.problems).toEqual([]);
    } finally {
      client.close();
    }
  });
});
