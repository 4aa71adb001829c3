// Mirroring (shadow traffic) in translation: Envoy nodes get a request mirror policy on the routes
// that carry the general traffic, strictly valid against Envoy's protos; proxyless gRPC clients,
// which cannot mirror, get byte-for-byte the routes they had. The rollout state says what to
// mirror (reconcile/routing-of.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RolloutSpecSchema } from '../../src/model/rollout.js';
import type { NamedService } from '../../src/model/service.js';
import { routingOf } from '../../src/reconcile/routing-of.js';
import { createRollout, transition } from '../../src/rollout/machine.js';
import { fractionOf } from '../../src/translate/envoy.js';
import { DEFAULT_ENVOY_LISTENER } from '../../src/translate/listeners.js';
import type { Routing } from '../../src/translate/routing.js';
import { stableRouting } from '../../src/translate/routing.js';
import type { ResourcesByType } from '../../src/translate/translate.js';
import { translateEnvoy, translateGrpc } from '../../src/translate/translate.js';
import { TypeUrl } from '../../src/xds/protos.js';
import type { Json } from '../support/strict-decode.js';
import { checkJson, decodeStrict } from '../support/strict-decode.js';

type Obj = { [key: string]: Json };

const echo: NamedService = {
  name: 'echo',
  stable: 'v1',
  versions: { v1: { endpoints: [{ address: '10.0.0.1', port: 8080 }] }, v2: { endpoints: [{ address: '10.0.0.2', port: 8080 }] } },
};

/** echo at `weight` % to v2, mirroring `percent` % to v2 (none when undefined). */
function routing(weight: number, percent?: number, extra: Partial<Routing> = {}): Routing {
  return {
    service: echo,
    split: [
      { version: 'v2', weight },
      { version: 'v1', weight: 100 - weight },
    ].filter((s) => s.weight > 0),
    headerRoutes: [],
    ...(percent === undefined ? {} : { mirror: { version: 'v2', percent } }),
    ...extra,
  };
}

/** A RouteConfiguration decoded strictly (Envoy: no deprecated field), in JSON form. */
function routeConfig(out: ResourcesByType, name: string, allowDeprecated = false): Obj {
  const r = out[TypeUrl.RouteConfiguration]!.find((x) => x.name === name)!;
  const { value, problems } = decodeStrict('google.protobuf.Any', r.any, { allowDeprecated });
  expect(problems, `${r.typeUrl} ${r.name}`).toEqual([]);
  return value;
}

const envoyRoutes = (r: Routing) => (routeConfig(translateEnvoy([r], DEFAULT_ENVOY_LISTENER), 'sluice_http').virtual_hosts as Obj[])[0]!.routes as Obj[];

// HUNDRED is the enum's 0, proto3's default: it is not on the wire, and Envoy reads it as HUNDRED.
const MIRROR_ALL = { request_mirror_policies: [{ cluster: 'echo-v2', runtime_fraction: { default_value: { numerator: 100 } } }] };

describe('a mirror for Envoy nodes', () => {
  it('at weight 0 is the plain stable route plus a mirror policy to the canary cluster', () => {
    expect(envoyRoutes(routing(0, 100))).toEqual([{ name: 'echo/default', match: { prefix: '' }, route: { cluster: 'echo-v1', ...MIRROR_ALL } }]);
    // Without the mirror the same route has no policy at all.
    expect(envoyRoutes(routing(0))).toEqual([{ name: 'echo/default', match: { prefix: '' }, route: { cluster: 'echo-v1' } }]);
  });

  it('rides alongside the weights, as a fraction per hundred or, with decimals, per ten thousand', () => {
    const [route] = envoyRoutes(routing(20, 12.5));
    expect(route!.route).toEqual({
      weighted_clusters: {
        clusters: [
          { name: 'echo-v2', weight: 20 },
          { name: 'echo-v1', weight: 80 },
        ],
      },
      request_mirror_policies: [{ cluster: 'echo-v2', runtime_fraction: { default_value: { numerator: 1250, denominator: 'TEN_THOUSAND' } } }],
    });
    expect(fractionOf(1)).toEqual({ numerator: 1, denominator: 'HUNDRED' });
    expect(fractionOf(0.01)).toEqual({ numerator: 1, denominator: 'TEN_THOUSAND' });
    expect(fractionOf(33.33)).toEqual({ numerator: 3333, denominator: 'TEN_THOUSAND' });
  });

  it('keeps the exact share for every percent with up to 2 decimals', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), (hundredths) => {
        const { numerator, denominator } = fractionOf(hundredths / 100);
        return numerator / (denominator === 'HUNDRED' ? 100 : 10_000) === hundredths / 10_000;
      }),
    );
  });

  it('is on the routes to stable, never on those that already pick the canary (cohorts, canary buckets)', () => {
    const cohort = [{ name: 'testers', match: [{ header: 'x-canary', exact: 'true' }], version: 'v2' }];
    const routes = envoyRoutes(routing(20, 100, { headerRoutes: cohort, sticky: { bucketHeader: 'x-bucket', buckets: 100 } }));
    expect(routes.map((r) => [r.name, (r.route as Obj).request_mirror_policies !== undefined])).toEqual([
      ['echo/testers', false],
      ['echo/sticky-canary', false],
      ['echo/sticky-stable', true],
      ['echo/default', true],
    ]);
    // With hash stickiness the mirror sits beside the hash policy.
    const [hashed] = envoyRoutes(routing(20, 100, { sticky: { header: 'x-user' } }));
    expect(hashed!.route).toMatchObject({ hash_policy: [{ header: { header_name: 'x-user' } }], ...MIRROR_ALL });
  });

  it('counts the mirror cluster among the clusters the routes refer to (make-before-break)', () => {
    const refs = (r: Routing) => translateEnvoy([r], DEFAULT_ENVOY_LISTENER)[TypeUrl.RouteConfiguration]![0]!.refs[TypeUrl.Cluster];
    expect(refs(routing(0))).toEqual(['echo-v1']);
    expect(refs(routing(0, 100))).toEqual(['echo-v1', 'echo-v2']);
  });

  it('decodes strictly: every resource, and the validator refuses a policy Envoy would refuse', () => {
    for (const r of [routing(0, 0.01), routing(50, 100), routing(99, 99.99)])
      for (const list of Object.values(translateEnvoy([r], DEFAULT_ENVOY_LISTENER)))
        for (const x of list) expect(decodeStrict('google.protobuf.Any', x.any).problems, `${x.typeUrl} ${x.name}`).toEqual([]);
    const action = (policy: object) => checkJson('envoy.config.route.v3.RouteAction', { cluster: 'echo-v1', request_mirror_policies: [policy] });
    expect(action({ cluster: 'echo-v2', runtime_fraction: { default_value: { numerator: 5 } } })).toEqual([]);
    expect(action({ runtime_fraction: { default_value: { numerator: 5 } } })).toEqual([
      'request_mirror_policies[0]: a request mirror policy needs exactly one of cluster and cluster_header',
    ]);
    expect(action({ cluster: 'echo-v2', runtime_fraction: {} }).join()).toMatch(/default_value/);
    expect(action({ cluster: 'echo-v2', runtime_key: 'shadow' }).join()).toMatch(/runtime_key/); // reserved since v3
    expect(action({ cluster: 'echo-v2', runtime_fraction: { default_value: { numerator: 5, denominator: 'PER_MILLE' } } }).join()).toMatch(/not a value of enum/);
  });
});

describe('a mirror for proxyless gRPC clients', () => {
  it('changes nothing they are sent: byte-identical resources, the same versions and references', () => {
    const cases: [Routing, Routing][] = [
      [routing(0), routing(0, 100)],
      [routing(30), routing(30, 12.5)],
      [routing(30, undefined, { sticky: { bucketHeader: 'x-bucket', buckets: 100 } }), routing(30, 50, { sticky: { bucketHeader: 'x-bucket', buckets: 100 } })],
    ];
    for (const [without, withMirror] of cases) {
      const a = translateGrpc([without]);
      const b = translateGrpc([withMirror]);
      for (const type of Object.keys(a)) {
        expect(b[type]!.map((r) => r.name)).toEqual(a[type]!.map((r) => r.name));
        b[type]!.forEach((r, i) => {
          expect(Buffer.compare(r.any, a[type]![i]!.any), `${type} ${r.name}`).toBe(0);
          expect(r.version).toBe(a[type]![i]!.version);
          expect(r.refs).toEqual(a[type]![i]!.refs);
        });
      }
      // And nothing in them is a field gRPC does not know.
      expect(JSON.stringify(routeConfig(b, 'echo', true))).not.toMatch(/mirror/);
    }
  });
});

describe('routingOf: what the rollout state mirrors', () => {
  const spec = RolloutSpecSchema.parse({ service: 'echo', canary: 'v2', steps: [{ setMirror: { percent: 25 } }, { setWeight: 100 }, { pause: {} }] });
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

  it('mirrors to the canary while the rollout is active and the canary does not take every request', () => {
    let s = createRollout('r', spec, 'v1', at(0), 'test');
    // The canary takes no traffic yet: held (gRPC clients keep its cluster subscribed).
    expect(routingOf(echo, s)).toEqual({ ...stableRouting(echo), mirror: { version: 'v2', percent: 25 }, held: ['v2'] });
    s = transition(s, { type: 'fleetAcked', canaryWeight: 0, mirrorPercent: 25, nodes: 1 }, at(1), 'fleet').state;
    expect(s.canaryWeight).toBe(100);
    expect(routingOf(echo, s).mirror).toBeUndefined(); // nothing left to copy
    const rolledBack = transition(s, { type: 'rollback' }, at(2), 'test').state;
    expect(routingOf(echo, rolledBack)).toEqual({ ...stableRouting(echo), held: ['v2'] });
  });

  it('reads a rollout stored before mirroring existed (no mirrorPercent) as mirroring nothing', () => {
    const { mirrorPercent: _, ...old } = createRollout('r', RolloutSpecSchema.parse({ service: 'echo', canary: 'v2', steps: [{ setWeight: 5 }] }), 'v1', at(0), 't');
    expect(routingOf(echo, old).mirror).toBeUndefined();
  });
});
