// Envoy with scoped routes (--envoy-routes scoped): a route configuration per service, picked by a
// routing scope per host. Every resource is decoded strictly against Envoy's protos (Envoy cannot
// run here); over delta ADS a weight change of one service sends that service's route
// configuration and nothing else, whatever else is declared.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NamedService } from '../../src/model/service.js';
import { ScopedEnvoyKind, scopeKeyOf, scopeKeysOf } from '../../src/translate/envoy-scoped.js';
import { DEFAULT_ENVOY_LISTENER } from '../../src/translate/listeners.js';
import { stableRouting } from '../../src/translate/routing.js';
import { messageType, TypeUrl } from '../../src/xds/protos.js';
import type { Resource } from '../../src/xds/resource.js';
import { edsName, envoyNode, FakeEnvoy } from '../support/envoy-client.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice } from '../support/sluice.js';
import type { Json } from '../support/strict-decode.js';
import { decodeStrict } from '../support/strict-decode.js';

type Obj = { [key: string]: Json };
const list = (v: Json | undefined): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);
const ADS = { ads: {}, resource_api_version: 'V3' };
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** A resource decoded strictly, with no deprecated field (what Envoy gets). */
function decoded(r: Resource): Obj {
  const any = messageType('google.protobuf.Any').decode(r.any) as unknown as { type_url: string; value: Uint8Array };
  expect(any.type_url).toBe(r.typeUrl);
  const { value, problems } = decodeStrict(r.typeUrl.slice(r.typeUrl.lastIndexOf('/') + 1), any.value);
  expect(problems, `${r.typeUrl} ${r.name}`).toEqual([]);
  return value;
}

const svc = (name: string, domains?: string[]): NamedService => ({
  name,
  stable: 'v1',
  versions: { v1: { endpoints: [{ address: '10.0.0.1', port: 8000 }] }, v2: { endpoints: [{ address: '10.0.0.2', port: 8000 }] } },
  ...(domains ? { domains } : {}),
});

describe('scope keys', () => {
  it('are exact hosts, lower case, without the port', () => {
    expect(scopeKeyOf('web')).toBe('web');
    expect(scopeKeyOf('Web.Example.com:8080')).toBe('web.example.com');
    expect(scopeKeyOf('web:*')).toBe('web');
    // The default domains (name, name:*) make one scope.
    expect(scopeKeysOf(svc('echo'))).toEqual(['echo']);
    expect(scopeKeysOf(svc('web', ['web', 'web:*', 'localhost', 'localhost:8080']))).toEqual(['localhost', 'web']);
  });

  it('refuse wildcard hosts, naming the domain', () => {
    for (const d of ['*', '*.example.com', 'web*', '*:8080']) expect(() => scopeKeyOf(d), d).toThrow(`domain "${d}" is not an exact host name`);
  });
});

describe('ScopedEnvoyKind', () => {
  const kind = new ScopedEnvoyKind(DEFAULT_ENVOY_LISTENER);
  const out = kind.assemble([kind.part(stableRouting(svc('echo'))), kind.part(stableRouting(svc('web', ['web', 'web:*', 'localhost'])))]);
  const only = (t: string) => new Map((out[t] ?? []).map((r) => [r.name, r]));

  it('gives the listener scoped routes over ADS, keyed by the host of :authority', () => {
    const [listener] = [...only(TypeUrl.Listener).values()];
    const l = decoded(listener!);
    const hcm = list(list(l.filter_chains)[0]!.filters)[0]!.typed_config as Obj;
    expect(hcm['@type']).toBe(HCM);
    expect(hcm.rds).toBeUndefined();
    expect(hcm.scoped_routes).toEqual({
      name: 'sluice_http',
      scope_key_builder: { fragments: [{ header_value_extractor: { name: ':authority', element_separator: ':', index: 0 } }] },
      rds_config_source: ADS,
      scoped_rds: { scoped_rds_config_source: ADS },
    });
    expect(listener!.refs).toEqual({});
  });

  it('gives each service its route configuration and a scope per host, owned by the service', () => {
    expect([...only(TypeUrl.RouteConfiguration).keys()].sort()).toEqual(['echo', 'web']);
    expect([...only(TypeUrl.ScopedRouteConfiguration).keys()].sort()).toEqual(['echo', 'localhost', 'web']);
    const scope = decoded(only(TypeUrl.ScopedRouteConfiguration).get('localhost')!);
    expect(scope).toEqual({ name: 'localhost', route_configuration_name: 'web', key: { fragments: [{ string_key: 'localhost' }] } });
    expect(only(TypeUrl.ScopedRouteConfiguration).get('localhost')!.refs).toEqual({ [TypeUrl.RouteConfiguration]: ['web'] });
    const rc = decoded(only(TypeUrl.RouteConfiguration).get('web')!);
    expect(rc.name).toBe('web');
    expect(list(rc.virtual_hosts).map((v) => v.domains)).toEqual([['web', 'web:*', 'localhost']]);
    expect(only(TypeUrl.RouteConfiguration).get('web')!.owners).toEqual({ web: only(TypeUrl.RouteConfiguration).get('web')!.version });
    for (const t of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]) for (const r of out[t]!) decoded(r);
  });

  it('cannot translate a service with a wildcard domain', () => {
    expect(() => kind.part(stableRouting(svc('any', ['*.example.com'])))).toThrow('domain "*.example.com" is not an exact host name');
  });
});

describe.each(['sotw', 'delta'] as const)('a real Sluice with --envoy-routes scoped, Envoy over %s ADS', (mode) => {
  let sluice: TestSluice;
  let envoy: FakeEnvoy;
  const services = ['alpha', 'beta', 'gamma', 'delta'];

  /** Envoy's order: clusters, endpoints, listeners, their scopes, the scopes' route configurations. */
  async function syncScoped(node: FakeEnvoy): Promise<void> {
    const clusters = await node.fetch(TypeUrl.Cluster);
    await node.fetch(TypeUrl.ClusterLoadAssignment, [...clusters.values()].map(edsName));
    await node.fetch(TypeUrl.Listener);
    const scopes = await node.fetch(TypeUrl.ScopedRouteConfiguration);
    await node.fetch(TypeUrl.RouteConfiguration, [...scopes.values()].map((s) => String(s.route_configuration_name)));
  }

  beforeAll(async () => {
    sluice = await startTestSluice({ envoyRoutes: 'scoped' });
    for (const name of services) {
      const body = { versions: { v1: { endpoints: [{ address: '10.0.1.1', port: 8000 }] }, v2: { endpoints: [{ address: '10.0.1.2', port: 8000 }] } }, stable: 'v1' };
      expect((await sluice.api('PUT', `/v1/services/${name}`, body)).status).toBe(201);
    }
    await sluice.reconciler.whenPublished(sluice.state.state.revision);
    envoy = new FakeEnvoy(sluice.xdsPort, envoyNode(`scoped-${mode}`), mode);
    await syncScoped(envoy);
  });

  afterAll(async () => {
    envoy?.close();
    await sluice?.stop();
  });

  it('holds a scope and a route configuration per service, every resource strict, every route on a held cluster', () => {
    expect(envoy.problems).toEqual([]);
    expect([...envoy.held(TypeUrl.ScopedRouteConfiguration).keys()].sort()).toEqual([...services].sort());
    expect([...envoy.held(TypeUrl.RouteConfiguration).keys()].sort()).toEqual([...services].sort());
    const clusters = envoy.held(TypeUrl.Cluster);
    for (const rc of envoy.held(TypeUrl.RouteConfiguration).values())
      for (const vh of list(rc.virtual_hosts)) for (const r of list(vh.routes)) expect(clusters.has(String((r.route as Obj).cluster))).toBe(true);
  });

  it('a weight change of one service sends its route configuration only (delta), and the rollout counts the ACK', async () => {
    const created = await sluice.api('POST', '/v1/rollouts', { service: 'beta', canary: 'v2', steps: [{ setWeight: 30 }, { pause: {} }] });
    expect(created.status).toBe(201);
    const pushed = await envoy.awaitPush(TypeUrl.RouteConfiguration);
    if (mode === 'delta') expect([...pushed.keys()]).toEqual(['beta']);
    else expect([...pushed.keys()].sort()).toEqual([...services].sort()); // state of the world: every name asked for
    const beta = list(list(pushed.get('beta')!.virtual_hosts)[0]!.routes).at(-1)!.route as Obj;
    expect(beta).toEqual({ weighted_clusters: { clusters: [{ name: 'beta-v2', weight: 30 }, { name: 'beta-v1', weight: 70 }] } });
    const paused = await eventually(async () => {
      const r = (await sluice.api('GET', '/v1/rollouts/beta')).body;
      return r.phase === 'Paused' ? r : undefined;
    });
    expect(paused.lastAckNodes).toBe(1);
    // Nothing else moved: no scope, listener, cluster or endpoint response.
    for (const t of [TypeUrl.ScopedRouteConfiguration, TypeUrl.Listener, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]) expect(envoy.unread(t), t).toBe(0);
    expect(envoy.problems).toEqual([]);
  });

  it('a new service brings its scope, then its route configuration', async () => {
    const body = { versions: { v1: { endpoints: [{ address: '10.0.2.1', port: 8000 }] } }, stable: 'v1', domains: ['epsilon.example.com', 'epsilon.example.com:*'] };
    expect((await sluice.api('PUT', '/v1/services/epsilon', body)).status).toBe(201);
    await envoy.awaitPush(TypeUrl.Cluster);
    const scopes = await envoy.awaitPush(TypeUrl.ScopedRouteConfiguration);
    expect(envoy.held(TypeUrl.ScopedRouteConfiguration).get('epsilon.example.com')).toEqual({
      '@type': TypeUrl.ScopedRouteConfiguration,
      name: 'epsilon.example.com',
      route_configuration_name: 'epsilon',
      key: { fragments: [{ string_key: 'epsilon.example.com' }] },
    });
    if (mode === 'delta') expect([...scopes.keys()]).toEqual(['epsilon.example.com']);
    const names = [...envoy.held(TypeUrl.ScopedRouteConfiguration).values()].map((s) => String(s.route_configuration_name));
    const routes = await envoy.fetch(TypeUrl.RouteConfiguration, mode === 'delta' ? ['epsilon'] : names);
    expect(routes.has('epsilon')).toBe(true);
    expect(envoy.problems).toEqual([]);
  });

  it('refuses a service with a wildcard domain, naming it', async () => {
    const res = await sluice.api('PUT', '/v1/services/wild', {
      versions: { v1: { endpoints: [{ address: '10.0.3.1', port: 8000 }] } },
      stable: 'v1',
      domains: ['*.wild.example.com'],
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(JSON.stringify(res.body)).toContain('domain \\"*.wild.example.com\\" is not an exact host name');
  });
});
