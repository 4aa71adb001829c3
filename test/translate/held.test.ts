// Held versions: a canary without traffic (rolled back, or before its first weight) and the stable
// version while the canary takes 100% stay in gRPC routes at weight 0, so proxyless clients keep
// their clusters subscribed; Envoy, which holds every cluster anyway, gets plain routes.
import { describe, expect, it } from 'vitest';
import { RolloutSpecSchema } from '../../src/model/rollout.js';
import type { NamedService } from '../../src/model/service.js';
import { routingOf } from '../../src/reconcile/routing-of.js';
import { createRollout, transition } from '../../src/rollout/machine.js';
import { DEFAULT_ENVOY_LISTENER } from '../../src/translate/listeners.js';
import type { Routing } from '../../src/translate/routing.js';
import { stableRouting } from '../../src/translate/routing.js';
import type { ResourcesByType } from '../../src/translate/translate.js';
import { translateEnvoy, translateGrpc } from '../../src/translate/translate.js';
import { messageType, TypeUrl } from '../../src/xds/protos.js';
import { decodeStrict } from '../support/strict-decode.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const echo: NamedService = {
  name: 'echo',
  stable: 'v1',
  versions: { v1: { endpoints: [{ address: '10.0.0.1', port: 50051 }] }, v2: { endpoints: [{ address: '10.0.0.2', port: 50051 }] } },
};
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
const spec = RolloutSpecSchema.parse({
  service: 'echo',
  canary: 'v2',
  steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 100 }, { pause: {} }],
  headerRoutes: [{ name: 'testers', match: [{ header: 'x-canary', exact: 'true' }] }],
  sticky: { bucketHeader: 'x-b', buckets: 100 },
});

/** The route configuration a kind gets for echo, decoded strictly (no deprecated fields: gRPC
 *  clients get the legacy header matchers, none of which this routing uses). */
function routeConfig(out: ResourcesByType, name: string): { msg: Obj; refs: readonly string[] } {
  const r = out[TypeUrl.RouteConfiguration]!.find((x) => x.name === name)!;
  const any = messageType('google.protobuf.Any').decode(r.any) as unknown as { type_url: string; value: Uint8Array };
  const { value, problems } = decodeStrict('envoy.config.route.v3.RouteConfiguration', any.value);
  expect(problems).toEqual([]);
  return { msg: value, refs: r.refs[TypeUrl.Cluster] ?? [] };
}
const grpc = (r: Routing) => routeConfig(translateGrpc([r]), 'echo');
const envoy = (r: Routing) => routeConfig(translateEnvoy([r], DEFAULT_ENVOY_LISTENER), DEFAULT_ENVOY_LISTENER.name);

describe('routingOf holds the versions without traffic', () => {
  it('holds the canary before its first weight and after a rollback, with no cohorts, buckets or mirror', () => {
    let s = createRollout('r', spec, 'v1', at(0), 'test');
    expect(s.canaryWeight).toBe(10);
    expect(routingOf(echo, s).held).toBeUndefined(); // both versions take traffic
    s = transition(s, { type: 'rollback' }, at(1), 'test').state;
    expect(s.phase).toBe('RolledBack');
    expect(routingOf(echo, s)).toEqual({ ...stableRouting(echo), held: ['v2'] });
  });

  it('holds the stable version while the canary takes 100%, and nothing once promoted', () => {
    let s = createRollout('r', spec, 'v1', at(0), 'test');
    s = transition(s, { type: 'fleetAcked', canaryWeight: 10, nodes: 1 }, at(1), 'fleet').state;
    s = transition(s, { type: 'promote' }, at(2), 'test').state;
    expect(s.canaryWeight).toBe(100);
    const r = routingOf(echo, s);
    expect(r.split).toEqual([{ version: 'v2', weight: 100 }]);
    expect(r.held).toEqual(['v1']);
    const promoted = transition(s, { type: 'promote', full: true }, at(3), 'test').state;
    expect(promoted.phase).toBe('Promoted');
    expect(routingOf({ ...echo, stable: 'v2' }, promoted)).toEqual(stableRouting({ ...echo, stable: 'v2' }));
  });

  it('does not hold a canary the service no longer declares', () => {
    const rolledBack = transition(createRollout('r', spec, 'v1', at(0), 'test'), { type: 'rollback' }, at(1), 'test').state;
    const withoutV2: NamedService = { ...echo, versions: { v1: echo.versions.v1! } };
    expect(routingOf(withoutV2, rolledBack)).toEqual(stableRouting(withoutV2));
  });
});

describe('held versions per kind of client', () => {
  const rolledBack: Routing = { ...stableRouting(echo), held: ['v2'] };

  it('gRPC: the canary stays in weighted_clusters at weight 0, weights summing to 100, and in the refs', () => {
    const { msg, refs } = grpc(rolledBack);
    const routes = msg.virtual_hosts[0].routes;
    expect(routes).toHaveLength(1); // no header cohorts, no bucket routes
    expect(routes[0].route.weighted_clusters).toEqual({
      clusters: [
        { name: 'echo-v2', weight: 0 },
        { name: 'echo-v1', weight: 100 },
      ],
    });
    expect(routes[0].route.request_mirror_policies).toBeUndefined();
    // The route names the canary's cluster: the client keeps it (make-before-break refs).
    expect([...refs].sort()).toEqual(['echo-v1', 'echo-v2']);
  });

  it('gRPC: a held stable version comes along with a 100% canary', () => {
    const { msg, refs } = grpc({ service: echo, split: [{ version: 'v2', weight: 100 }], headerRoutes: [], held: ['v1'] });
    expect(msg.virtual_hosts[0].routes.at(-1).route.weighted_clusters.clusters).toEqual([
      { name: 'echo-v1', weight: 0 },
      { name: 'echo-v2', weight: 100 },
    ]);
    expect([...refs].sort()).toEqual(['echo-v1', 'echo-v2']);
  });

  it('Envoy: a plain route to stable (it holds every cluster by wildcard anyway)', () => {
    const { msg, refs } = envoy(rolledBack);
    expect(msg.virtual_hosts[0].routes).toEqual([{ name: 'echo/default', match: { prefix: '' }, route: { cluster: 'echo-v1' } }]);
    expect(refs).toEqual(['echo-v1']);
  });

  it('the same routing without held versions is unchanged for both kinds', () => {
    expect(grpc(stableRouting(echo)).msg.virtual_hosts[0].routes[0].route).toEqual({ cluster: 'echo-v1' });
    expect(envoy(stableRouting(echo)).msg.virtual_hosts[0].routes[0].route).toEqual({ cluster: 'echo-v1' });
  });
});
